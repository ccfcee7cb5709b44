"""Off-policy estimators on a synthetic bandit whose value is known exactly.

Contexts are fixed; each repetition redraws the logging policy's actions and the Bernoulli completions, so
the true value of a candidate policy on these contexts is ``mean_i sum_a pi(a | x_i) mu(x_i, a)`` and an
unbiased estimator's mean over repetitions must land on it (within its Monte Carlo error).
"""

from __future__ import annotations

import datetime as dt
import importlib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loyalty_core import InvalidInput
from models.evaluation.ope import (
    doubly_robust,
    effective_sample_size,
    evaluate,
    expected_reward,
    importance_weights,
    ips,
    offer_log,
    policy_terms,
    snips,
)
from pipelines import SimConfig, simulate


@dataclass
class Bandit:
    mu: np.ndarray  # (n, A) expected reward
    p_complete: np.ndarray  # (n, A)
    value: np.ndarray  # (A,) reward of a completion
    logging: np.ndarray  # (n, A) logging probabilities
    rng: np.random.Generator

    def log(self, reps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Actions (reps, n), their logged probabilities and rewards."""
        cdf = np.cumsum(self.logging, axis=1)
        u = self.rng.random((reps, len(cdf), 1))
        actions = np.minimum((u > cdf[None]).sum(axis=2), cdf.shape[1] - 1)
        rows = np.arange(len(cdf))[None, :]
        completed = self.rng.random(actions.shape) < self.p_complete[rows, actions]
        rewards = completed * self.value[actions]
        return actions, self.logging[rows, actions], rewards


def bandit(n: int = 2000, seed: int = 0) -> Bandit:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    n_actions = 5
    beta = rng.normal(size=(3, n_actions))
    alpha = rng.normal(-1.0, 0.5, n_actions)
    p = 1 / (1 + np.exp(-(alpha + x @ beta)))
    p[:, 0] = 0.0  # action 0 is "no offer": nothing happens
    value = np.array([0.0, 100.0, 80.0, 150.0, 60.0])
    # The logging policy prefers what a stale, noisy model liked, with 20 % uniform exploration.
    stale = x @ rng.normal(size=(3, n_actions))
    soft = np.exp(stale) / np.exp(stale).sum(axis=1, keepdims=True)
    logging = 0.8 * soft + 0.2 / n_actions
    return Bandit(p * value, p, value, logging, rng)


def greedy(scores: np.ndarray) -> np.ndarray:
    out = np.zeros_like(scores)
    out[np.arange(len(scores)), np.argmax(scores, axis=1)] = 1.0
    return out


def true_value(b: Bandit, target: np.ndarray) -> float:
    return float((target * b.mu).sum(axis=1).mean())


def repeat(
    b: Bandit, target: np.ndarray, q: np.ndarray, reps: int = 300, clip: float | None = None
) -> dict[str, np.ndarray]:
    actions, logged, rewards = b.log(reps)
    out: dict[str, list[float]] = {"ips": [], "snips": [], "dr": [], "ips_se": [], "dr_se": []}
    for a, p, r in zip(actions, logged, rewards, strict=True):
        est = evaluate(r, p, a, target, q=q, clip=clip)
        for m in ("ips", "snips", "dr"):
            out[m].append(est[m].value)
        out["ips_se"].append(est["ips"].se)
        out["dr_se"].append(est["dr"].se)
    return {k: np.asarray(v) for k, v in out.items()}


@pytest.mark.parametrize("policy", ["best", "epsilon", "logging"])
def test_estimators_are_unbiased_on_a_known_bandit(policy: str) -> None:
    b = bandit(seed=1)
    n_actions = b.mu.shape[1]
    if policy == "best":
        target = greedy(b.mu)
    elif policy == "epsilon":
        target = 0.9 * greedy(b.p_complete) + 0.1 / n_actions
    else:
        target = b.logging
    truth = true_value(b, target)
    noisy_q = b.mu * b.rng.uniform(0.7, 1.3, b.mu.shape)  # a mediocre reward model
    res = repeat(b, target, noisy_q)
    reps = len(res["ips"])
    for m in ("ips", "snips", "dr"):
        mc_error = res[m].std(ddof=1) / np.sqrt(reps)
        # SNIPS is consistent, not unbiased: allow its O(1/n) bias on top of the Monte Carlo error
        slack = 0.01 * abs(truth) if m == "snips" else 0.0
        assert abs(res[m].mean() - truth) < 4 * mc_error + slack, (m, res[m].mean(), truth)
    # and the analytic standard errors describe the spread across logs
    assert res["ips_se"].mean() == pytest.approx(res["ips"].std(ddof=1), rel=0.15)
    assert res["dr_se"].mean() == pytest.approx(res["dr"].std(ddof=1), rel=0.15)


def test_a_wrong_propensity_is_caught_by_the_same_check() -> None:
    """The unbiasedness check can fail: IPS with the logging probabilities misreported (sqrt p) is off."""
    b = bandit(seed=2)
    target = greedy(b.mu)
    truth = true_value(b, target)
    actions, logged, rewards = b.log(200)
    wrong = [
        ips(r, np.sqrt(p), policy_terms(a, target)[0]).value
        for a, p, r in zip(actions, logged, rewards, strict=True)
    ]
    err = np.std(wrong, ddof=1) / np.sqrt(len(wrong))
    assert abs(np.mean(wrong) - truth) > 4 * err


def test_doubly_robust_has_lower_variance_with_a_good_reward_model() -> None:
    b = bandit(seed=3)
    target = greedy(b.mu)
    good_q = b.mu + b.rng.normal(0, 2.0, b.mu.shape)
    res = repeat(b, target, good_q, reps=200)
    assert res["dr"].var() < 0.5 * res["ips"].var()
    # with a useless model (q = 0) DR is IPS, term by term
    actions, logged, rewards = b.log(1)
    tp, ql, qt = policy_terms(actions[0], target, np.zeros_like(b.mu))
    assert ql is not None
    assert qt is not None
    dr = doubly_robust(rewards[0], logged[0], tp, q_logged=ql, q_target=qt)
    assert dr.value == pytest.approx(ips(rewards[0], logged[0], tp).value)


def test_on_policy_weights_are_one() -> None:
    b = bandit(seed=4)
    actions, logged, rewards = b.log(1)
    tp, _, _ = policy_terms(actions[0], b.logging)
    est = ips(rewards[0], logged[0], tp)
    assert est.value == pytest.approx(rewards[0].mean())
    assert est.ess == pytest.approx(len(tp))
    assert est.max_weight == pytest.approx(1.0)
    assert snips(rewards[0], logged[0], tp).value == pytest.approx(rewards[0].mean())


def test_clipping_bounds_weights_and_reports_it() -> None:
    b = bandit(seed=5)
    target = greedy(b.mu)
    actions, logged, rewards = b.log(1)
    tp, _, _ = policy_terms(actions[0], target)
    w, _ = importance_weights(tp, logged[0])
    free = ips(rewards[0], logged[0], tp)
    loose = ips(rewards[0], logged[0], tp, clip=float(w.max()) + 1)
    assert loose.value == free.value
    assert loose.clipped == 0
    clip = float(np.quantile(w[w > 0], 0.5))
    tight = ips(rewards[0], logged[0], tp, clip=clip)
    assert tight.clipped == int((w > clip).sum()) > 0
    assert tight.max_weight == pytest.approx(clip)
    assert tight.value < free.value  # rewards are >= 0: clipping can only lower the estimate
    assert tight.ess > free.ess
    assert effective_sample_size(np.ones(10)) == pytest.approx(10)
    assert effective_sample_size(np.array([1.0, 0, 0, 0])) == pytest.approx(1)


def test_bootstrap_agrees_with_the_analytic_standard_error() -> None:
    b = bandit(seed=6)
    target = 0.8 * greedy(b.mu) + 0.2 / 5
    actions, logged, rewards = b.log(1)
    q = b.mu * 1.1
    for method in ("ips", "snips", "dr"):
        rng = np.random.default_rng(0)
        boot = evaluate(
            rewards[0], logged[0], actions[0], target, q=q, se="bootstrap", replicates=400, rng=rng
        )
        analytic = evaluate(rewards[0], logged[0], actions[0], target, q=q)
        assert boot[method].se_method == "bootstrap:400"
        assert boot[method].value == analytic[method].value
        assert boot[method].se == pytest.approx(analytic[method].se, rel=0.15), method
    lo, hi = analytic["ips"].ci95
    assert lo < analytic["ips"].value < hi


@pytest.mark.parametrize(
    ("rewards", "logged", "target", "match"),
    [
        ([1.0, 0.0], [0.5, 0.0], [1.0, 1.0], "logged_prob"),
        ([1.0, np.nan], [0.5, 0.5], [1.0, 1.0], "rewards"),
        ([1.0, 0.0], [0.5, 0.5], [1.0, 1.5], "target_prob"),
        ([1.0], [0.5, 0.5], [1.0, 1.0], "rewards"),
        ([], [], [], "empty"),
    ],
)
def test_bad_logs_are_refused_with_the_field(
    rewards: list[float], logged: list[float], target: list[float], match: str
) -> None:
    with pytest.raises(InvalidInput, match=match):
        ips(rewards, logged, target)


def test_policy_terms_checks_the_candidate() -> None:
    with pytest.raises(InvalidInput, match="sum to 1"):
        policy_terms(np.array([0, 1]), np.array([[0.5, 0.4], [0.5, 0.5]]))
    with pytest.raises(InvalidInput, match="column"):
        policy_terms(np.array([0, 2]), np.array([[0.5, 0.5], [0.5, 0.5]]))
    with pytest.raises(InvalidInput, match="never takes"):
        snips([1.0, 2.0], [0.5, 0.5], [0.0, 0.0])


# --- decision logs of offers, and the simulator ----------------------------------------------------------


def _frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    t0 = pd.Timestamp("2026-01-01 06:00", tz="UTC")
    decisions = pd.DataFrame(
        {
            "decision_id": ["d1", "d2", "d3", "d4"],
            "customer_id": ["c1", "c2", "c3", "c4"],
            "made_at": [t0, t0, t0, t0 + pd.Timedelta(days=30)],
            "offer_id": ["A", "B", None, "A"],
            "probability": [0.4, 0.3, 0.3, 0.4],
        }
    )
    events = pd.DataFrame(
        {
            "decision_id": ["d1", "d1", "d2", "d4"],
            "offer_id": ["A", "A", "B", "A"],
            "event": ["sent", "completed", "sent", "completed"],
        }
    )
    offers = pd.DataFrame(
        {
            "offer_id": ["A", "B"],
            "value": [Decimal("300"), Decimal("50")],
            "cost": [100.0, 10.0],
            "duration_days": [7, 14],
        }
    )
    return decisions, events, offers


def test_offer_log_rewards_completions_with_the_offer_margin() -> None:
    decisions, events, offers = _frames()
    log = offer_log(decisions, events, offers)
    assert log.offer_ids == ("A", "B")
    assert log.action.tolist() == [0, 1, 2, 0]  # 2 = no offer
    assert log.completed.tolist() == [True, False, False, True]
    assert log.reward.tolist() == [200.0, 0.0, 0.0, 200.0]
    np.testing.assert_allclose(expected_reward(np.array([0.5, 0.1]), log.value, log.cost), [100.0, 4.0])
    # decisions whose outcome cannot be known yet (twice the longest validity) are left out
    end = dt.datetime(2026, 2, 15, tzinfo=dt.UTC)
    recent = offer_log(decisions, events, offers, observed_until=end)
    assert recent.decision_id.tolist() == ["d1", "d2", "d3"]
    with pytest.raises(InvalidInput, match="not in the catalogue"):
        offer_log(decisions.assign(offer_id=["A", "Z", None, "A"]), events, offers)
    with pytest.raises(InvalidInput, match="duration_days"):
        offer_log(decisions, events, offers.drop(columns="duration_days"), observed_until=end)


@pytest.mark.slow
def test_incremental_estimates_agree_with_the_simulators_truth(tmp_path: Path) -> None:
    """IPS, SNIPS and DR of four policies' incremental value on a small simulated bank, against its truth.

    At this size the standard errors are several RUB, so the check is statistical (|z| < 3.5). What a user
    would notice: the policy that targets by completion propensity earns the most completion reward and
    causes the least, and the evaluation says so.
    """
    bench = importlib.import_module("benchmarks.ope")
    sim = tmp_path / "sim"
    simulate(SimConfig(customers=4000, days=240, seed=11), sim)
    table, facts = bench.run(bench.load(sim), seed=0)
    assert facts["decisions"] > 10_000
    assert facts["immature"] > 0
    oracle, propensity = "oracle (true incremental value)", "propensity eps-greedy 0.1"
    funnel = "uplift funnel eps-greedy 0.1"
    assert set(table["policy"]) == {"logging", oracle, propensity, "uplift T-learner eps-greedy 0.1", funnel}
    assert set(table["estimator"]) == {"IPS", "SNIPS", "DR"}
    for row in table.itertuples():
        assert abs(row.z) < 3.5, row
    truth = table.groupby("policy")[["true", "completion_reward"]].first()
    assert truth["true"].idxmax() == oracle
    assert truth["completion_reward"].idxmax() == propensity  # what the old reward would have crowned
    assert truth.loc[propensity, "true"] < truth.loc["logging", "true"] + 5.0
    assert truth.loc[funnel, "true"] > truth.loc[propensity, "true"] + 10.0  # uplift targeting causes more
    on_policy = table[(table["policy"] == "logging") & (table["estimator"] == "IPS")].iloc[0]
    assert on_policy.ess == pytest.approx(facts["decisions"], rel=0.3)
    # the estimates tell the oracle from propensity targeting, by more than their noise
    dr = table[table["estimator"] == "DR"].set_index("policy")
    noise = float(np.hypot(dr.loc[oracle, "se"], dr.loc[propensity, "se"]))
    assert dr.loc[oracle, "estimate"] > dr.loc[propensity, "estimate"] + 2 * noise
