"""Off-policy evaluation of what a targeting policy CAUSES: incremental value, not completion reward.

``models.evaluation.ope`` scores a policy by ``completion x (value - cost)``. That rewards sending offers to
customers who would have met the offer's condition anyway: the bank pays their reward and gains nothing.
The objective of a bank is incremental::

    V(pi) = E_x sum_a pi(a | x) [ value_a (P(meet_a | x, a sent) - P(meet_a | x, nothing sent))
                                   - cost_a P(complete_a | x, a sent) ]

the value the offer causes, against the control arm, minus the cost of every reward it pays, caused or not
(the simulator's truth calls it ``incremental_value``). Sending nothing is worth 0.

It is estimable from a randomised log with a control arm because its two halves are each an ordinary
off-policy value:

- the treated half ``E sum_a pi(a|x) R(a)`` with ``R(a) = value_a met - cost_a completed``, from the
  decisions that sent an offer, weighted ``w = pi(a_i | x_i) / mu(a_i | x_i)``;
- the baseline half ``E sum_a pi(a|x) value_a met_a(nothing sent)``, from the control decisions, each
  weighted ``1 / mu(control | x_i)``, carrying for every offer whether the customer met its condition
  anyway (``pipelines.uplift_labels``: ``met`` of the control rows).

IPS is the difference of the two means; SNIPS normalises each half by its own weights; DR adds a reward
model for each half (the uplift learner's treated and control models give both). All three are unbiased
(SNIPS to O(1/n)) whenever the logging probabilities are right, and their errors can be checked on the
simulator against its truth, which the completion reward's "gross margin" could not be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loyalty_core import InvalidInput
from models.evaluation.ope import Estimate, OfferLog, effective_sample_size
from models.evaluation.verdict import MIN_ESS, Method, Verdict, paired_verdict


@dataclass(frozen=True, slots=True)
class IncrementalLog:
    """A decision log with, per decision and offer, whether the customer met the offer's condition.

    ``met[i, a]`` is 1 when a transaction in offer ``a``'s validity after decision ``i`` met its condition
    (activated or not), 0 when none did, NaN when not measured. A treated decision needs it for its own
    offer, a control decision for every offer a candidate might send it; NaN counts as 0: the offers the
    labels leave out (informational ones, which have no condition) cause nothing measurable.
    """

    log: OfferLog
    met: np.ndarray  # (n, offers)

    @property
    def treated(self) -> np.ndarray:
        return np.asarray(self.log.action < self.log.no_offer)

    def treated_reward(self) -> np.ndarray:
        """``value met - cost completed`` for the offer each treated decision sent; 0 on control rows."""
        log = self.log
        rows = np.flatnonzero(self.treated)
        a = log.action[rows]
        met = np.nan_to_num(self.met[rows, a], nan=0.0)
        out = np.zeros(len(log))
        out[rows] = log.value[a] * met - log.cost[a] * log.completed[rows]
        return out

    def baseline_values(self) -> np.ndarray:
        """``(n, offers)``: ``value_a met_a`` of each control decision (what it earned without an offer)."""
        out = np.asarray(np.nan_to_num(self.met, nan=0.0) * self.log.value[None, :], dtype=np.float64)
        out[self.treated] = 0.0
        return out


def incremental_log(log: OfferLog, labels: pd.DataFrame) -> IncrementalLog:
    """The log joined with uplift labels (``decision_id``, ``offer_id``, ``met``; one row per decision and
    offer arm of its campaign, as ``pipelines.uplift_labels`` gives them)."""
    missing = [c for c in ("decision_id", "offer_id", "met") if c not in labels.columns]
    if missing:
        raise InvalidInput(f"the uplift labels lack column(s) {', '.join(missing)}", column=missing[0])
    met = np.full((len(log), len(log.offer_ids)), np.nan)
    rows = pd.Index(log.decision_id).get_indexer(pd.Index(labels["decision_id"].astype("str")))
    cols = pd.Index(log.offer_ids).get_indexer(pd.Index(labels["offer_id"].astype("str")))
    keep = (rows >= 0) & (cols >= 0)
    values = labels["met"].to_numpy(dtype=np.float64)[keep]
    if ((values != 0) & (values != 1)).any():
        raise InvalidInput("met must be 0 or 1", column="met")
    met[rows[keep], cols[keep]] = values
    treated = np.flatnonzero(log.action < log.no_offer)
    own = log.action[treated]
    unknown = treated[np.isnan(met[treated, own]) & (log.value[own] > 0)]
    if len(unknown):
        row = int(unknown[0])
        raise InvalidInput(
            f"decision {log.decision_id[row]!r} sent offer {log.offer_ids[log.action[row]]!r}, but the "
            "labels do not say whether it met the offer's condition: only randomised campaign decisions have "
            "labels, evaluate those",
            column="met",
            row=row,
        )
    return IncrementalLog(log=log, met=met)


def _target(ilog: IncrementalLog, target: np.ndarray) -> np.ndarray:
    pi = np.asarray(target, dtype=np.float64)
    log = ilog.log
    if pi.shape != (len(log), log.n_actions):
        raise InvalidInput(
            f"target must be (decisions, actions) = ({len(log)}, {log.n_actions}), got {pi.shape}",
            field="target",
        )
    if not (np.isfinite(pi).all() and (pi >= 0).all() and np.allclose(pi.sum(axis=1), 1.0, atol=1e-6)):
        sums = np.isclose(pi.sum(axis=1), 1.0, atol=1e-6)
        bad = ~sums | (pi < 0).any(axis=1) | ~np.isfinite(pi).all(axis=1)
        row = int(np.flatnonzero(bad)[0])
        raise InvalidInput(
            f"target row {row} is not a probability distribution over the actions", field="target", row=row
        )
    return pi


def _weights(ilog: IncrementalLog, pi: np.ndarray, clip: float | None) -> tuple[np.ndarray, np.ndarray, int]:
    """``w`` (the policy's weight of each logged action) and ``u`` (1 / mu(control) on control rows)."""
    log = ilog.log
    p = np.asarray(log.logged_prob, dtype=np.float64)
    if ((p <= 0) | (p > 1)).any():
        row = int(np.flatnonzero((p <= 0) | (p > 1))[0])
        raise InvalidInput(
            f"logged_prob must be in (0, 1]; row {row} has {p[row]}", field="logged_prob", row=row
        )
    w = pi[np.arange(len(log)), log.action] / p
    u = np.where(ilog.treated, 0.0, 1.0 / p)
    clipped = 0
    if clip is not None:
        if clip <= 0:
            raise InvalidInput("clip must be positive", field="clip")
        clipped = int((w > clip).sum() + (u > clip).sum())
        w, u = np.minimum(w, clip), np.minimum(u, clip)
    return w, u, clipped


@dataclass(frozen=True, slots=True)
class PolicyTerms:
    """One candidate's estimate as a mean of per-row terms: its value and each row's influence on it."""

    value: float
    influence: np.ndarray  # (n,): the estimate's linearisation, value + mean(influence) to first order
    size: np.ndarray  # (n,): each row's weight (its own action's when treated, the offers' mass when control)
    clipped: int

    def estimate(self, method: str) -> Estimate:
        n = len(self.influence)
        se = float(self.influence.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf
        return Estimate(
            method=method,
            value=self.value,
            se=se,
            se_method="analytic",
            n=n,
            ess=effective_sample_size(self.size),
            clipped=self.clipped,
            max_weight=float(self.size.max()) if n else 0.0,
        )


def policy_terms_incremental(
    ilog: IncrementalLog,
    target: np.ndarray,
    method: Method,
    *,
    q_treated: np.ndarray | None = None,
    q_control: np.ndarray | None = None,
    clip: float | None = None,
) -> PolicyTerms:
    """The incremental value of ``target`` by one estimator, as per-row terms (for a paired comparison)."""
    log = ilog.log
    if len(log) == 0:
        raise InvalidInput("the decision log is empty", field="rewards")
    pi = _target(ilog, target)
    offers = pi[:, : log.no_offer]
    w, u, clipped = _weights(ilog, pi, clip)
    unmeasured = ~ilog.treated[:, None] & np.isnan(ilog.met) & (offers > 0) & (log.value[None, :] > 0)
    if unmeasured.any():
        row, col = (int(i[0]) for i in np.nonzero(unmeasured))
        raise InvalidInput(
            f"the candidate may send offer {log.offer_ids[col]!r} at control decision "
            f"{log.decision_id[row]!r}, whose labels do not say whether it met that offer's condition: "
            "restrict the candidate to the arms of each decision's campaign",
            field="target",
            row=row,
        )
    reward = ilog.treated_reward()
    baseline = ilog.baseline_values()
    t, b = w * reward, u * np.einsum("ij,ij->i", offers, baseline)
    size = np.where(ilog.treated, w, u * offers.sum(axis=1))
    if method == "ips":
        terms = t - b
        value = float(terms.mean())
        return PolicyTerms(value, terms - value, size, clipped)
    if method == "snips":
        sw, su = float(w.sum()), float(u.sum())
        if sw <= 0 or su <= 0:
            raise InvalidInput(
                "self-normalised IPS needs logged decisions of the candidate's actions and of the control",
                field="target",
            )
        n = len(log)
        v1, v0 = float(t.sum() / sw), float(b.sum() / su)
        influence = (t - v1 * w) / (sw / n) - (b - v0 * u) / (su / n)  # the delta method's
        return PolicyTerms(v1 - v0, influence, size, clipped)
    if method != "dr":
        raise InvalidInput(f"method must be ips, snips or dr, got {method!r}", field="method")
    if q_treated is None or q_control is None:
        raise InvalidInput("DR needs both reward models, q_treated and q_control", field="q")
    q1 = np.asarray(q_treated, dtype=np.float64)
    q0 = np.asarray(q_control, dtype=np.float64)
    if q1.shape != offers.shape or q0.shape != offers.shape:
        raise InvalidInput("q_treated and q_control must be (decisions, offers)", field="q")
    rows = np.arange(len(log))
    a = np.minimum(log.action, log.no_offer - 1)
    residual = np.where(ilog.treated, reward - q1[rows, a], 0.0)
    base_residual = np.einsum("ij,ij->i", offers, baseline - q0)
    terms = np.einsum("ij,ij->i", offers, q1 - q0) + w * residual - u * base_residual
    value = float(terms.mean())
    return PolicyTerms(value, terms - value, size, clipped)


def evaluate_incremental(
    ilog: IncrementalLog,
    target: np.ndarray,
    *,
    q_treated: np.ndarray | None = None,
    q_control: np.ndarray | None = None,
    clip: float | None = None,
) -> dict[str, Estimate]:
    """IPS, SNIPS and (with both reward models) DR of a candidate's incremental value per decision (RUB).

    ``target`` is the candidate's ``(n, offers + 1)`` action probabilities (the last column sends nothing).
    ``q_treated[i, a]`` models ``E[value_a met - cost_a completed | x_i, a sent]`` and ``q_control[i, a]``
    ``value_a P(meet_a | x_i, nothing sent)``, both ``(n, offers)``, cross-fitted. Standard errors are
    analytic (for SNIPS by the delta method).
    """
    methods: tuple[Method, ...] = (
        ("ips", "snips")
        if q_treated is None or q_control is None
        else (
            "ips",
            "snips",
            "dr",
        )
    )
    kw: dict[str, Any] = {"q_treated": q_treated, "q_control": q_control, "clip": clip}
    return {m: policy_terms_incremental(ilog, target, m, **kw).estimate(m) for m in methods}


def compare_incremental(
    ilog: IncrementalLog,
    candidate: np.ndarray,
    production: np.ndarray,
    *,
    q_treated: np.ndarray | None = None,
    q_control: np.ndarray | None = None,
    method: Method | None = None,
    clip: float | None = None,
    min_ess: float = MIN_ESS,
    min_gain: float = 0.0,
) -> Verdict:
    """The launch verdict on incremental value: the paired difference of the two policies' per-row terms
    on the same log (``models.evaluation.verdict``'s rule); DR when both reward models are given, else
    SNIPS."""
    chosen: Method = method or ("dr" if q_treated is not None and q_control is not None else "snips")
    kw: dict[str, Any] = {"q_treated": q_treated, "q_control": q_control, "clip": clip}
    c = policy_terms_incremental(ilog, candidate, chosen, **kw)
    b = policy_terms_incremental(ilog, production, chosen, **kw)
    n = len(c.influence)
    if n < 2:
        raise InvalidInput("a verdict needs at least two logged decisions", field="rewards")
    se = float((c.influence - b.influence).std(ddof=1) / math.sqrt(n))
    ess = min(effective_sample_size(c.size), effective_sample_size(b.size))
    return paired_verdict(
        chosen, c.value, b.value, se, "analytic (paired)", n=n, ess=ess, min_ess=min_ess, min_gain=min_gain
    )


def true_incremental_value(target: np.ndarray, incremental_value: np.ndarray) -> float:
    """What the estimates aim at: ``mean_i sum_a pi(a | x_i) incremental_value(x_i, a)``, no offer 0."""
    pi = np.asarray(target, dtype=np.float64)
    iv = np.asarray(incremental_value, dtype=np.float64)
    if iv.shape != (pi.shape[0], pi.shape[1] - 1):
        raise InvalidInput("incremental_value must be (decisions, offers)", field="incremental_value")
    return float(np.einsum("ij,ij->i", pi[:, :-1], iv).mean())


def caused_by_first_offers(chosen: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """What sending each customer their first offer causes, by the simulator's truth, against the ceiling.

    ``chosen``: ``customer_id`` and ``offer_id`` (null: nothing sent, worth 0); ``truth``: ``customer_id``,
    ``offer_id`` and ``incremental_value`` per pair (``truth/offer_effects.parquet``). ``best`` sends every
    customer the offer of highest true incremental value, or nothing when none is positive, ignoring
    eligibility (tiers, channels, caps): an upper bound the served policy cannot always reach.
    """
    for frame, cols, what in (
        (chosen, ("customer_id", "offer_id"), "chosen offers"),
        (truth, ("customer_id", "offer_id", "incremental_value"), "truth"),
    ):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise InvalidInput(f"the {what} lack column(s) {', '.join(missing)}", column=missing[0])
    keyed = truth.assign(
        customer_id=truth["customer_id"].astype("str"), offer_id=truth["offer_id"].astype("str")
    )
    iv = keyed.pivot_table(
        index="customer_id", columns="offer_id", values="incremental_value", aggfunc="first"
    )
    ids = pd.Index(chosen["customer_id"].astype("str"))
    missing_ids = ids.difference(iv.index)
    if len(missing_ids):
        raise InvalidInput(f"customer {missing_ids[0]!r} is not in the truth", column="customer_id")
    grid = iv.reindex(ids)
    offer = chosen["offer_id"]
    sent = offer.notna().to_numpy()
    where = pd.Index(grid.columns).get_indexer(pd.Index(offer[sent].astype("str")))
    if (where < 0).any():
        raise InvalidInput("a chosen offer is not in the truth", column="offer_id")
    values = np.zeros(len(ids))
    values[sent] = grid.to_numpy(dtype=np.float64)[np.flatnonzero(sent), where]
    best = np.maximum(np.nan_to_num(grid.to_numpy(dtype=np.float64), nan=-np.inf).max(axis=1), 0.0)
    return {
        "customers": float(len(ids)),
        "sent": float(sent.sum()),
        "served": float(values.mean()) if len(ids) else 0.0,
        "best": float(best.mean()) if len(ids) else 0.0,
    }
