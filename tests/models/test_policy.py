"""The decision policy: eligibility, expected value, exploration probabilities, budgets, multipliers."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from loyalty_core import Decision, InvalidInput, record_decisions
from models.policy import (
    NO_CAPS,
    Contact,
    CustomerState,
    DecisionRecord,
    EpsilonGreedy,
    Exclusion,
    FrequencyCaps,
    MultiplierPolicy,
    OfferCatalog,
    ThompsonSampling,
    active_matrix,
    allocate_campaign,
    allocate_multipliers,
    contact_counts,
    eligibility_matrix,
    eligibility_one,
    expected_value,
    multiplier_for,
    rank_for_customer,
    rank_offers,
)

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def catalogue() -> OfferCatalog:
    """Offers that trip one rule each: O_INACTIVE, O_WEB (web only), O_GOLD (gold tier), plus open ones."""
    rows = [
        {"offer_id": "O_OPEN1", "value": 300, "cost": 50},
        {"offer_id": "O_OPEN2", "value": 200, "cost": 20},
        {"offer_id": "O_INACTIVE", "value": 300, "cost": 10, "active": False},
        {"offer_id": "O_WEB", "value": 300, "cost": 10, "channels": ["web"]},
        {"offer_id": "O_GOLD", "value": 500, "cost": 10, "min_tier": "gold"},
        {"offer_id": "O_SILVER", "value": 250, "cost": 40, "min_tier": "silver", "channels": ["app", "web"]},
        {"offer_id": "O_TYPO", "value": 100, "cost": 5, "min_tier": "platinum"},
    ]
    return OfferCatalog.from_records(rows)


def codes_by_offer(cat: OfferCatalog, codes: list[int]) -> dict[str, Exclusion]:
    return {oid: Exclusion(c) for oid, c in zip(cat.offer_ids, codes, strict=True)}


# --- eligibility ------------------------------------------------------------------------------------------


def test_each_rule_excludes_what_it_should() -> None:
    cat = catalogue()
    state = CustomerState(
        tier="silver",
        active_offers=frozenset({"O_OPEN2"}),
        contacts=(Contact(NOW - 2 * DAY, "O_SILVER", "web"),),
    )
    codes, room = eligibility_one(cat, state, now=NOW, channel="app", caps=FrequencyCaps(per_offer=1))
    got = codes_by_offer(cat, codes)
    assert got == {
        "O_OPEN1": Exclusion.ELIGIBLE,
        "O_OPEN2": Exclusion.ALREADY_ACTIVE,
        "O_INACTIVE": Exclusion.INACTIVE,
        "O_WEB": Exclusion.CHANNEL,
        "O_GOLD": Exclusion.TIER,
        "O_SILVER": Exclusion.OFFER_CAP,
        # the ledger ignores a min_tier that is not a tier of the programme, so the policy does too
        "O_TYPO": Exclusion.ELIGIBLE,
    }
    assert room == 2  # 4 per customer - 1 contact, 2 per channel - 0 in app


def test_tier_and_channel_rules_admit_when_met() -> None:
    cat = catalogue()
    codes, _ = eligibility_one(cat, CustomerState(tier="gold"), now=NOW, channel="web", caps=NO_CAPS)
    got = codes_by_offer(cat, codes)
    assert got["O_GOLD"] == got["O_WEB"] == got["O_SILVER"] == Exclusion.ELIGIBLE
    # without a request channel there is no channel restriction (batch scoring)
    codes, _ = eligibility_one(cat, CustomerState(tier="base"), now=NOW, channel=None, caps=NO_CAPS)
    got = codes_by_offer(cat, codes)
    assert got["O_WEB"] == Exclusion.ELIGIBLE
    assert got["O_SILVER"] == got["O_GOLD"] == Exclusion.TIER


def test_customer_and_channel_caps_within_the_window() -> None:
    cat = catalogue()
    caps = FrequencyCaps(window=dt.timedelta(days=30), per_customer=3, per_channel=2, per_offer=None)
    inside = [Contact(NOW - d * DAY, "O_OPEN1", ch) for d, ch in ((1, "app"), (29, "app"))]
    # exactly one window ago is out; in the future (clock skew) is out too
    outside = [Contact(NOW - 30 * DAY, "O_OPEN1", "app"), Contact(NOW + DAY, "O_OPEN1", "app")]
    state = CustomerState(tier="gold", contacts=(*inside, *outside))
    codes, room = eligibility_one(cat, state, now=NOW, channel="app", caps=caps)
    got = codes_by_offer(cat, codes)
    assert room == 0
    assert got["O_OPEN1"] == got["O_GOLD"] == Exclusion.CHANNEL_CAP
    assert got["O_INACTIVE"] == Exclusion.INACTIVE  # the first failing rule is the one reported
    # the same history leaves room in another channel, up to the customer-wide cap
    codes, room = eligibility_one(cat, state, now=NOW, channel="web", caps=caps)
    assert room == 1
    assert codes_by_offer(cat, codes)["O_OPEN1"] == Exclusion.ELIGIBLE
    state3 = CustomerState(tier="gold", contacts=(*inside, Contact(NOW - 3 * DAY, "O_OPEN2", "web")))
    codes, room = eligibility_one(cat, state3, now=NOW, channel="web", caps=caps)
    assert room == 0
    assert codes_by_offer(cat, codes)["O_OPEN1"] == Exclusion.CUSTOMER_CAP


def test_caps_bound_the_slate() -> None:
    cat = catalogue()
    state = CustomerState(tier="gold", contacts=(Contact(NOW - DAY, "O_TYPO", "app"),))
    p = np.full(len(cat), 0.5)
    r = rank_for_customer(cat, state, p, now=NOW, channel="app", k=5, caps=FrequencyCaps(per_channel=2))
    assert len(r.offers) == 1
    assert "O_TYPO" not in {o.offer_id for o in r.offers}  # per-offer cap


def test_naive_now_is_refused() -> None:
    with pytest.raises(InvalidInput, match="timezone"):
        eligibility_one(catalogue(), CustomerState(), now=dt.datetime(2026, 1, 1))


def test_unknown_customer_tier_is_refused() -> None:
    with pytest.raises(InvalidInput, match="tier"):
        eligibility_one(catalogue(), CustomerState(tier="diamond"), now=NOW)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), channel=st.sampled_from([None, "app", "web", "pos"]))
def test_vectorised_eligibility_matches_the_single_customer_path(seed: int, channel: str | None) -> None:
    rng = np.random.default_rng(seed)
    cat = catalogue()
    n = 40
    ids = [f"C{i:03d}" for i in range(n)]
    tiers = rng.choice(["base", "silver", "gold"], n)
    caps = FrequencyCaps(
        per_customer=int(rng.integers(1, 5)), per_channel=int(rng.integers(1, 3)), per_offer=1
    )
    contacts = pd.DataFrame(
        {
            "customer_id": rng.choice(ids, 120),
            "offer_id": rng.choice([*cat.offer_ids, "O_GONE"], 120),
            "sent_at": [NOW - dt.timedelta(hours=float(h)) for h in rng.uniform(-24, 24 * 40, 120)],
            "channel": rng.choice(["app", "web", "pos"], 120),
        }
    )
    activations = pd.DataFrame(
        {
            "customer_id": rng.choice(ids, 30),
            "offer_id": rng.choice(cat.offer_ids, 30),
            "activated_at": [NOW - dt.timedelta(days=float(d)) for d in rng.uniform(-2, 20, 30)],
        }
    )
    activations["expires_at"] = activations["activated_at"] + pd.Timedelta(days=10)
    counts = contact_counts(contacts, ids, cat, now=NOW, window=caps.window, channel=channel)
    active = active_matrix(activations, ids, cat, now=NOW)
    codes, slots = eligibility_matrix(
        cat, tier_rank=cat.tier_ranks(tiers), active=active, counts=counts, channel=channel, caps=caps
    )
    for i, cid in enumerate(ids):
        mine = contacts[contacts["customer_id"] == cid]
        acts = activations[
            (activations["customer_id"] == cid)
            & (activations["activated_at"] <= NOW)
            & (activations["expires_at"] > NOW)
        ]
        state = CustomerState(
            tier=str(tiers[i]),
            active_offers=frozenset(acts["offer_id"]),
            contacts=tuple(
                Contact(t.to_pydatetime(), o, c)
                for t, o, c in zip(mine["sent_at"], mine["offer_id"], mine["channel"], strict=True)
            ),
        )
        one, room = eligibility_one(cat, state, now=NOW, channel=channel, caps=caps)
        assert list(codes[i]) == one, cid
        assert min(slots[i], 1 << 30) == room


# --- expected value ---------------------------------------------------------------------------------------


def test_expected_value_uses_uplift_and_falls_back_to_propensity() -> None:
    p = np.array([[0.5, 0.2], [0.1, 0.4]])
    u = np.array([[0.1, np.nan], [np.nan, -0.05]])
    value, cost = np.array([100.0, 50.0]), np.array([20.0, 10.0])
    ev, used = expected_value(p, value, cost, u)
    np.testing.assert_allclose(ev, [[0.1 * 100 - 0.5 * 20, 0.2 * 40], [0.1 * 80, -0.05 * 50 - 0.4 * 10]])
    assert used.tolist() == [[True, False], [False, True]]
    ev2, used2 = expected_value(p, value, cost)
    np.testing.assert_allclose(ev2, p * (value - cost))
    assert not used2.any()


@pytest.mark.parametrize(
    ("p", "u"), [([1.2, 0.1], None), ([np.nan, 0.1], None), ([0.2, 0.1], [1.5, 0.0]), ([0.2, 0.1], [0.1])]
)
def test_expected_value_refuses_bad_scores(p: list[float], u: list[float] | None) -> None:
    with pytest.raises(InvalidInput):
        expected_value(np.array(p), np.ones(2), np.zeros(2), None if u is None else np.array(u))


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_single_customer_expected_values_match_the_batch_formula(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cat = catalogue()
    p = rng.uniform(0, 1, len(cat))
    u = np.where(rng.random(len(cat)) < 0.6, rng.uniform(-1, 1, len(cat)) * p, np.nan)
    ev, used = expected_value(p, cat.value, cat.cost, u)
    r = rank_offers(cat, p, uplift=u, k=len(cat), min_expected_value=None)
    assert len(r.offers) == len(cat)
    for o in r.offers:
        j = cat.index[o.offer_id]
        assert o.expected_value == pytest.approx(ev[j], abs=1e-9)
        assert o.source == ("uplift" if used[j] else "propensity")
    assert [o.expected_value for o in r.offers] == sorted((o.expected_value for o in r.offers), reverse=True)
    # uplift given as a list with None for "no estimate" means the same
    as_list = [None if np.isnan(x) else float(x) for x in u]
    again = rank_offers(cat, p.tolist(), uplift=as_list, k=len(cat), min_expected_value=None)
    assert again == r


# --- ranking and exploration ------------------------------------------------------------------------------


def scores(cat: OfferCatalog) -> tuple[np.ndarray, np.ndarray]:
    p = np.array([0.30, 0.50, 0.90, 0.40, 0.20, 0.25, 0.60])
    u = np.array([0.10, 0.05, 0.50, np.nan, 0.08, 0.02, 0.20])
    return p, u


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


# --- the decision record ----------------------------------------------------------------------------------


def test_decision_record_is_a_decisions_row(engine: Engine) -> None:
    cat = catalogue()
    p, u = scores(cat)
    reasons = [[{"feature": "recency_days", "contribution": -0.2}] for _ in cat.offer_ids]
    r = rank_offers(
        cat, p, uplift=u, k=2, exploration=EpsilonGreedy(0.1), rng=np.random.default_rng(0), reasons=reasons
    )
    rec = DecisionRecord.from_ranking(
        r, customer_id="C1", made_at=NOW, channel="app", model_versions={"offers": "3", "uplift": "1"}
    )
    empty = DecisionRecord.from_ranking(
        rank_offers(cat, p, k=0), customer_id="C2", made_at=NOW, decision_id="d-empty"
    )
    with Session(engine) as s, s.begin():
        record_decisions(s, [rec.to_row(), empty.to_row()])
    with Session(engine) as s:
        got = s.get(Decision, rec.decision_id)
        assert got is not None
        assert got.offer_id == r.offers[0].offer_id
        assert got.probability == pytest.approx(r.offers[0].probability)
        assert got.policy == "epsilon_greedy:0.1"
        assert got.offers is not None
        assert [o["offer_id"] for o in got.offers] == [o.offer_id for o in r.offers]
        assert got.offers[0]["reasons"] == reasons[0]
        assert got.model_versions == {"offers": "3", "uplift": "1", "probability_method": "exact"}
        none = s.scalar(select(Decision).where(Decision.id == "d-empty"))
        assert none is not None
        assert none.offer_id is None
        assert none.probability == 1.0
    json.dumps(rec.to_row()["offers"])


def test_decision_record_refuses_naive_times() -> None:
    with pytest.raises(InvalidInput, match="made_at"):
        DecisionRecord.from_ranking(
            rank_offers(catalogue(), np.zeros(7)), customer_id="C", made_at=dt.datetime(2026, 1, 1)
        )


# --- campaigns --------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), budget=st.floats(0, 5_000), limit=st.none() | st.integers(0, 300))
def test_campaign_budget_is_never_exceeded_and_best_come_first(
    seed: int, budget: float, limit: int | None
) -> None:
    rng = np.random.default_rng(seed)
    n = 500
    ids = [f"C{i:04d}" for i in range(n)]
    p = rng.uniform(0, 0.6, n)
    u = np.where(rng.random(n) < 0.8, rng.uniform(-0.1, 0.3, n) * p, np.nan)
    eligible = rng.random(n) < 0.9
    out = allocate_campaign(
        ids, p, value=400.0, cost=60.0, uplift=u, eligible=eligible, budget=budget, limit=limit
    )
    assert out["expected_cost"].sum() <= budget + 1e-9
    assert limit is None or len(out) <= limit
    assert (out["expected_value"] > 0).all()
    assert out["expected_value"].is_monotonic_decreasing
    np.testing.assert_allclose(out["cumulative_cost"], out["expected_cost"].cumsum())
    assert out["rank"].tolist() == list(range(1, len(out) + 1))
    chosen = set(out["customer_id"])
    assert all(eligible[ids.index(c)] for c in chosen)
    # a prefix of the ranking: every positive eligible customer left out is worth no more than the last one in
    ev, _ = expected_value(p, 400.0, 60.0, u)
    left = [ev[i] for i in range(n) if eligible[i] and ev[i] > 0 and ids[i] not in chosen]
    if len(out) and left:
        assert max(left) <= out["expected_value"].iloc[-1]


def test_campaign_without_budget_takes_every_positive_customer_and_counts_points() -> None:
    ids = ["A", "B", "C", "D"]
    p = np.array([0.5, 0.4, 0.1, 0.3])
    u = np.array([0.2, 0.0, 0.05, np.nan])
    out = allocate_campaign(ids, p, value=100.0, cost=10.0, uplift=u)
    # EV: A 20-5=15, B -4, C 5-1=4, D fallback 0.3*90=27
    assert out["customer_id"].tolist() == ["D", "A", "C"]
    assert out["source"].tolist() == ["propensity", "uplift", "uplift"]
    pts = allocate_campaign(ids, p, value=100.0, cost=10.0, uplift=u, budget=400, budget_cost=500)
    assert pts["customer_id"].tolist() == ["D", "A"]  # 150 + 250 points of bonus expected
    assert pts["cumulative_cost"].iloc[-1] == pytest.approx(400)
    ratio = allocate_campaign(ids, p, value=100.0, cost=10.0, uplift=u, rank_by="value_per_cost")
    assert ratio["customer_id"].tolist() == ["D", "C", "A"]  # 27/3, 4/1, 15/5 per RUB of expected cost


# --- multipliers ------------------------------------------------------------------------------------------


def multiplier_population(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    churn = rng.beta(2, 5, n)
    value = rng.lognormal(8, 1, n)
    base = rng.gamma(2.0, 150.0, n)
    return churn, value, base


@pytest.mark.parametrize("budget", [0.0, 10_000.0, 100_000.0, None])
def test_multipliers_stay_in_the_set_and_within_budget(budget: float | None) -> None:
    churn, value, base = multiplier_population()
    pol = MultiplierPolicy()
    a = allocate_multipliers(churn, value, base, policy=pol, budget=budget)
    assert set(np.unique(a.multiplier)) <= set(pol.levels)
    np.testing.assert_allclose(a.extra_points, (a.multiplier - 1) * base)
    assert a.spent == pytest.approx(a.extra_points.sum())
    if budget is not None:
        assert a.spent <= budget + 1e-6
    if budget == 0.0:
        assert (a.multiplier == 1.0).all()
    # nothing is granted that keeps less value than its points cost
    kept_per_point = np.divide(
        a.retained_value, a.extra_points, out=np.full_like(base, np.inf), where=a.extra_points > 0
    )
    assert (kept_per_point[a.multiplier > 1] > pol.point_value).all()


def test_more_budget_buys_more_and_risky_valuable_customers_first() -> None:
    churn, value, base = multiplier_population()
    spent = [allocate_multipliers(churn, value, base, budget=b).spent for b in (1e3, 1e4, 1e5, 1e6)]
    assert spent == sorted(spent)
    a = allocate_multipliers(churn, value, base, budget=20_000)
    assert 1 < (a.multiplier > 1).sum() < len(churn)
    worth = churn * value / base  # RUB at risk per point earned: what the greedy ranks by
    assert worth[a.multiplier > 1].min() >= np.quantile(worth, 0.5)
    # an identical customer with higher churn risk never gets a lower multiplier
    c = np.array([0.1, 0.3, 0.6])
    m = allocate_multipliers(c, np.full(3, 5000.0), np.full(3, 200.0), budget=500).multiplier
    assert list(m) == sorted(m)


def test_online_rule_follows_the_batch_threshold() -> None:
    churn, value, base = multiplier_population()
    budget = 30_000.0
    batch = allocate_multipliers(churn, value, base, budget=budget)
    assert batch.threshold > MultiplierPolicy().point_value  # the budget binds
    online = np.array(
        [
            multiplier_for(c, v, b, threshold=batch.threshold)
            for c, v, b in zip(churn, value, base, strict=True)
        ]
    )
    assert (online <= batch.multiplier).all()
    assert ((online - 1) * base).sum() <= budget
    assert (online == batch.multiplier).mean() > 0.99
    no_budget = allocate_multipliers(churn, value, base)
    assert no_budget.threshold == MultiplierPolicy().point_value
    free = np.array(
        [
            multiplier_for(c, v, b, threshold=no_budget.threshold)
            for c, v, b in zip(churn[:200], value[:200], base[:200], strict=True)
        ]
    )
    np.testing.assert_array_equal(free, no_budget.multiplier[:200])


def test_dominated_levels_are_skipped() -> None:
    # 1.5x buys almost nothing here: the hull goes straight from 1x to 2x
    pol = MultiplierPolicy(levels=(1.0, 1.5, 2.0), effect=(0.0, 0.01, 0.30), point_value=0.5)
    a = allocate_multipliers(np.array([0.5]), np.array([1000.0]), np.array([100.0]), policy=pol)
    assert a.multiplier[0] == 2.0
    assert multiplier_for(0.5, 1000.0, 100.0, threshold=0.5, policy=pol) == 2.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"levels": (1.5, 2.0), "effect": (0.0, 0.1)},
        {"levels": (1.0, 2.0), "effect": (0.0,)},
        {"effect": (0, 0.1, 0.2, 1.5)},
    ],
)
def test_multiplier_policy_refuses_bad_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        MultiplierPolicy(**kwargs)  # type: ignore[arg-type]
