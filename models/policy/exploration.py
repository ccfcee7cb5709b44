"""How the policy explores: epsilon-greedy (exact probabilities) or Thompson sampling (estimated ones).

Exploration is what makes the decision log useful: every shown offer is stored with the probability the
policy had of showing it, so any other policy can be evaluated on that log (``models.evaluation``'s OPE)
before it goes live.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from loyalty_core import InvalidInput
from models.policy.catalog import OfferCatalog


@dataclass(frozen=True, slots=True)
class EpsilonGreedy:
    """With probability ``1 - epsilon`` the top-k by expected value, else k candidates drawn uniformly.

    The probability that offer ``i`` is in the slate is exact:
    ``(1 - epsilon) * [i in top-k] + epsilon * k / n`` for ``n`` candidates; with ``k = 1`` this is the
    textbook epsilon-greedy and the probabilities of the candidates sum to 1 (to ``k`` for a slate).
    ``epsilon = 0`` is the greedy policy.
    """

    epsilon: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 <= self.epsilon <= 1.0:
            raise InvalidInput("epsilon must be in [0, 1]", field="epsilon")

    @property
    def name(self) -> str:
        return "greedy" if self.epsilon == 0 else f"epsilon_greedy:{self.epsilon:g}"


@dataclass(frozen=True, slots=True)
class ThompsonSampling:
    """Rank by one draw from a posterior on each offer's completion probability.

    The posterior is centred on the model's ``P(complete | treated)`` ``p`` with ``strength`` ``s``
    pseudo-observations behind it: ``Beta(p * s, (1 - p) * s)`` (mean ``p``), or by default its Gaussian
    approximation with the same mean and variance ``p (1 - p) / (s + 1)``, clipped to [0, 1], which is four
    times cheaper to draw (a request draws ``draws + 1`` values per candidate). Offers the model knows little
    about (small ``strength``, e.g. the number of logged sends of that offer) get wider posteriors and are
    explored more. The control probability ``p - uplift`` stays at the model's value, so a draw moves
    treated completion and uplift together.

    The probability of an offer being in the slate has no closed form: it is ESTIMATED by Monte Carlo over
    ``draws`` further posterior draws plus the draw actually used (so a shown offer never gets 0); its
    standard error is about ``sqrt(q (1 - q) / draws)`` for a true probability ``q``.
    """

    strength: float | Sequence[float] = 100.0
    draws: int = 1000
    posterior: Literal["gaussian", "beta"] = "gaussian"

    def __post_init__(self) -> None:
        s = np.asarray(self.strength, dtype=np.float64)
        if not (np.isfinite(s).all() and (s > 0).all()):
            raise InvalidInput("Thompson-sampling strength must be positive", field="strength")
        if self.draws < 1:
            raise InvalidInput("Thompson sampling needs at least one Monte Carlo draw", field="draws")
        if self.posterior not in ("gaussian", "beta"):
            raise InvalidInput("posterior must be 'gaussian' or 'beta'", field="posterior")

    @property
    def name(self) -> str:
        return f"thompson:{self.posterior}"


Exploration = EpsilonGreedy | ThompsonSampling
GREEDY = EpsilonGreedy(0.0)


def thompson_slate(
    ts: ThompsonSampling,
    p_all: list[float],
    u_all: list[float] | None,
    catalog: OfferCatalog,
    cand: list[int],
    k: int,
    rng: np.random.Generator,
) -> tuple[list[int], dict[int, float]]:
    """Slate from draw 0 (by sampled EV), inclusion probabilities from draws 0..``draws`` (Monte Carlo)."""
    idx = np.asarray(cand)
    p = np.asarray(p_all)[idx]
    s = np.broadcast_to(np.asarray(ts.strength, dtype=np.float64), (len(catalog),))[idx]
    pc = np.clip(p, 1e-6, 1.0 - 1e-6)
    shape = (ts.draws + 1, len(cand))
    if ts.posterior == "beta":
        draws = rng.beta(pc * s, (1.0 - pc) * s, size=shape)
    else:
        sd = np.sqrt(pc * (1.0 - pc) / (s + 1.0))
        draws = np.clip(p + sd * rng.standard_normal(shape), 0.0, 1.0)
    value = catalog.value[idx]
    cost = catalog.cost[idx]
    if u_all is None:
        sampled = draws * (value - cost)
    else:
        u = np.asarray(u_all)[idx]
        has = ~np.isnan(u)
        control = np.where(has, p - np.where(has, u, 0.0), 0.0)
        sampled = np.where(has, (draws - control) * value - draws * cost, draws * (value - cost))
    if k == 1:
        top = np.argmax(sampled, axis=1)
        counts = np.bincount(top, minlength=len(cand))
        first = top[:1]
    else:
        tops = np.argsort(-sampled, axis=1, kind="stable")[:, :k]
        counts = np.bincount(tops.ravel(), minlength=len(cand))
        first = tops[0]
    prob = (counts / (ts.draws + 1)).tolist()
    return [cand[i] for i in first.tolist()], dict(zip(cand, prob, strict=True))
