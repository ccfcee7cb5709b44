"""Eligibility: each exclusion rule, the frequency caps, and the batch path agreeing with the single one."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty_core import InvalidInput
from models.policy import (
    NO_CAPS,
    Contact,
    CustomerState,
    Exclusion,
    FrequencyCaps,
    active_matrix,
    contact_counts,
    eligibility_matrix,
    eligibility_one,
    rank_for_customer,
)
from tests.models.policy.policy_data import DAY, NOW, catalogue, codes_by_offer


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
