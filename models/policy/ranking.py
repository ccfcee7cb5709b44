"""Ranking for one customer: eligible offers by expected value, with each one's probability of being shown.

This is the request path (``/v1/offers/rank``): plain Python over the catalogue's ~10 offers, no DataFrame,
so a ranking costs 15-20 microseconds (``benchmarks/policy.py``). ``models.policy.value.expected_value`` is
its batch twin, and a test checks that both give the same numbers.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loyalty_core import InvalidInput
from models.policy.catalog import OfferCatalog
from models.policy.eligibility import DEFAULT_CAPS, CustomerState, Exclusion, FrequencyCaps, eligibility_one
from models.policy.exploration import GREEDY, EpsilonGreedy, Exploration, thompson_slate
from models.policy.value import SOURCE_PROPENSITY, SOURCE_UPLIFT


@dataclass(frozen=True, slots=True)
class RankedOffer:
    offer_id: str
    rank: int  # 1 = first shown
    score: float  # the model's P(complete | treated)
    expected_value: float  # RUB, see the module docstring
    probability: float  # the probability the policy had of putting this offer in the slate
    source: str  # "uplift" or "propensity": which EV formula was used
    reasons: Any = None  # passed through from the scorer (e.g. top feature contributions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "offer_id": self.offer_id,
            "rank": self.rank,
            "score": self.score,
            "expected_value": self.expected_value,
            "probability": self.probability,
            "source": self.source,
            "reasons": self.reasons,
        }


@dataclass(frozen=True, slots=True)
class Ranking:
    offers: tuple[RankedOffer, ...]
    policy: str
    probability_method: str  # "exact" or "monte_carlo:<draws>"
    candidates: int  # offers the exploration chose among
    # Every candidate's probability of being in the slate (they sum to the slate's size), shown or not.
    probabilities: dict[str, float] = field(default_factory=dict)


_DEFAULT_RNG = np.random.default_rng()  # for callers that pass none (a fresh generator costs ~10 µs)


def _floats(x: np.ndarray | Sequence[float | None], n: int, name: str) -> list[float]:
    out = x.tolist() if isinstance(x, np.ndarray) else [math.nan if v is None else float(v) for v in x]
    if len(out) != n:
        raise InvalidInput(f"{name} must have one entry per catalogue offer ({n})", field=name)
    return out


def rank_offers(
    catalog: OfferCatalog,
    propensity: np.ndarray | Sequence[float],
    *,
    uplift: np.ndarray | Sequence[float | None] | None = None,
    eligible: np.ndarray | Sequence[bool] | None = None,
    k: int = 1,
    exploration: Exploration = GREEDY,
    rng: np.random.Generator | None = None,
    reasons: Sequence[Any] | None = None,
    min_expected_value: float | None = 0.0,
) -> Ranking:
    """Choose up to ``k`` offers for one customer, with the probability of each being chosen.

    Arrays are aligned with ``catalog.offer_ids``; ``uplift`` NaN or None means no estimate (the EV falls
    back to the propensity formula, as in ``expected_value``). Candidates are the eligible offers whose
    expected value exceeds ``min_expected_value`` (None: every eligible offer): by default an offer the
    model expects to lose money on is never shown, not even to explore. Ties rank in catalogue order.
    ``rng`` makes exploration reproducible (tests); the service passes one generator per worker.

    Plain Python over the catalogue rather than numpy: for ~10 offers each numpy call costs more than the
    whole loop (this path is timed by ``benchmarks/policy.py``); ``expected_value`` is the batch twin, and a
    test checks that both give the same numbers.
    """
    if k < 0:
        raise InvalidInput("k must be >= 0", field="k")
    m = len(catalog)
    p = _floats(propensity, m, "propensity")
    u = _floats(uplift, m, "uplift") if uplift is not None else None
    ok = list(eligible) if eligible is not None else None
    if ok is not None and len(ok) != m:
        raise InvalidInput(f"eligible must have one entry per catalogue offer ({m})", field="eligible")
    values, costs = catalog.value_list, catalog.cost_list
    ev: list[float] = []
    has: list[bool] = []
    cand: list[int] = []
    for j in range(m):
        pj = p[j]
        if not 0.0 <= pj <= 1.0:  # NaN fails too
            raise InvalidInput(
                f"propensity of offer {catalog.offer_ids[j]!r} is not in [0, 1]", field="propensity"
            )
        uj = u[j] if u is not None else math.nan
        if uj == uj:  # not NaN
            if not -1.0 <= uj <= 1.0:
                raise InvalidInput(
                    f"uplift of offer {catalog.offer_ids[j]!r} is not in [-1, 1]", field="uplift"
                )
            e = uj * values[j] - pj * costs[j]
            has.append(True)
        else:
            e = pj * (values[j] - costs[j])
            has.append(False)
        ev.append(e)
        if (ok is None or ok[j]) and (min_expected_value is None or e > min_expected_value):
            cand.append(j)
    n = len(cand)
    kk = min(k, n)
    if kk == 0:
        method = "exact" if isinstance(exploration, EpsilonGreedy) else f"monte_carlo:{exploration.draws}"
        return Ranking((), exploration.name, method, n)
    rng = rng if rng is not None else _DEFAULT_RNG
    if isinstance(exploration, EpsilonGreedy):
        order = sorted(cand, key=lambda j: -ev[j])  # stable: ties stay in catalogue order
        eps = exploration.epsilon
        prob = dict.fromkeys(cand, eps * kk / n)
        for j in order[:kk]:
            prob[j] += 1.0 - eps
        if eps > 0.0 and rng.random() < eps:
            picked = rng.choice(n, size=kk, replace=False).tolist()
            chosen = sorted((cand[i] for i in picked), key=lambda j: (-ev[j], j))
        else:
            chosen = order[:kk]
        method = "exact"
    else:
        chosen, prob = thompson_slate(exploration, p, u, catalog, cand, kk, rng)
        method = f"monte_carlo:{exploration.draws}"
    ids = catalog.offer_ids
    out = tuple(
        RankedOffer(
            offer_id=ids[j],
            rank=r,
            score=p[j],
            expected_value=ev[j],
            probability=prob[j],
            source=SOURCE_UPLIFT if has[j] else SOURCE_PROPENSITY,
            reasons=None if reasons is None else reasons[j],
        )
        for r, j in enumerate(chosen, start=1)
    )
    return Ranking(out, exploration.name, method, n, {ids[j]: prob[j] for j in cand})


def rank_for_customer(
    catalog: OfferCatalog,
    state: CustomerState,
    propensity: np.ndarray | Sequence[float],
    *,
    now: dt.datetime,
    uplift: np.ndarray | Sequence[float] | None = None,
    channel: str | None = None,
    caps: FrequencyCaps = DEFAULT_CAPS,
    k: int = 1,
    exploration: Exploration = GREEDY,
    rng: np.random.Generator | None = None,
    reasons: Sequence[Any] | None = None,
    min_expected_value: float | None = 0.0,
) -> Ranking:
    """The request path: eligibility, then ``rank_offers`` on what is left, within the caps' room."""
    codes, room = eligibility_one(catalog, state, now=now, channel=channel, caps=caps)
    return rank_offers(
        catalog,
        propensity,
        uplift=uplift,
        eligible=[c == Exclusion.ELIGIBLE for c in codes],
        k=min(k, room),
        exploration=exploration,
        rng=rng,
        reasons=reasons,
        min_expected_value=min_expected_value,
    )
