"""Off-policy evaluation on the simulator: each targeting policy's INCREMENTAL value, estimated and true.

    python benchmarks/ope.py [--customers 20000] [--days 365] [--seed 3] [--sim DIR] [--clip W] [--json]

Simulates a bank (or reads ``--sim DIR``, the output of ``loyalty simulate``), turns its historical random
campaigns into a bandit log (``models.evaluation.offer_log``: one decision per campaign and eligible customer,
the action is the offer or the control group) and joins, per decision and offer arm, whether the customer
met the offer's condition in its window (``pipelines.uplift_labels``), for the treated and the control arm.

The value of a policy is what it CAUSES (``models.evaluation.incremental``): per decision, the value of the
completions the offer caused against the control arm minus the cost of every reward it pays, caused or not;
sending nothing is worth 0. Its TRUE value comes from the simulator's truth (``incremental_value`` of
``truth/offer_effects.parquet``, for the customer's base state); IPS, SNIPS and DR estimate it from the log.
The completion reward ``completion x (value - cost)`` that this benchmark used to rank by is printed beside
it: it pays for customers who would have completed anyway, and ranks the policies the other way round.

Policies, each choosing among the arms its decision's campaign could have assigned (probability > 0):

- ``logging``: the campaigns' own random assignment (the per-arm, per-channel probabilities of the manifest);
- ``oracle``: for every decision, the arm with the highest TRUE incremental value, or nothing when none is
  positive: the ceiling;
- ``propensity eps-greedy``: ``models.policy.rank_offers`` with epsilon 0.1 on a LightGBM completion model
  fitted on the log: ``P(complete) (value - cost)``, what the service does without an uplift champion;
- ``uplift T-learner eps-greedy``: the same ranking with the uplift of meeting the condition from two models
  (one on the treated decisions, one on the control decisions), i.e. ``uplift x value - P(complete) x
  cost``, what the service does with an uplift champion;
- ``uplift funnel eps-greedy``: the same, with the uplift through the activation funnel
  ``P(complete | sent) - P(activate | sent) P(meet | not sent)`` (``Models.uplift_funnel``).

Every model is one LightGBM classifier over the decision's features, the pair features (the customer's
transactions meeting each offer's condition in the 90 and 365 days before) and the offer.
Models are cross-fitted over two halves of the customers (no decision is scored by a model that saw it), and
are DR's reward models. Decisions too recent for their outcome to be known are left out.
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
from scipy.stats import spearmanr

from models import (
    EpsilonGreedy,
    IncrementalLog,
    OfferCatalog,
    OfferLog,
    evaluate_incremental,
    expected_reward,
    incremental_log,
    offer_log,
    rank_offers,
    true_incremental_value,
)
from pipelines import LedgerFrames, SimConfig, simulate, uplift_labels

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
            ["customer_id", "offer_id", "p_complete_treated", "incremental_uplift", "incremental_value"],
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


def pair_features(data: SimData, log: OfferLog) -> np.ndarray:
    """(decisions, offers, 2): the customer's transactions meeting each offer's condition (its types,
    categories and threshold) in the 90 and the 365 days before the decision, scaled to the offer's validity:
    the expected organic matches, what tells whether they would meet the condition without the offer."""
    ids = pd.Index(np.unique(data.customers["customer_id"]))
    tx = data.transactions
    tx_c = ids.get_indexer(pd.Index(tx["customer_id"]))
    tx_t = _micros(tx["occurred_at"])
    amount = tx["amount"].to_numpy(dtype=np.float64)
    kind = tx["type"].astype("str").to_numpy()
    category = tx["category"].astype("str").to_numpy()
    row_c = ids.get_indexer(pd.Index(log.customer_id))
    made = _micros(log.made_at)
    offers = data.offers.set_index("offer_id").loc[list(log.offer_ids)]
    out = np.zeros((len(log), len(log.offer_ids), 2))
    day = 86_400_000_000
    for j, (_, offer) in enumerate(offers.iterrows()):
        if offer["kind"] == "informational":
            continue
        keep = np.ones(len(tx), dtype=bool)
        if offer["txn_types"] is not None:
            keep &= np.isin(kind, list(offer["txn_types"]))
        if offer["categories"] is not None:
            keep &= np.isin(category, list(offer["categories"]))
        if offer["kind"] in ("bonus_points", "cashback") and offer["threshold"] is not None:
            keep &= amount >= float(offer["threshold"]) - 1e-9
        who, when = tx_c[keep], tx_t[keep]
        for t in np.unique(made):
            rows = np.flatnonzero(made == t)
            for k, days in enumerate((90, 365)):
                inside = (when >= t - days * day) & (when < t)
                counts = np.bincount(who[inside], minlength=len(ids))
                out[rows, j, k] = counts[row_c[rows]] * int(offer["duration_days"]) / days
    return out


def activations(data: SimData, log: OfferLog) -> np.ndarray:
    """Per decision: did the customer activate the offer it sent (an ``activated`` event of that decision)."""
    ev = data.events[(data.events["event"] == "activated").to_numpy()]
    seen = pd.MultiIndex.from_arrays([ev["decision_id"].astype("str"), ev["offer_id"].astype("str")])
    sent = log.action < log.no_offer
    offer = np.asarray(log.offer_ids, dtype=object)[np.minimum(log.action, log.no_offer - 1)]
    mine = pd.MultiIndex.from_arrays([log.decision_id.astype(str), offer.astype(str)])
    return np.asarray(mine.isin(seen) & sent, dtype=bool)


def _lgbm(seed: int) -> lgb.LGBMClassifier:
    return lgb.LGBMClassifier(
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


@dataclass(frozen=True)
class CrossFit:
    """Decision features and pair features, and the folds (halves of the customers) models are fitted on."""

    x: np.ndarray
    pairs: np.ndarray
    fold: np.ndarray
    folds: int
    seed: int

    @classmethod
    def of(
        cls, x: np.ndarray, pairs: np.ndarray, log: OfferLog, *, folds: int = 2, seed: int = 0
    ) -> CrossFit:
        customers = np.unique(log.customer_id)
        of_customer = np.random.default_rng(seed).permutation(len(customers)) % folds
        fold = of_customer[np.searchsorted(customers, log.customer_id)]
        return cls(x, pairs, fold, folds, seed)

    def _matrix(self, rows: np.ndarray, arms: np.ndarray) -> np.ndarray:
        return np.column_stack([self.x[rows], self.pairs[rows, arms], arms])

    def probabilities(self, rows: np.ndarray, arms: np.ndarray, y: np.ndarray, m: int) -> np.ndarray:
        """(decisions, offers): P(y | x, offer) for every decision and every offer seen in ``arms``, each
        decision scored by the model of the other folds. One LightGBM model over (features, offer)."""
        out = np.zeros((len(self.x), m))
        categorical = [3, 4, 5, self.x.shape[1] + self.pairs.shape[2]]  # channel, gender, region, offer
        for f in range(self.folds):
            train = self.fold[rows] != f
            model = _lgbm(self.seed).fit(
                self._matrix(rows[train], arms[train]), y[train].astype(int), categorical_feature=categorical
            )
            target = np.flatnonzero(self.fold == f)
            for a in np.unique(arms):
                full = np.full(len(target), a)
                out[target, a] = model.predict_proba(self._matrix(target, full))[:, 1]
        return out


@dataclass(frozen=True)
class Models:
    """The cross-fitted models of the log: completion (what propensity targeting ranks by), activation,
    meeting the condition when sent and when not (the control arm)."""

    p_complete: np.ndarray
    p_activate: np.ndarray
    p_meet: np.ndarray
    p_base: np.ndarray

    @property
    def uplift_t(self) -> np.ndarray:
        """The T-learner: P(meet | sent) - P(meet | not sent), two separately noisy models."""
        return np.clip(self.p_meet - self.p_base, -1.0, 1.0)

    @property
    def uplift_funnel(self) -> np.ndarray:
        """Through the activation funnel: an offer changes only the customers who activate it, and an
        activated customer who would have met the condition anyway completes without being caused to, so
        ``P(meet | sent) - P(meet | not sent) = P(complete | sent) - P(activate | sent) P(meet | not sent)``
        (exact when activating says nothing of the organic rate given the features). Each term is a well
        estimated probability, where the T-learner differences two noisy ones."""
        return np.clip(self.p_complete - self.p_activate * self.p_base, -1.0, 1.0)


def fit_models(fit: CrossFit, log: OfferLog, ilog: IncrementalLog, activated: np.ndarray) -> Models:
    m = len(log.offer_ids)
    margin = log.value - log.cost
    own = np.minimum(log.action, m - 1)
    sent = np.flatnonzero(ilog.treated & (margin[own] != 0))  # informational offers never complete
    met_own = ilog.met[np.arange(len(log)), own]
    labelled = sent[~np.isnan(met_own[sent])]
    control_rows, control_arms = np.nonzero(~ilog.treated[:, None] & ~np.isnan(ilog.met))
    return Models(
        p_complete=fit.probabilities(sent, log.action[sent], log.completed[sent], m),
        p_activate=fit.probabilities(sent, log.action[sent], activated[sent], m),
        p_meet=fit.probabilities(labelled, log.action[labelled], met_own[labelled], m),
        p_base=fit.probabilities(control_rows, control_arms, ilog.met[control_rows, control_arms], m),
    )


def met_labels(data: SimData, log: OfferLog) -> IncrementalLog:
    """Per decision and offer arm of its campaign: did the customer meet the offer's condition (both arms)."""
    tx = data.transactions.assign(id=np.arange(len(data.transactions)), points=0)
    duration = dict(zip(data.offers["offer_id"], data.offers["duration_days"], strict=True))
    ev = data.events.assign(
        id=np.arange(len(data.events)), duration_days=data.events["offer_id"].map(duration).astype("int64")
    )
    frames = LedgerFrames.from_frames(transactions=tx, offer_events=ev)
    end = dt.datetime.fromisoformat(data.manifest["end"])
    kept = data.decisions[data.decisions["decision_id"].astype("str").isin(set(log.decision_id))]
    labels = uplift_labels(frames, kept, data.offers, end=end)
    return incremental_log(log, labels)


def truth(log: OfferLog, effects: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per (decision, offer): the true completion reward, incremental uplift and incremental value."""
    cust = pd.Index(np.unique(log.customer_id))
    offers = pd.Index(log.offer_ids)
    ci = cust.get_indexer(pd.Index(effects["customer_id"]))
    oi = offers.get_indexer(pd.Index(effects["offer_id"]))
    keep = (ci >= 0) & (oi >= 0)
    rows = cust.get_indexer(pd.Index(log.customer_id))
    out = {}
    for name in ("p_complete_treated", "incremental_uplift", "incremental_value"):
        table = np.full((len(cust), len(offers)), np.nan)
        table[ci[keep], oi[keep]] = effects[name].to_numpy()[keep]
        out[name] = table[rows]
        if np.isnan(out[name]).any():
            raise ValueError("the truth lacks some (customer, offer) pairs of the log")
    out["completion_reward"] = expected_reward(out["p_complete_treated"], log.value, log.cost)
    return out


def oracle(p0: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Per decision the allowed arm of highest true incremental value, or nothing when none is positive."""
    scores = np.where(p0[:, :-1] > 0, value, -np.inf)
    best = np.argmax(scores, axis=1)
    out = np.zeros_like(p0)
    rows = np.arange(len(p0))
    positive = scores[rows, best] > 0
    out[rows[positive], best[positive]] = 1.0
    out[rows[~positive], -1] = 1.0
    return out


def model_policy(
    p0: np.ndarray,
    p_hat: np.ndarray,
    catalog: OfferCatalog,
    epsilon: float,
    uplift: np.ndarray | None = None,
) -> np.ndarray:
    """The platform's own ranking (``rank_offers``, k=1) on the models' scores, decision by decision."""
    out = np.zeros_like(p0)
    explore = EpsilonGreedy(epsilon)
    allowed = p0[:, :-1] > 0
    for i in range(len(p0)):
        u = None if uplift is None else uplift[i]
        r = rank_offers(catalog, p_hat[i], uplift=u, eligible=allowed[i], k=1, exploration=explore)
        for oid, q in r.probabilities.items():
            out[i, catalog.index[oid]] = q
        out[i, -1] = max(0.0, 1.0 - out[i, :-1].sum())
    return out


def run(data: SimData, *, clip: float | None = None, seed: int = 0) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The comparison table (one row per policy and estimator) and facts about the log."""
    t0 = time.perf_counter()
    end = dt.datetime.fromisoformat(data.manifest["end"])
    log = offer_log(data.decisions, data.events, data.offers, observed_until=end)
    decisions = data.decisions.set_index("decision_id").loc[log.decision_id].reset_index()
    p0 = logging_matrix(log, decisions, data.manifest)
    true = truth(log, data.effects)
    ilog = met_labels(data, log)
    x, _ = features(data, log)
    fit = CrossFit.of(x, pair_features(data, log), log, seed=seed)
    models = fit_models(fit, log, ilog, activations(data, log))
    p_hat = models.p_complete
    # DR's reward models: the funnel's P(meet | sent) = P(meet | not sent) + its uplift
    q_treated = log.value * (models.p_base + models.uplift_funnel) - log.cost * p_hat
    q_control = log.value * models.p_base
    catalog = OfferCatalog.from_frame(data.offers)
    if catalog.offer_ids != log.offer_ids:
        raise ValueError("catalogue order differs from the log's")
    best = oracle(p0, true["incremental_value"])
    eps = f"eps-greedy {MODEL_EPSILON:g}"
    targets = {
        "logging": p0,
        "oracle (true incremental value)": best,
        f"propensity {eps}": model_policy(p0, p_hat, catalog, MODEL_EPSILON),
        f"uplift T-learner {eps}": model_policy(p0, p_hat, catalog, MODEL_EPSILON, models.uplift_t),
        f"uplift funnel {eps}": model_policy(p0, p_hat, catalog, MODEL_EPSILON, models.uplift_funnel),
    }
    ceiling = true_incremental_value(best, true["incremental_value"])
    rows = []
    for name, target in targets.items():
        true_value = true_incremental_value(target, true["incremental_value"])
        completion = float(np.einsum("ij,ij->i", target[:, :-1], true["completion_reward"]).mean())
        est = evaluate_incremental(ilog, target, q_treated=q_treated, q_control=q_control, clip=clip)
        for method, e in est.items():
            rows.append(
                {
                    "policy": name,
                    "true": true_value,
                    "of_oracle": true_value / ceiling,
                    "completion_reward": completion,
                    "estimator": method.upper(),
                    "estimate": e.value,
                    "se": e.se,
                    "z": (e.value - true_value) / e.se if e.se > 0 else np.nan,
                    "ess": e.ess,
                }
            )
    allowed = p0[:, :-1] > 0
    facts = {
        "decisions": len(log),
        "immature": len(data.decisions) - len(log),
        "treated": int((log.action < log.no_offer).sum()),
        "completions": int(log.completed.sum()),
        **{
            f"{name}_truth_spearman": float(
                spearmanr(score[allowed], true["incremental_uplift"][allowed]).statistic
            )
            for name, score in (
                ("uplift_funnel", models.uplift_funnel),
                ("uplift_t", models.uplift_t),
                ("completion", p_hat),
            )
        },
        "seconds": time.perf_counter() - t0,
    }
    return pd.DataFrame(rows), facts


def markdown(table: pd.DataFrame) -> str:
    lines = [
        "| policy | true incremental value (RUB/decision) | of the oracle's | completion reward (true) "
        "| estimator | estimate | SE | z | ESS |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    lines.extend(
        f"| {r.policy} | {r.true:.2f} | {100 * r.of_oracle:.0f} % | {r.completion_reward:.2f} | "
        f"{r.estimator} | {r.estimate:.2f} | {r.se:.2f} | {r.z:+.2f} | {r.ess:,.0f} |"
        for r in table.itertuples()
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--sim", type=Path, help="read this simulator output instead of simulating")
    ap.add_argument("--clip", type=float, default=None, help="clip importance weights at this value")
    ap.add_argument("--json", action="store_true", help="one JSON object per policy and estimator")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ope-sim-") as tmp:
        sim = args.sim
        if sim is None:
            sim = Path(tmp) / "sim"
            t0 = time.perf_counter()
            simulate(SimConfig(customers=args.customers, days=args.days, seed=args.seed), sim)
            took = time.perf_counter() - t0
            print(
                f"simulated {args.customers:,} customers x {args.days} days in {took:.1f} s", file=sys.stderr
            )
        table, facts = run(load(sim), clip=args.clip, seed=args.seed)
    if args.json:
        for record in table.to_dict("records"):
            print(json.dumps({**record, "customers": args.customers, "seed": args.seed}))
        print(json.dumps({"facts": facts}))
        return
    print(
        f"{facts['decisions']:,} decisions ({facts['treated']:,} offers sent, "
        f"{facts['immature']:,} too recent to know their outcome left out, "
        f"{facts['completions']:,} completed); Spearman with the true incremental uplift over the allowed "
        f"(decision, offer) pairs: funnel uplift {facts['uplift_funnel_truth_spearman']:.3f}, T-learner "
        f"{facts['uplift_t_truth_spearman']:.3f}, completion model {facts['completion_truth_spearman']:.3f}; "
        f"evaluation took {facts['seconds']:.1f} s\n"
    )
    print(markdown(table))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
