"""The launch verdict: is a candidate policy better than the one in production, on the same decision log?

Both policies are evaluated off-policy (``models.evaluation.ope``) on the same logged decisions, so their
estimates share most of their noise: the rows where the two policies agree contribute the same term to
both. Comparing two separate 95 % intervals (or a candidate's interval with the log's mean reward) ignores
that, and calls a policy better when it is indistinguishable from production: the old notebook 05 rated
even uniform random "worth a live test". The verdict instead takes the *difference* per row, so its
interval is the paired one:

- IPS and DR are means of per-row terms (``w r``, ``q_target + w (r - q_logged)``): the difference is the
  mean of the per-row differences, with standard error ``std(d) / sqrt(n)``;
- SNIPS is a ratio: the difference's standard error is the delta method's, from each row's influence
  ``w_i (r_i - V) / mean(w)`` for both policies (the same formula ``models.evaluation.ope.snips`` uses for
  one);
- or the Poisson bootstrap with one resampling shared by both policies (``se="bootstrap"``).

Launch only when the whole interval of the difference is above ``min_gain`` (0: any gain) and both estimates
rest on enough decisions (effective sample size ``min_ess``): a candidate that cannot be told apart from
production, or is worse, is not launched.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from loyalty_core import InvalidInput
from models.evaluation.ope import Z95, SEMethod, effective_sample_size, importance_weights, policy_terms

Method = Literal["ips", "snips", "dr"]
Outcome = Literal["launch", "cannot tell", "worse", "too few decisions"]
MIN_ESS = 100.0  # below this, a handful of large weights decide the estimate and its interval alike


@dataclass(frozen=True, slots=True)
class Verdict:
    """A candidate against production on one log: both values, their difference with its 95 % interval."""

    method: str
    candidate_value: float  # estimated mean reward per decision
    production_value: float
    difference: float  # candidate minus production
    low: float  # 95 % interval of the difference
    high: float
    se: float
    se_method: str
    n: int
    ess: float  # the smaller of the two policies' effective sample sizes
    outcome: Outcome

    @property
    def launch(self) -> bool:
        return self.outcome == "launch"

    @property
    def text(self) -> str:
        """The verdict as a sentence for the launch review."""
        gap = (
            f"{self.difference:+.2f} per decision against production "
            f"(95 % interval {self.low:+.2f} to {self.high:+.2f}, {self.method.upper()})"
        )
        if self.outcome == "launch":
            return f"launch: better than production, {gap}"
        if self.outcome == "worse":
            return f"do not launch: worse than production, {gap}"
        if self.outcome == "too few decisions":
            return (
                f"do not launch: the estimate rests on too few decisions (effective sample {self.ess:.0f}), "
                f"{gap}"
            )
        return f"do not launch: cannot be told apart from production, {gap}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "launch": self.launch, "text": self.text}


def _terms(
    method: Method,
    rewards: np.ndarray,
    w: np.ndarray,
    q_logged: np.ndarray | None,
    q_target: np.ndarray | None,
) -> tuple[float, np.ndarray, Callable[[np.ndarray], float]]:
    """(value, per-row influence on the value, value under resampling counts) of one policy."""
    if method == "ips":
        terms = w * rewards
        value = float(terms.mean())
        return value, terms - value, lambda c: float(np.dot(c, terms) / c.sum())
    if method == "dr":
        if q_logged is None or q_target is None:
            raise InvalidInput("the DR verdict needs the reward model q", field="q")
        terms = q_target + w * (rewards - q_logged)
        value = float(terms.mean())
        return value, terms - value, lambda c: float(np.dot(c, terms) / c.sum())
    mean_w = float(w.mean())
    if mean_w <= 0:
        raise InvalidInput(
            "a policy never takes a logged action: self-normalised IPS is undefined", field="target"
        )
    value = float(np.dot(w, rewards) / w.sum())
    wr = w * rewards

    def stat(c: np.ndarray) -> float:
        denom = float(np.dot(c, w))
        return float(np.dot(c, wr) / denom) if denom > 0 else value

    return value, w * (rewards - value) / mean_w, stat


def compare_with_production(
    rewards: Any,
    logged_prob: Any,
    actions: Any,
    candidate: np.ndarray,
    production: np.ndarray,
    *,
    q: np.ndarray | None = None,
    method: Method | None = None,
    clip: float | None = None,
    min_ess: float = MIN_ESS,
    min_gain: float = 0.0,
    se: SEMethod = "analytic",
    replicates: int = 1000,
    rng: np.random.Generator | None = None,
) -> Verdict:
    """The verdict on ``candidate`` against ``production``, both ``(n, actions)`` probability matrices over
    the same logged decisions (``models.evaluation.ope.policy_terms``); ``method`` defaults to DR with ``q``,
    else SNIPS.
    """
    chosen: Method = method or ("dr" if q is not None else "snips")
    if chosen not in ("ips", "snips", "dr"):
        raise InvalidInput(f"method must be ips, snips or dr, got {chosen!r}", field="method")
    pi_c, ql, qt_c = policy_terms(actions, candidate, q)
    pi_b, _, qt_b = policy_terms(actions, production, q)
    w_c, _ = importance_weights(pi_c, logged_prob, clip=clip)
    w_b, _ = importance_weights(pi_b, logged_prob, clip=clip)
    r = np.asarray(rewards, dtype=np.float64)
    n = len(r)
    if r.shape != w_c.shape:
        raise InvalidInput(f"rewards has {len(r)} rows, expected {len(w_c)}", field="rewards")
    if n < 2:
        raise InvalidInput("a verdict needs at least two logged decisions", field="rewards")
    v_c, infl_c, stat_c = _terms(chosen, r, w_c, ql, qt_c)
    v_b, infl_b, stat_b = _terms(chosen, r, w_b, ql, qt_b)
    d = infl_c - infl_b
    if se == "analytic":
        se_value, se_name = float(d.std(ddof=1) / math.sqrt(n)), "analytic (paired)"
    elif se == "bootstrap":
        gen = rng if rng is not None else np.random.default_rng()
        diffs = np.empty(replicates)
        for b in range(replicates):
            counts = gen.poisson(1.0, n).astype(np.float64)
            diffs[b] = stat_c(counts) - stat_b(counts) if counts.sum() > 0 else v_c - v_b
        se_value, se_name = float(np.std(diffs, ddof=1)), f"bootstrap:{replicates} (paired)"
    else:
        raise InvalidInput("se must be 'analytic' or 'bootstrap'", field="se")
    ess = min(effective_sample_size(w_c), effective_sample_size(w_b))
    return paired_verdict(
        chosen, v_c, v_b, se_value, se_name, n=n, ess=ess, min_ess=min_ess, min_gain=min_gain
    )


def paired_verdict(
    method: str,
    candidate_value: float,
    production_value: float,
    se: float,
    se_method: str,
    *,
    n: int,
    ess: float,
    min_ess: float = MIN_ESS,
    min_gain: float = 0.0,
) -> Verdict:
    """The rule, once for every reward: launch only when the whole 95 % interval of the difference is above
    ``min_gain`` and both estimates rest on an effective sample of at least ``min_ess``."""
    difference = candidate_value - production_value
    low, high = difference - Z95 * se, difference + Z95 * se
    outcome: Outcome
    if ess < min_ess:
        outcome = "too few decisions"
    elif low > min_gain:
        outcome = "launch"
    elif high < 0.0:
        outcome = "worse"
    else:
        outcome = "cannot tell"
    return Verdict(
        method=method,
        candidate_value=candidate_value,
        production_value=production_value,
        difference=difference,
        low=low,
        high=high,
        se=se,
        se_method=se_method,
        n=n,
        ess=ess,
        outcome=outcome,
    )
