"""Off-policy evaluation on the simulator: IPS, SNIPS and DR estimates against each policy's TRUE value.

    python benchmarks/ope.py [--customers 100000] [--days 365] [--seed 1] [--sim DIR] [--clip W] [--se ...]

Simulates a bank (or reads ``--sim DIR``, the output of ``loyalty simulate``), turns its historical random
campaigns into a bandit log (``models.evaluation.offer_log``: one decision per campaign and eligible customer,
the action is the offer or the control group, the reward ``completion x (value - cost)`` in RUB), and
evaluates:

- ``logging``: the campaigns' own random assignment (the per-arm, per-channel probabilities of the manifest);
- ``best true uplift``: for every decision, the arm of that campaign with the highest TRUE expected
  incremental value (``truth/offer_effects.parquet``), or the control group when none is positive;
- ``model eps-greedy``: ``models.policy.rank_offers`` with epsilon 0.1 on a LightGBM completion model fitted
  on the log itself (customer attributes, 90 days of transactions and the offer history before the decision,
  the offer as a categorical), cross-fitted over two halves of the customers so no decision is scored by a
  model that saw it. The same model is DR's reward model ``q(x, a) = P(complete) (value - cost)``.

Every policy chooses only among the arms its decision's campaign could have assigned (probability > 0),
since nothing can be learnt about an action the log never takes. Decisions too recent for their outcome to
be known (``offer_log(observed_until=...)``) are left out. The TRUE value of a policy is
``mean_i sum_a pi(a | x_i) p_true(x_i, a) (value_a - cost_a)`` over the logged decisions: the expected
reward had each customer got the policy's action, from the simulator's true completion probabilities.

Prints a markdown table with each estimate's error in % of the true value and in standard errors (z), and
a diagnostic row "DR, true q": DR whose reward model is the truth itself, the floor any reward model could
reach. That floor is close to IPS for a deterministic policy: a completion is a coin flip worth hundreds of
RUB, and that noise stays whatever the model. Hence the size of the default run (100,000 customers for a
year: ~900,000 decisions, about 2 minutes and 4 GB after the simulation): a deterministic policy's
estimate has a standard error of ~3 % of its value there, ~12 % with 5,000 customers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from models import (
    EpsilonGreedy,
    OfferCatalog,
    OfferLog,
    SEMethod,
    evaluate,
    expected_reward,
    offer_log,
    rank_offers,
)
from pipelines import SimConfig, simulate

WINDOW_DAYS = 90
CATEGORIES = (
    "groceries", "restaurants", "online", "pharmacy", "fuel", "clothing", "entertainment", "electronics",
    "travel", "utilities", "mobile", "internet", "taxes", "p2p",
)  # fmt: skip
CHANNELS = ("app", "web", "branch", "pos")
OFFER_KINDS = ("multiplier", "bonus_points", "cashback", "informational")
MODEL_EPSILON = 0.1


@dataclass(frozen=True)
class SimData:
    decisions: pd.DataFrame
    events: pd.DataFrame
    offers: pd.DataFrame
    customers: pd.DataFrame
    transactions: pd.DataFrame
    effects: pd.DataFrame
    manifest: dict[str, Any]


def _read(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A Parquet file with decimals as float64 (features and rewards need arithmetic, not cents)."""
    table = pq.read_table(path, columns=columns)
    for i, f in enumerate(table.schema):
        if pa.types.is_decimal(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(pa.float64()))
    return table.to_pandas()


def load(sim: Path) -> SimData:
    return SimData(
        decisions=_read(sim / "decisions.parquet"),
        events=_read(
            sim / "offer_events.parquet", ["decision_id", "customer_id", "offer_id", "event", "occurred_at"]
        ),
        offers=_read(sim / "offers.parquet"),
        customers=_read(sim / "customers.parquet"),
        transactions=_read(
            sim / "transactions.parquet", ["customer_id", "occurred_at", "type", "amount", "category"]
        ),
        effects=_read(
            sim / "truth" / "offer_effects.parquet",
            ["customer_id", "offer_id", "p_complete_treated", "expected_incremental_value"],
        ),
        manifest=json.loads((sim / "manifest.json").read_text()),
    )


def logging_matrix(log: OfferLog, decisions: pd.DataFrame, manifest: dict[str, Any]) -> np.ndarray:
    """(decisions, actions): the probability each arm had in the decision's campaign and channel group."""
    index = {oid: j for j, oid in enumerate(log.offer_ids)}
    policies = [c["policy"] for c in manifest["campaigns"]]
    table = np.zeros((len(policies), len(CHANNELS), log.n_actions))
    for c, camp in enumerate(manifest["campaigns"]):
        for arm in camp["arms"]:
            j = log.no_offer if arm["offer_id"] is None else index[arm["offer_id"]]
            for ch, p in arm["probability"].items():
                table[c, CHANNELS.index(ch), j] = p
    camp = pd.Index(policies).get_indexer(pd.Index(decisions["policy"]))
    chan = pd.Index(CHANNELS).get_indexer(pd.Index(decisions["channel"]))
    if (camp < 0).any() or (chan < 0).any():
        raise ValueError("a decision's campaign or channel is not in the manifest")
    p0 = table[camp, chan]
    rows = np.arange(len(log))
    if not np.allclose(p0[rows, log.action], log.logged_prob, atol=1e-9):
        raise ValueError("the manifest's arm probabilities disagree with the logged probabilities")
    return p0


def _micros(times: Any) -> np.ndarray:
    """UTC times as int64 microseconds since the epoch (comparisons and bincounts without tz objects)."""
    return pd.DatetimeIndex(pd.to_datetime(times, utc=True)).as_unit("us").asi8


def features(data: SimData, log: OfferLog) -> tuple[np.ndarray, list[str]]:
    """What the bank knew about the customer at each decision: attributes, 90 days of spend, offer history."""
    day = 86_400_000_000
    cust = data.customers.set_index("customer_id")
    ids = pd.Index(cust.index)
    n_c = len(ids)
    row_c = ids.get_indexer(pd.Index(log.customer_id))
    tx = data.transactions
    tx_c = ids.get_indexer(pd.Index(tx["customer_id"]))
    tx_t = _micros(tx["occurred_at"])
    tx_amount = tx["amount"].to_numpy(dtype=np.float64)
    tx_cat = pd.Index(CATEGORIES).get_indexer(pd.Index(tx["category"]))
    ev = data.events
    ev_c = ids.get_indexer(pd.Index(ev["customer_id"]))
    ev_t = _micros(ev["occurred_at"])
    stage = {e: (ev["event"] == e).to_numpy() for e in ("sent", "viewed", "activated", "completed")}
    kind_of = dict(zip(data.offers["offer_id"], data.offers["kind"], strict=True))
    ev_kind = pd.Index(OFFER_KINDS).get_indexer(pd.Index(ev["offer_id"].map(kind_of)))
    n_hist = 4 + len(OFFER_KINDS)
    joined = _micros(pd.to_datetime(cust["joined_on"]))
    age_base = cust["birth_year"].to_numpy(dtype=np.float64)
    names = [
        "age", "log_income", "tenure_days", "channel", "gender", "region", "txn_90d", "spend_90d", "txn_30d",
        "days_since_txn", *(f"n_{c}_90d" for c in CATEGORIES), *(f"spend_{c}_90d" for c in CATEGORIES),
        "offers_sent_before", "offers_viewed_before", "offers_activated_before", "offers_completed_before",
        *(f"activated_{kind}_before" for kind in OFFER_KINDS),
    ]  # fmt: skip
    k = len(CATEGORIES)
    out = np.full((len(log), len(names)), np.nan)
    made = _micros(log.made_at)
    for t in np.unique(made):
        rows = np.flatnonzero(made == t)
        c = row_c[rows]
        f = np.zeros((n_c, len(names)))
        in90 = (tx_t >= t - WINDOW_DAYS * day) & (tx_t < t)
        f[:, 6] = np.bincount(tx_c[in90], minlength=n_c)
        f[:, 7] = np.bincount(tx_c[in90], weights=tx_amount[in90], minlength=n_c)
        in30 = (tx_t >= t - 30 * day) & (tx_t < t)
        f[:, 8] = np.bincount(tx_c[in30], minlength=n_c)
        before = tx_t < t
        last = np.full(n_c, np.iinfo(np.int64).min)
        np.maximum.at(last, tx_c[before], tx_t[before])
        f[:, 9] = np.where(last == np.iinfo(np.int64).min, 365.0, np.minimum((t - last) / day, 365.0))
        cat_ok = in90 & (tx_cat >= 0)
        flat = tx_c[cat_ok] * k + tx_cat[cat_ok]
        f[:, 10 : 10 + k] = np.bincount(flat, minlength=n_c * k).reshape(n_c, k)
        f[:, 10 + k : 10 + 2 * k] = np.bincount(flat, weights=tx_amount[cat_ok], minlength=n_c * k).reshape(
            n_c, k
        )
        prior = ev_t < t
        for i, e in enumerate(("sent", "viewed", "activated", "completed")):
            f[:, -n_hist + i] = np.bincount(ev_c[prior & stage[e]], minlength=n_c)
        for i in range(len(OFFER_KINDS)):
            act = prior & stage["activated"] & (ev_kind == i)
            f[:, -len(OFFER_KINDS) + i] = np.bincount(ev_c[act], minlength=n_c)
        f[:, 0] = pd.Timestamp(int(t), unit="us").year - age_base
        f[:, 2] = (t - joined) / day
        out[rows] = f[c]
    out[:, 1] = np.log1p(cust["income"].to_numpy(dtype=np.float64)[row_c])
    out[:, 3] = pd.Index(CHANNELS).get_indexer(pd.Index(cust["channel"]))[row_c]
    out[:, 4] = (cust["gender"].to_numpy() == "F")[row_c]
    out[:, 5] = pd.Index(sorted(set(cust["region"]))).get_indexer(pd.Index(cust["region"]))[row_c]
    return out, names


def reward_model(
    x: np.ndarray, log: OfferLog, *, folds: int = 2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-fitted P(complete | x, offer) for every offer, and q(x, a) = its expected reward (0: no offer).

    One LightGBM model over (decision features, offer) trained on the treated decisions of the other folds
    (folds are halves of the customers: a customer's decisions never score each other).
    """
    m = len(log.offer_ids)
    customers = np.unique(log.customer_id)
    fold_of = dict(
        zip(customers, np.random.default_rng(seed).permutation(len(customers)) % folds, strict=True)
    )
    fold = np.fromiter((fold_of[c] for c in log.customer_id), dtype=np.int64, count=len(log))
    margin = log.value - log.cost
    trainable = (log.action < m) & (margin[np.minimum(log.action, m - 1)] != 0)
    p_hat = np.zeros((len(log), m))
    for f in range(folds):
        train = trainable & (fold != f)
        xt = np.column_stack([x[train], log.action[train]])
        model = lgb.LGBMClassifier(
            n_estimators=200,
            learning_rate=0.06,
            num_leaves=15,
            min_child_samples=100,
            max_bin=63,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            n_jobs=1,  # the machine is shared; one thread is also the fastest for these small trees
            random_state=seed,
            verbose=-1,
        )
        cat_cols = [3, 4, 5, x.shape[1]]  # channel, gender, region, offer
        model.fit(xt, log.completed[train].astype(int), categorical_feature=cat_cols)
        rows = np.flatnonzero(fold == f)
        for a in range(m):
            if margin[a] == 0:
                continue  # informational offers never complete
            p_hat[rows, a] = model.predict_proba(np.column_stack([x[rows], np.full(len(rows), a)]))[:, 1]
    q = np.zeros((len(log), m + 1))
    q[:, :m] = expected_reward(p_hat, log.value, log.cost)
    return p_hat, q


def truth(log: OfferLog, effects: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """True expected reward and true expected incremental value per (decision, action); 0 for no offer."""
    cust = pd.Index(np.unique(log.customer_id))
    offers = pd.Index(log.offer_ids)
    ci = cust.get_indexer(pd.Index(effects["customer_id"]))
    oi = offers.get_indexer(pd.Index(effects["offer_id"]))
    keep = (ci >= 0) & (oi >= 0)
    p = np.full((len(cust), len(offers)), np.nan)
    eiv = np.full((len(cust), len(offers)), np.nan)
    p[ci[keep], oi[keep]] = effects["p_complete_treated"].to_numpy()[keep]
    eiv[ci[keep], oi[keep]] = effects["expected_incremental_value"].to_numpy()[keep]
    rows = cust.get_indexer(pd.Index(log.customer_id))
    mu = np.zeros((len(log), log.n_actions))
    inc = np.zeros((len(log), log.n_actions))
    mu[:, :-1] = expected_reward(p[rows], log.value, log.cost)
    inc[:, :-1] = eiv[rows]
    if np.isnan(mu).any():
        raise ValueError("the truth lacks some (customer, offer) pairs of the log")
    return mu, inc


def best_true_uplift(p0: np.ndarray, eiv: np.ndarray) -> np.ndarray:
    scores = np.where(p0 > 0, eiv, -np.inf)
    out = np.zeros_like(p0)
    out[np.arange(len(p0)), np.argmax(scores, axis=1)] = 1.0
    return out


def model_policy(p0: np.ndarray, p_hat: np.ndarray, catalog: OfferCatalog, epsilon: float) -> np.ndarray:
    """The platform's own ranking (``rank_offers``, k=1) on the model's scores, decision by decision."""
    out = np.zeros_like(p0)
    explore = EpsilonGreedy(epsilon)
    allowed = p0[:, :-1] > 0
    for i in range(len(p0)):
        r = rank_offers(catalog, p_hat[i], eligible=allowed[i], k=1, exploration=explore)
        for oid, q in r.probabilities.items():
            out[i, catalog.index[oid]] = q
        out[i, -1] = max(0.0, 1.0 - out[i, :-1].sum())
    return out


def run(
    data: SimData, *, clip: float | None = None, se: SEMethod = "analytic", seed: int = 0
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The comparison table (one row per policy and estimator) and facts about the log."""
    t0 = time.perf_counter()
    end = dt.datetime.fromisoformat(data.manifest["end"])
    log = offer_log(data.decisions, data.events, data.offers, observed_until=end)
    decisions = data.decisions.set_index("decision_id").loc[log.decision_id].reset_index()
    p0 = logging_matrix(log, decisions, data.manifest)
    mu, eiv = truth(log, data.effects)
    x, _ = features(data, log)
    p_hat, q = reward_model(x, log, seed=seed)
    catalog = OfferCatalog.from_frame(data.offers)
    if catalog.offer_ids != log.offer_ids:
        raise ValueError("catalogue order differs from the log's")
    targets = {
        "logging": p0,
        "best true uplift": best_true_uplift(p0, eiv),
        f"model eps-greedy {MODEL_EPSILON:g}": model_policy(p0, p_hat, catalog, MODEL_EPSILON),
    }
    rows = []
    rng = np.random.default_rng(seed)
    for name, target in targets.items():
        true_value = float((target * mu).sum(axis=1).mean())
        est = evaluate(log.reward, log.logged_prob, log.action, target, q=q, clip=clip, se=se, rng=rng)
        # Diagnostic: DR with the TRUE reward function as its model, the best any reward model could do.
        est["dr, true q"] = evaluate(
            log.reward, log.logged_prob, log.action, target, q=mu, clip=clip, se=se, rng=rng
        )["dr"]
        for method, e in est.items():
            rows.append(
                {
                    "policy": name,
                    "true": true_value,
                    "estimator": method.upper(),
                    "estimate": e.value,
                    "se": e.se,
                    "error_pct": 100 * (e.value - true_value) / true_value,
                    "z": (e.value - true_value) / e.se if e.se > 0 else np.nan,
                    "ess": e.ess,
                }
            )
    facts = {
        "decisions": len(log),
        "immature": len(data.decisions) - len(log),
        "treated": int((log.action < log.no_offer).sum()),
        "completions": int(log.completed.sum()),
        "realised_mean_reward": float(log.reward.mean()),
        "true_mean_reward_logged_actions": float(mu[np.arange(len(log)), log.action].mean()),
        "seconds": time.perf_counter() - t0,
    }
    return pd.DataFrame(rows), facts


def markdown(table: pd.DataFrame) -> str:
    lines = [
        "| policy | true value (RUB/decision) | estimator | estimate | SE | error | z | ESS |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines.extend(
        f"| {r.policy} | {r.true:.2f} | {r.estimator} | {r.estimate:.2f} | {r.se:.2f} | "
        f"{r.error_pct:+.1f} % | {r.z:+.2f} | {r.ess:,.0f} |"
        for r in table.itertuples()
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sim", type=Path, help="read this simulator output instead of simulating")
    ap.add_argument("--clip", type=float, default=None, help="clip importance weights at this value")
    ap.add_argument("--se", choices=("analytic", "bootstrap"), default="analytic")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ope-sim-") as tmp:
        sim = args.sim
        if sim is None:
            sim = Path(tmp) / "sim"
            t0 = time.perf_counter()
            simulate(SimConfig(customers=args.customers, days=args.days, seed=args.seed), sim)
            took = time.perf_counter() - t0
            print(f"simulated {args.customers:,} customers x {args.days} days in {took:.1f} s")
        table, facts = run(load(sim), clip=args.clip, se=args.se, seed=args.seed)
    print(
        f"{facts['decisions']:,} decisions ({facts['treated']:,} offers sent, "
        f"{facts['immature']:,} too recent to know their outcome left out, "
        f"{facts['completions']:,} completed); mean reward {facts['realised_mean_reward']:.2f} RUB realised, "
        f"{facts['true_mean_reward_logged_actions']:.2f} true for the logged actions; "
        f"evaluation took {facts['seconds']:.1f} s\n"
    )
    print(markdown(table))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
