"""Ranking with exploration: greedy, epsilon-greedy and Thompson sampling, and their logged probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from models.policy import (
    EpsilonGreedy,
    ThompsonSampling,
    expected_value,
    rank_offers,
)
from tests.models.policy.policy_data import catalogue, scores


def test_epsilon_zero_is_greedy() -> None:
    cat = catalogue()
    p, u = scores(cat)
    ev, _ = expected_value(p, cat.value, cat.cost, u)
    rng = np.random.default_rng(1)
    for k in (1, 3):
        r = rank_offers(
            cat, p, uplift=u, k=k, exploration=EpsilonGreedy(0.0), rng=rng, reasons=list(cat.offer_ids)
        )
        want = [cat.offer_ids[j] for j in np.argsort(-ev, kind="stable") if ev[j] > 0][:k]
        assert [o.offer_id for o in r.offers] == want
        assert all(o.probability == 1.0 for o in r.offers)
        assert [o.rank for o in r.offers] == list(range(1, k + 1))
        assert all(o.reasons == o.offer_id for o in r.offers)  # passed through, aligned
    top = r.offers[0]
    j = cat.index[top.offer_id]
    assert top.expected_value == pytest.approx(ev[j])
    assert top.score == p[j]
    assert {o.source for o in r.offers} <= {"uplift", "propensity"}
    by_id = {o.offer_id: o for o in rank_offers(cat, p, uplift=u, k=7, min_expected_value=None).offers}
    assert by_id["O_WEB"].source == "propensity"  # no uplift estimate for it
    assert by_id["O_OPEN1"].source == "uplift"


def test_offers_expected_to_lose_money_are_not_candidates() -> None:
    cat = catalogue()
    p, u = scores(cat)
    ev, _ = expected_value(p, cat.value, cat.cost, u)
    r = rank_offers(
        cat, p, uplift=u, k=len(cat), exploration=EpsilonGreedy(1.0), rng=np.random.default_rng(0)
    )
    assert r.candidates == int((ev > 0).sum()) < len(cat)
    assert all(o.expected_value > 0 for o in r.offers)
    everything = rank_offers(cat, p, uplift=u, k=len(cat), min_expected_value=None)
    assert len(everything.offers) == len(cat)
    none = rank_offers(cat, p, uplift=u, k=2, eligible=np.zeros(len(cat), dtype=bool))
    assert none.offers == ()


def _empirical(
    exploration: EpsilonGreedy | ThompsonSampling, k: int, trials: int
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """How often each offer was shown over seeded requests, and the probabilities stated for it."""
    cat = catalogue()
    p, u = scores(cat)
    rng = np.random.default_rng(42)
    shown: dict[str, int] = {}
    stated: dict[str, list[float]] = {}
    for _ in range(trials):
        r = rank_offers(cat, p, uplift=u, k=k, exploration=exploration, rng=rng)
        assert sum(r.probabilities.values()) == pytest.approx(k)
        assert {o.offer_id: o.probability for o in r.offers}.items() <= r.probabilities.items()
        for shown_offer in r.offers:
            shown[shown_offer.offer_id] = shown.get(shown_offer.offer_id, 0) + 1
        for oid, q in r.probabilities.items():
            stated.setdefault(oid, []).append(q)
    return {o: shown.get(o, 0) / trials for o in stated}, stated


@pytest.mark.parametrize("k", [1, 2])
def test_epsilon_greedy_probabilities_are_exact(k: int) -> None:
    trials = 20_000
    freq, stated = _empirical(EpsilonGreedy(0.3), k, trials)
    n = len(stated)
    assert all(len(set(qs)) == 1 for qs in stated.values())  # one exact probability per offer
    for o, qs in stated.items():
        q = qs[0]
        assert freq[o] == pytest.approx(q, abs=4 * np.sqrt(q * (1 - q) / trials)), o
    assert min(qs[0] for qs in stated.values()) == pytest.approx(0.3 * k / n)
    assert max(qs[0] for qs in stated.values()) == pytest.approx(0.7 + 0.3 * k / n)


@pytest.mark.parametrize("posterior", ["gaussian", "beta"])
@pytest.mark.parametrize("k", [1, 2])
def test_thompson_probabilities_match_choice_frequencies(posterior: str, k: int) -> None:
    trials, draws = 3000, 400
    ts = ThompsonSampling(strength=5.0, draws=draws, posterior=posterior)  # type: ignore[arg-type]
    freq, stated = _empirical(ts, k, trials)
    assert sum(f > 0.02 for f in freq.values()) >= k + 1  # it explores
    for o, qs in stated.items():
        q = float(np.mean(qs))  # Monte Carlo estimates, averaged over the requests
        # sampling error of the frequency, plus the estimate's own draw (at most 1 / (draws + 1))
        assert freq[o] == pytest.approx(q, abs=4 * np.sqrt(q * (1 - q) / trials) + 1 / (draws + 1)), o


def test_thompson_probability_is_an_estimate_with_its_method_named() -> None:
    cat = catalogue()
    p, u = scores(cat)
    r = rank_offers(
        cat, p, uplift=u, k=1, exploration=ThompsonSampling(draws=250), rng=np.random.default_rng(3)
    )
    assert r.probability_method == "monte_carlo:250"
    assert 1 / 251 <= r.offers[0].probability <= 1.0
    assert r.policy == "thompson:gaussian"


def test_seeded_rng_reproduces_the_choice() -> None:
    cat = catalogue()
    p, u = scores(cat)
    for ex in (EpsilonGreedy(0.5), ThompsonSampling(draws=50)):
        a = [
            rank_offers(cat, p, uplift=u, k=2, exploration=ex, rng=np.random.default_rng(s))
            for s in range(20)
        ]
        b = [
            rank_offers(cat, p, uplift=u, k=2, exploration=ex, rng=np.random.default_rng(s))
            for s in range(20)
        ]
        assert a == b
        assert len({tuple(o.offer_id for o in r.offers) for r in a}) > 1
