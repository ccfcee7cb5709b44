"""The bulk import API: importers write customers, offers, activations, events and decisions through it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty_core import (
    Activation,
    Customer,
    Decision,
    InvalidInput,
    Member,
    OfferEvent,
    import_activations,
    import_customers,
    import_decisions,
    import_offer_events,
    import_offers,
    load_rules,
)
from loyalty_core.config import DEFAULT_RULES

NOW = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
OFFER = {"id": "o-1", "kind": "bonus_points", "bonus_points": 50, "duration_days": 10, "attributes": {"x": 1}}


def _count(session: Session, table: type) -> int:
    return session.scalar(select(func.count()).select_from(table)) or 0


def test_import_customers_counts_new_changed_and_unchanged(db_engine: Engine) -> None:
    rows = [
        {"id": "c-1", "source": "import", "gender": "F", "income": Decimal("100.00")},
        {"id": "c-2", "source": "import", "gender": "M"},
    ]
    with Session(db_engine) as session, session.begin():
        first = import_customers(session, rows, now=NOW)
    with Session(db_engine) as session, session.begin():
        again = import_customers(session, [rows[0], {**rows[1], "gender": "O"}], now=NOW)
    with Session(db_engine) as session:
        c2 = session.get(Customer, "c-2")
        assert c2 is not None
        assert c2.gender == "O"
        assert c2.region is None
    assert (first.new, first.updated, first.unchanged) == (2, 0, 0)
    assert (again.new, again.updated, again.unchanged) == (0, 1, 1)


def test_import_offers_keeps_the_sources_attributes(db_engine: Engine) -> None:
    with Session(db_engine) as session, session.begin():
        offers = import_offers(session, [OFFER], rules=load_rules(DEFAULT_RULES), now=NOW)
        assert offers["o-1"].attributes == {"x": 1}
        assert offers["o-1"].bonus_points == 50


def test_import_activations_raise_the_members_offer_horizon_once(db_engine: Engine) -> None:
    rows = [
        {"ext_id": "a-1", "offer_id": "o-1", "member_id": "m-1", "activated_at": NOW},
        {"ext_id": "a-2", "offer_id": "o-1", "member_id": "m-1", "activated_at": NOW + dt.timedelta(days=2)},
    ]
    with Session(db_engine) as session, session.begin():
        import_offers(session, [OFFER], rules=load_rules(DEFAULT_RULES), now=NOW)
        assert import_activations(session, rows, now=NOW) == 2
    with Session(db_engine) as session, session.begin():
        assert import_activations(session, rows, now=NOW) == 0
    with Session(db_engine) as session:
        member = session.get(Member, "m-1")
        assert member is not None
        assert member.offers_until == NOW + dt.timedelta(days=12)
        assert _count(session, Activation) == 2


def test_import_activations_refuse_an_offer_not_in_the_catalogue(db_engine: Engine) -> None:
    row = {"ext_id": "a-1", "offer_id": "nope", "member_id": "m-1", "activated_at": NOW}
    with Session(db_engine) as session, session.begin(), pytest.raises(InvalidInput, match="nope"):
        import_activations(session, [row], now=NOW)


def test_import_offer_events_and_decisions_insert_each_source_id_once(db_engine: Engine) -> None:
    events = [
        {"ext_id": f"e-{i}", "customer_id": "c-1", "offer_id": "o-1", "event": ev, "occurred_at": NOW}
        for i, ev in enumerate(["sent", "viewed", "viewed"])
    ]
    decision = {"id": "d-1", "customer_id": "c-1", "made_at": NOW, "policy": "random", "probability": 0.5}
    with Session(db_engine) as session, session.begin():
        import_offers(session, [OFFER], rules=load_rules(DEFAULT_RULES), now=NOW)
        assert import_offer_events(session, events) == {"sent": 1, "viewed": 2}
        assert import_decisions(session, [decision]) == 1
    with Session(db_engine) as session, session.begin():
        assert import_offer_events(session, events) == {}
        assert import_decisions(session, [decision]) == 0
    with Session(db_engine) as session:
        assert _count(session, OfferEvent) == 3
        stored = session.get(Decision, "d-1")
        assert stored is not None
        assert stored.served
        assert stored.offer_id is None
