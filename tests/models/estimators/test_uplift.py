"""Uplift: the T-learner on randomised history (judged by Qini/AUUC), inverse-probability weighting."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from loyalty_core import REPO_ROOT, InvalidInput
from models.estimators import TwoModelUplift, ipw_weights
from models.evaluation import auuc, average_effect, qini_coefficient, uplift_report
from models.inputs import customer_offer_frame

HILLSTROM = REPO_ROOT / ".." / "shared" / "data" / "hillstrom" / "hillstrom.csv"


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def randomised_history(n: int, seed: int) -> pd.DataFrame:
    """A campaign sent at random, with the truth attached.

    - sure things (high ``x1``): likely to complete anyway, the offer adds nothing;
    - persuadables (high ``x2``, low ``x1``): the offer adds up to +35 points of probability;
    - sleeping dogs (high ``x3``): the offer puts them off (-10 points).
    Assignment is unequal and logged: 70 % treated where ``x4 > 0``, 30 % elsewhere.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    p0 = sigmoid(-1.2 + 1.8 * x[:, 0])
    tau = 0.35 * sigmoid(3 * (x[:, 1] - 0.3)) * (x[:, 0] < 0.5) - 0.10 * (x[:, 2] > 1.2)
    p1 = np.clip(p0 + tau, 0.0, 1.0)
    p_treat = np.where(x[:, 3] > 0, 0.7, 0.3)
    treated = rng.random(n) < p_treat
    y = np.where(treated, rng.random(n) < p1, rng.random(n) < p0).astype(np.int8)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:07d}" for i in range(n)],
            "x1": x[:, 0],
            "x2": x[:, 1],
            "x3": x[:, 2],
            "x4": x[:, 3],
            "noise": x[:, 4],
            "treated": treated.astype(np.int8),
            "probability": np.where(treated, p_treat, 1 - p_treat),
            "completed": y,
            "true_uplift": p1 - p0,
        }
    )


@pytest.fixture(scope="module")
def history() -> tuple[pd.DataFrame, pd.DataFrame]:
    return randomised_history(12000, seed=0), randomised_history(6000, seed=1)


@pytest.fixture(scope="module")
def learner(history: tuple[pd.DataFrame, pd.DataFrame]) -> TwoModelUplift:
    train_part, _ = history
    return TwoModelUplift(exclude=("customer_id", "true_uplift")).fit(train_part, train_part["completed"])


def test_t_learner_recovers_the_heterogeneous_effect(
    learner: TwoModelUplift, history: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    _, test = history
    assert learner.features_ == ["x1", "x2", "x3", "x4", "noise"]
    predicted = learner.predict_uplift(test)
    rho = spearmanr(predicted, test["true_uplift"]).statistic
    assert rho > 0.5
    # persuadables get a clearly larger estimate than sure things
    persuadable = (test["x2"] > 1) & (test["x1"] < 0)
    sure_thing = test["x1"] > 1.5
    assert predicted[persuadable].mean() > predicted[sure_thing].mean() + 0.15


def test_t_learner_beats_plain_propensity_at_ranking_uplift(
    learner: TwoModelUplift, history: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    _, test = history
    weights = ipw_weights(test["treated"].to_numpy(), test["probability"].to_numpy())
    uplift = learner.predict_uplift(test)
    propensity = learner.predict_treated(test)  # what a response model alone would rank by
    args = (test["completed"], test["treated"], weights)
    q_uplift = qini_coefficient(args[0], uplift, args[1], args[2])
    q_propensity = qini_coefficient(args[0], propensity, args[1], args[2])
    assert q_uplift > 0.005
    assert q_uplift > q_propensity + 0.005
    assert auuc(args[0], uplift, args[1], args[2]) > auuc(args[0], propensity, args[1], args[2])
    # the truth itself is the best possible ranking
    assert qini_coefficient(args[0], test["true_uplift"], args[1], args[2]) >= q_uplift - 0.002

    report = uplift_report(
        test["completed"], uplift, test["treated"], weights, true_uplift=test["true_uplift"]
    )
    assert set(report) == {
        "qini_coefficient",
        "auuc",
        "uplift_at_30pct",
        "spearman_true_uplift",
        "pearson_true_uplift",
    }
    assert report["spearman_true_uplift"] > 0.5
    assert spearmanr(propensity, test["true_uplift"]).statistic < report["spearman_true_uplift"] - 0.3


def test_uplift_inputs_are_checked() -> None:
    with pytest.raises(InvalidInput, match="both treated and control"):
        qini_coefficient([1, 0], [0.1, 0.2], [1, 1])
    with pytest.raises(InvalidInput, match=r"probability must be in \(0, 1\]"):
        ipw_weights(np.array([1, 0]), np.array([0.5, 0.0]))
    frame = randomised_history(200, seed=3)
    with pytest.raises(InvalidInput, match="lacks column"):
        TwoModelUplift().fit(frame.drop(columns=["treated"]), frame["completed"])


def test_two_model_uplift_on_the_hillstrom_email_experiment() -> None:
    """Real randomised data (Hillstrom 2008): women's e-mail vs no e-mail, outcome = visit. Trained on one
    half, the T-learner's ranking finds more incremental visits than random on the other half."""
    if not HILLSTROM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{HILLSTROM} is missing")
        pytest.skip(
            f"the public Hillstrom data is not at {HILLSTROM.resolve()}: docs/data.md says where to get it"
        )
    raw = pd.read_csv(HILLSTROM)
    data = raw[raw["segment"].isin(["Womens E-Mail", "No E-Mail"])].reset_index(drop=True)
    frame = pd.DataFrame(
        {
            "recency": data["recency"].astype(float),
            "history": data["history"],
            "mens": data["mens"].astype(float),
            "womens": data["womens"].astype(float),
            "newbie": data["newbie"].astype(float),
            "urban": (data["zip_code"] == "Urban").astype(float),
            "web": (data["channel"] == "Web").astype(float),
            "phone": (data["channel"] == "Phone").astype(float),
            "treated": (data["segment"] == "Womens E-Mail").astype(np.int8),
            "probability": 0.5,
        }
    )
    y = data["visit"].to_numpy()
    half = np.random.default_rng(0).random(len(frame)) < 0.5
    model = TwoModelUplift(n_estimators=150, num_leaves=7, min_child_samples=200).fit(frame[half], y[half])
    test = frame[~half]
    uplift = model.predict_uplift(test)
    assert qini_coefficient(y[~half], uplift, test["treated"]) > 0.002
    # the e-mail's average effect on visits, about +4.5 points in the published figures
    assert average_effect(y, frame["treated"], frame["probability"]) == pytest.approx(0.045, abs=0.01)


def test_one_uplift_model_over_offer_attributes_finds_the_right_offer_per_customer() -> None:
    """Two offers, one campaign: a bonus works on customers with x > 0, a multiplier on x < 0. Control rows
    carry, for each offer, whether the customer met its condition anyway. Arms were unequally likely."""
    rng = np.random.default_rng(11)
    offers = pd.DataFrame(
        {"offer_id": ["BONUS", "MULT"], "offer_bonus_points": [500.0, 0.0], "offer_multiplier": [1.0, 2.0]}
    )
    n = 9000
    x = rng.normal(size=n)
    p0 = sigmoid(-1.0 + 0.5 * x)
    effect = {"BONUS": 0.3 * (x > 0), "MULT": 0.3 * (x < 0)}
    arm = rng.choice(["BONUS", "MULT", "control"], size=n, p=[0.4, 0.2, 0.4])
    arm_probability = {"BONUS": 0.4, "MULT": 0.2, "control": 0.4}
    rows = []
    for offer in offers["offer_id"]:
        sent = arm == offer
        control = arm == "control"
        keep = sent | control
        outcome = rng.random(n) < np.where(sent, p0 + effect[offer], p0)
        rows.append(
            pd.DataFrame(
                {
                    "customer_id": np.arange(n)[keep],
                    "offer_id": offer,
                    "x": x[keep],
                    "treated": sent[keep].astype(np.int8),
                    "probability": [arm_probability[a] for a in arm[keep]],
                    "completed": outcome[keep].astype(np.int8),
                }
            )
        )
    history = pd.concat(rows, ignore_index=True).merge(offers, on="offer_id")
    model = TwoModelUplift().fit(history, history["completed"])
    assert model.features_ == ["x", "offer_bonus_points", "offer_multiplier"]

    test_x = np.linspace(-2, 2, 201)
    grid = customer_offer_frame(pd.DataFrame({"customer_id": np.arange(201), "x": test_x}), offers)
    grid["uplift"] = model.predict_uplift(grid)
    best = grid.loc[grid.groupby("customer_id")["uplift"].idxmax(), ["customer_id", "offer_id"]]
    truth = np.where(test_x > 0, "BONUS", "MULT")
    clear = np.abs(test_x) > 0.5
    assert (best["offer_id"].to_numpy()[clear] == truth[clear]).mean() > 0.9
