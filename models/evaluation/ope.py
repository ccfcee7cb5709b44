"""Off-policy evaluation: what a candidate policy would have earned, from the log of another policy.

The log has, per decision ``i``: the action the logging policy took, the probability ``p_i`` it had of taking
it (stored with every decision, see ``models.policy``), and the reward ``r_i`` observed afterwards. The
candidate policy is given by ``pi_i`` = the probability IT would have taken the logged action in the same
context. Three estimators of the candidate's mean reward per decision:

- IPS: ``mean(w r)`` with ``w = pi / p``. Unbiased when ``p > 0`` wherever ``pi > 0``; its variance grows
  with the weights, i.e. with how far the candidate is from the logging policy.
- SNIPS (self-normalised): ``sum(w r) / sum(w)``. Slightly biased (O(1/n)), but invariant to adding a
  constant to rewards and much steadier when a few weights are large.
- DR (doubly robust): ``mean(q_pi + w (r - q_logged))`` with a reward model ``q(x, a)``: ``q_pi`` is the
  model's value of the candidate's choice and the weighted residual corrects the model's error. Unbiased if
  either the propensities or the reward model are right, with far lower variance than IPS when the model is
  good. Fit ``q`` on other rows than it is evaluated on (cross-fitting), or its overfit leaks in.

Clipping (``clip``: weights above it are set to it) trades a bias towards a lower value for less variance;
every estimate reports how many weights it clipped and the effective sample size ``(sum w)^2 / sum w^2``,
which says how many logged decisions the estimate is really worth.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from loyalty_core import InvalidInput

SEMethod = Literal["analytic", "bootstrap"]
Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Estimate:
    method: str  # "ips", "snips" or "dr"
    value: float  # estimated mean reward per decision under the candidate policy
    se: float  # standard error
    se_method: str  # "analytic" or "bootstrap:<replicates>"
    n: int  # logged decisions used
    ess: float  # effective sample size of the importance weights
    clipped: int  # weights that were clipped
    max_weight: float  # the largest weight after clipping

    @property
    def ci95(self) -> tuple[float, float]:
        return self.value - Z95 * self.se, self.value + Z95 * self.se

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _vector(x: Any, name: str, n: int | None = None) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise InvalidInput(f"{name} must be a 1-d array", field=name)
    if n is not None and len(a) != n:
        raise InvalidInput(f"{name} has {len(a)} rows, expected {n}", field=name)
    if not np.isfinite(a).all():
        row = int(np.flatnonzero(~np.isfinite(a))[0])
        raise InvalidInput(f"{name} is not a finite number at row {row}", field=name, row=row)
    return a


def importance_weights(
    target_prob: Any, logged_prob: Any, *, clip: float | None = None
) -> tuple[np.ndarray, int]:
    """``pi / p`` per logged decision, optionally clipped at ``clip``; and how many were clipped."""
    p = _vector(logged_prob, "logged_prob")
    pi = _vector(target_prob, "target_prob", len(p))
    if ((p <= 0) | (p > 1)).any():
        row = int(np.flatnonzero((p <= 0) | (p > 1))[0])
        raise InvalidInput(
            f"logged_prob must be in (0, 1]; row {row} has {p[row]}: a logged action had to be possible",
            field="logged_prob",
            row=row,
        )
    if ((pi < 0) | (pi > 1)).any():
        row = int(np.flatnonzero((pi < 0) | (pi > 1))[0])
        raise InvalidInput(
            f"target_prob must be in [0, 1]; row {row} has {pi[row]}", field="target_prob", row=row
        )
    w = pi / p
    clipped = 0
    if clip is not None:
        if clip <= 0:
            raise InvalidInput("clip must be positive", field="clip")
        clipped = int((w > clip).sum())
        w = np.minimum(w, clip)
    return w, clipped


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's ``(sum w)^2 / sum w^2``: n for equal weights, 1 when a single weight dominates."""
    s2 = float(np.dot(weights, weights))
    return float(weights.sum()) ** 2 / s2 if s2 > 0 else 0.0


def _bootstrap_se(
    stat: Callable[[np.ndarray], float], n: int, replicates: int, rng: np.random.Generator
) -> float:
    """Standard deviation of ``stat(counts)`` over Poisson(1) resampling counts (the Poisson bootstrap).

    ``stat`` receives per-row multiplicities, so each estimator resamples with weighted sums and no copies of
    the log; for large n this matches the multinomial bootstrap.
    """
    values = np.empty(replicates)
    for b in range(replicates):
        values[b] = stat(rng.poisson(1.0, n).astype(np.float64))
    return float(np.std(values, ddof=1))


def _finish(
    method: str,
    value: float,
    analytic_se: float,
    stat: Callable[[np.ndarray], float],
    w: np.ndarray,
    clipped: int,
    se: SEMethod,
    replicates: int,
    rng: np.random.Generator | None,
) -> Estimate:
    n = len(w)
    if se == "analytic":
        se_value, se_name = analytic_se, "analytic"
    elif se == "bootstrap":
        if replicates < 2:
            raise InvalidInput("the bootstrap needs at least 2 replicates", field="replicates")
        se_value = _bootstrap_se(stat, n, replicates, rng if rng is not None else np.random.default_rng())
        se_name = f"bootstrap:{replicates}"
    else:
        raise InvalidInput("se must be 'analytic' or 'bootstrap'", field="se")
    return Estimate(
        method=method,
        value=value,
        se=se_value,
        se_method=se_name,
        n=n,
        ess=effective_sample_size(w),
        clipped=clipped,
        max_weight=float(w.max()) if n else 0.0,
    )


def _empty_check(n: int) -> None:
    if n == 0:
        raise InvalidInput("the decision log is empty", field="rewards")


def ips(
    rewards: Any,
    logged_prob: Any,
    target_prob: Any,
    *,
    clip: float | None = None,
    se: SEMethod = "analytic",
    replicates: int = 500,
    rng: np.random.Generator | None = None,
) -> Estimate:
    """Inverse propensity scoring: ``mean(w r)``; analytic SE ``std(w r) / sqrt(n)``."""
    w, clipped = importance_weights(target_prob, logged_prob, clip=clip)
    r = _vector(rewards, "rewards", len(w))
    n = len(r)
    _empty_check(n)
    wr = w * r
    value = float(wr.mean())
    analytic = float(wr.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf

    def stat(c: np.ndarray) -> float:
        return float(np.dot(c, wr) / c.sum())

    return _finish("ips", value, analytic, stat, w, clipped, se, replicates, rng)


def snips(
    rewards: Any,
    logged_prob: Any,
    target_prob: Any,
    *,
    clip: float | None = None,
    se: SEMethod = "analytic",
    replicates: int = 500,
    rng: np.random.Generator | None = None,
) -> Estimate:
    """Self-normalised IPS ``sum(w r) / sum(w)``; analytic SE by the delta method for a ratio."""
    w, clipped = importance_weights(target_prob, logged_prob, clip=clip)
    r = _vector(rewards, "rewards", len(w))
    _empty_check(len(r))
    sw = float(w.sum())
    if sw <= 0:
        raise InvalidInput(
            "the candidate policy never takes a logged action: self-normalised IPS is undefined",
            field="target_prob",
        )
    value = float(np.dot(w, r) / sw)
    analytic = float(math.sqrt(float(np.sum((w * (r - value)) ** 2))) / sw)
    wr = w * r

    def stat(c: np.ndarray) -> float:
        denom = float(np.dot(c, w))
        return float(np.dot(c, wr) / denom) if denom > 0 else value

    return _finish("snips", value, analytic, stat, w, clipped, se, replicates, rng)


def doubly_robust(
    rewards: Any,
    logged_prob: Any,
    target_prob: Any,
    *,
    q_logged: Any,
    q_target: Any,
    clip: float | None = None,
    se: SEMethod = "analytic",
    replicates: int = 500,
    rng: np.random.Generator | None = None,
) -> Estimate:
    """``mean(q_target + w (r - q_logged))``.

    ``q_logged[i]`` is the reward model's prediction for the logged action, ``q_target[i]`` its expectation
    under the candidate, ``sum_a pi(a | x_i) q(x_i, a)`` (``policy_terms`` computes both from matrices).
    """
    w, clipped = importance_weights(target_prob, logged_prob, clip=clip)
    n = len(w)
    r = _vector(rewards, "rewards", n)
    _empty_check(n)
    ql = _vector(q_logged, "q_logged", n)
    qt = _vector(q_target, "q_target", n)
    terms = qt + w * (r - ql)
    value = float(terms.mean())
    analytic = float(terms.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf

    def stat(c: np.ndarray) -> float:
        return float(np.dot(c, terms) / c.sum())

    return _finish("dr", value, analytic, stat, w, clipped, se, replicates, rng)


def policy_terms(
    actions: Any, target: np.ndarray, q: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """From matrices over all actions to the per-row inputs of the estimators.

    ``actions[i]`` is the logged action's column, ``target`` the candidate's ``(n, actions)`` probabilities
    (rows sum to 1) and ``q`` the reward model's ``(n, actions)`` predictions. Returns ``target_prob``
    (the candidate's probability of the logged action), ``q_logged`` and ``q_target``.
    """
    a = np.asarray(actions)
    pi = np.asarray(target, dtype=np.float64)
    if pi.ndim != 2 or a.shape != (pi.shape[0],):
        raise InvalidInput("target must be (n, actions) and actions (n,)", field="target")
    if not np.issubdtype(a.dtype, np.integer) or (a < 0).any() or (a >= pi.shape[1]).any():
        raise InvalidInput("actions must be column indices of target", field="actions")
    if not np.allclose(pi.sum(axis=1), 1.0, atol=1e-6):
        row = int(np.flatnonzero(~np.isclose(pi.sum(axis=1), 1.0, atol=1e-6))[0])
        raise InvalidInput(f"target probabilities of row {row} do not sum to 1", field="target", row=row)
    rows = np.arange(len(a))
    target_prob = pi[rows, a]
    if q is None:
        return target_prob, None, None
    qm = np.asarray(q, dtype=np.float64)
    if qm.shape != pi.shape:
        raise InvalidInput("q must have the shape of target", field="q")
    return target_prob, qm[rows, a], np.einsum("ij,ij->i", pi, qm)


def evaluate(
    rewards: Any,
    logged_prob: Any,
    actions: Any,
    target: np.ndarray,
    *,
    q: np.ndarray | None = None,
    clip: float | None = None,
    se: SEMethod = "analytic",
    replicates: int = 500,
    rng: np.random.Generator | None = None,
) -> dict[str, Estimate]:
    """IPS, SNIPS and (when a reward model ``q`` is given) DR of one candidate policy, from matrices."""
    target_prob, q_logged, q_target = policy_terms(actions, target, q)
    kw: dict[str, Any] = {"clip": clip, "se": se, "replicates": replicates, "rng": rng}
    out = {
        "ips": ips(rewards, logged_prob, target_prob, **kw),
        "snips": snips(rewards, logged_prob, target_prob, **kw),
    }
    if q_logged is not None and q_target is not None:
        out["dr"] = doubly_robust(
            rewards, logged_prob, target_prob, q_logged=q_logged, q_target=q_target, **kw
        )
    return out


# --- decision logs whose actions are offers ----------------------------------------------------------------


def expected_reward(p_complete: Any, value: Any, cost: Any) -> np.ndarray:
    """The reward of this module in RUB: ``completion x (value - cost)``, in expectation ``p (value - cost)``.

    The bank earns the offer's margin ``value`` and pays its ``cost`` on a completion; sending no offer earns
    0. The realised reward of a logged decision is this with ``p`` = 1 or 0 (did it complete?), and the true
    value of a policy is this with the true completion probabilities, so estimate and truth measure the same
    thing. It is the gross margin of the offers, not the incremental one: it pays for customers who would
    have completed anyway. What a policy causes is ``models.evaluation.incremental``'s value, estimated with
    the control arm's outcomes.
    """
    return np.asarray(p_complete, dtype=np.float64) * (
        np.asarray(value, dtype=np.float64) - np.asarray(cost, dtype=np.float64)
    )


@dataclass(frozen=True, slots=True)
class OfferLog:
    """A decision log as a bandit: action ``j < len(offer_ids)`` is offer ``offer_ids[j]``, the last
    action (``no_offer``) is the control group / an empty slate."""

    decision_id: np.ndarray
    customer_id: np.ndarray
    made_at: pd.DatetimeIndex  # UTC
    action: np.ndarray  # int, (n,)
    logged_prob: np.ndarray  # (n,)
    completed: np.ndarray  # bool, (n,)
    reward: np.ndarray  # RUB, (n,)
    offer_ids: tuple[str, ...]
    value: np.ndarray  # per offer
    cost: np.ndarray

    @property
    def no_offer(self) -> int:
        return len(self.offer_ids)

    @property
    def n_actions(self) -> int:
        return len(self.offer_ids) + 1

    def __len__(self) -> int:
        return len(self.action)


def offer_log(
    decisions: Any, events: Any, offers: Any, *, observed_until: dt.datetime | None = None
) -> OfferLog:
    """Join decisions (``decision_id, customer_id, made_at, offer_id, probability``; offer_id null = no
    offer), offer events (a ``completed`` event with the decision's id and offer completes it) and the
    catalogue (``offer_id`` or ``id``, ``value``, ``cost``, and ``duration_days`` with ``observed_until``)
    into an ``OfferLog`` with rewards.

    ``observed_until`` (the end of the data) keeps only decisions whose outcome is known whatever the
    action: made at least twice the catalogue's longest ``duration_days`` before it (an offer may be
    activated until the end of its validity and completed until the end of the activation's). A younger
    decision's missing completion means "not yet", not "no", and would bias every estimate down.
    """
    dec = pd.DataFrame(decisions)
    ev = pd.DataFrame(events)
    cat = pd.DataFrame(offers)
    if "offer_id" not in cat.columns and "id" in cat.columns:
        cat = cat.rename(columns={"id": "offer_id"})
    for frame, cols, what in (
        (dec, ("decision_id", "customer_id", "made_at", "offer_id", "probability"), "decisions"),
        (ev, ("decision_id", "offer_id", "event"), "offer events"),
        (cat, ("offer_id", "value", "cost"), "offers"),
    ):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise InvalidInput(f"the {what} lack column(s) {', '.join(missing)}", column=missing[0])
    if observed_until is not None:
        if observed_until.tzinfo is None:
            raise InvalidInput("observed_until must be timezone-aware (UTC)", field="observed_until")
        if "duration_days" not in cat.columns:
            raise InvalidInput("the offers lack column duration_days", column="duration_days")
        longest = int(pd.to_numeric(cat["duration_days"]).max()) if len(cat) else 0
        made = pd.to_datetime(dec["made_at"], utc=True)
        dec = dec[(made + pd.Timedelta(days=2 * longest) <= pd.Timestamp(observed_until)).to_numpy()]
    offer_ids = tuple(str(o) for o in cat["offer_id"])
    if len(set(offer_ids)) != len(offer_ids):
        raise InvalidInput("the offers catalogue has duplicate offer ids", column="offer_id")
    index = pd.Index(offer_ids)
    has_offer = dec["offer_id"].notna().to_numpy()
    action = np.full(len(dec), len(offer_ids), dtype=np.int64)
    codes = index.get_indexer(pd.Index(dec["offer_id"][has_offer].astype(str)))
    if (codes < 0).any():
        row = int(np.flatnonzero(has_offer)[np.flatnonzero(codes < 0)[0]])
        raise InvalidInput(
            f"decision at row {row} names offer {dec['offer_id'].iloc[row]!r}, not in the catalogue",
            column="offer_id",
            row=row,
        )
    action[has_offer] = codes
    done = ev[ev["event"] == "completed"]
    key = pd.MultiIndex.from_arrays([done["decision_id"].astype(str), done["offer_id"].astype(str)])
    mine = pd.MultiIndex.from_arrays([dec["decision_id"].astype(str), dec["offer_id"].astype(str)])
    completed = np.asarray(mine.isin(key) & has_offer, dtype=bool)
    value = np.asarray([float(v) for v in cat["value"]])
    cost = np.asarray([float(c) for c in cat["cost"]])
    reward = np.zeros(len(dec))
    reward[completed] = expected_reward(1.0, value, cost)[action[completed]]
    return OfferLog(
        decision_id=dec["decision_id"].astype(str).to_numpy(),
        customer_id=dec["customer_id"].astype(str).to_numpy(),
        made_at=pd.DatetimeIndex(pd.to_datetime(dec["made_at"], utc=True)),
        action=action,
        logged_prob=_vector(dec["probability"], "probability"),
        completed=completed,
        reward=reward,
        offer_ids=offer_ids,
        value=value,
        cost=cost,
    )
