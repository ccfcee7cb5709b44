"""The Starbucks importer on a slice of the real files: every event lands once, sentinels become NULL, points
follow the USD amount at the programme's fx rate, bad rows are reported and the rest goes in."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from loyalty_core import (
    Customer,
    Entry,
    InvalidInput,
    Member,
    Offer,
    OfferEvent,
    check_invariants,
    get_settings,
    load_rules,
)
from pipelines.sources.starbucks import (
    EPOCH,
    import_starbucks,
    income_band,
    parse_portfolio,
    parse_profile,
    parse_transcript,
    read_starbucks,
)
from serving import cli_app as app
from tests.conftest import starbucks_data, write_starbucks_slice

RULES = load_rules(get_settings().rules)
SLICE_PERSONS = 300
EVENT_NAMES = {"offer received": "sent", "offer viewed": "viewed", "offer completed": "completed"}


@pytest.fixture(scope="module")
def slice_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 300 profiles, every transcript row of theirs, and the whole portfolio."""
    return write_starbucks_slice(tmp_path_factory.mktemp("starbucks-slice"), SLICE_PERSONS)


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _source_counts(directory: Path) -> Counter[str]:
    return Counter(r["event"] for r in _records(directory / "transcript.json"))


def _db_counts(engine: Engine) -> dict[str, Any]:
    with Session(engine) as s:
        usd_entries = s.scalar(
            select(func.count()).select_from(Entry).where(Entry.kind == "earn", Entry.currency == "USD")
        )
        rows = s.execute(select(OfferEvent.event, func.count()).group_by(OfferEvent.event)).all()
        events = dict(rows)
        customers = s.scalar(select(func.count()).select_from(Customer))
        offers = s.scalar(select(func.count()).select_from(Offer))
    return {"transaction": usd_entries, "events": events, "customers": customers, "offers": offers}


def test_import_loads_every_event_once_and_rerun_adds_nothing(db_engine: Engine, slice_dir: Path) -> None:
    source = _source_counts(slice_dir)
    first = import_starbucks(db_engine, slice_dir, rules=RULES)
    assert first.rejected == 0
    assert first.events_read == source
    counts = _db_counts(db_engine)
    assert counts["transaction"] == source["transaction"]
    assert counts["events"] == {EVENT_NAMES[k]: n for k, n in source.items() if k in EVENT_NAMES}
    assert (counts["customers"], counts["offers"]) == (SLICE_PERSONS, 10)
    tx = first.transactions
    assert tx is not None
    assert tx.posted + tx.held == source["transaction"]
    with Session(db_engine) as s:
        held = s.scalar(select(func.count()).select_from(Entry).where(Entry.status == "held"))
    assert sum(first.held_in_ledger.values()) == tx.held == held  # holds are reported, never hidden
    assert first.customers_new == SLICE_PERSONS
    with Session(db_engine) as s:
        offers = {o.id: o for o in s.scalars(select(Offer))}
    for offer in offers.values():
        attrs = offer.attributes or {}
        if offer.kind == "cashback":  # amounts in RUB at the rules' rate, the USD figures kept beside
            assert offer.threshold == Decimal(str(attrs["difficulty"])) * RULES.fx["USD"]
            assert offer.cost == Decimal(str(attrs["reward"])) * RULES.fx["USD"]
        else:
            assert (offer.kind, offer.threshold) == ("informational", None)

    again = import_starbucks(db_engine, slice_dir, rules=RULES)
    assert _db_counts(db_engine) == counts
    assert again.transactions is not None
    assert again.transactions.already_present == source["transaction"]
    assert again.transactions.posted == again.transactions.held == 0
    assert sum(again.offer_events_new.values()) == 0
    assert sum(again.offer_events_present.values()) == sum(counts["events"].values())
    assert (again.customers_new, again.customers_updated, again.customers_unchanged) == (0, 0, SLICE_PERSONS)
    with Session(db_engine) as s:
        assert check_invariants(s) == []


def test_import_turns_sentinels_into_null(engine: Engine, slice_dir: Path) -> None:
    profile = _records(slice_dir / "profile.json")
    unknown = {p["id"] for p in profile if p["age"] == 118}
    assert unknown, "the slice should contain customers with the age sentinel"
    report = import_starbucks(engine, slice_dir, rules=RULES)
    assert report.unknown_age == len(unknown)
    assert report.unknown_income == sum(p["income"] is None for p in profile)
    with Session(engine) as s:
        rows = {c.id: c for c in s.scalars(select(Customer))}
    for cid in unknown:
        c = rows[cid]
        assert (c.birth_year, c.gender, c.income, c.income_band) == (None, None, None, None)
        assert c.attributes == {"age": None, "income_currency": "USD", "income_period": "year"}
    assert all(c.birth_year is None or c.birth_year > EPOCH.year - 118 for c in rows.values())
    known = next(p for p in profile if p["age"] != 118 and p["income"] is not None)
    c = rows[known["id"]]
    assert c.birth_year == 2018 - known["age"]
    assert c.income == Decimal(str(known["income"]))
    assert c.income_band == income_band(Decimal(str(known["income"])))
    assert c.joined_on is not None
    assert c.joined_on.strftime("%Y%m%d") == str(known["became_member_on"])
    assert (c.source, c.region, c.channel) == ("starbucks", None, None)


def test_import_points_follow_the_usd_amount_at_the_fx_rate(engine: Engine, slice_dir: Path) -> None:
    import_starbucks(engine, slice_dir, rules=RULES)
    by_person: dict[str, list[Decimal]] = {}
    for r in _records(slice_dir / "transcript.json"):
        if r["event"] == "transaction":
            # json.dumps of the parsed float gives back the file's text (it round-trips the shortest repr).
            by_person.setdefault(r["person"], []).append(Decimal(json.dumps(r["value"]["amount"])))
    with Session(engine) as s:
        held = set(s.scalars(select(Entry.member_id).where(Entry.status == "held")))
        person = max((p for p in by_person if p not in held), key=lambda p: len(by_person[p]))
        balance = s.scalar(select(Member.balance).where(Member.id == person))
        tiers = set(s.scalars(select(Entry.tier).where(Entry.member_id == person)))
        stored = s.execute(
            select(Entry.amount, Entry.currency, Entry.category, Entry.channel).where(
                Entry.member_id == person
            )
        ).all()
    # By hand from the default rules: USD at 90 RUB, 1 point per full 100 RUB, base tier (boost 1).
    assert RULES.fx["USD"] == Decimal(90)
    (purchase,) = (r for r in RULES.earn if "purchase" in r.types)
    assert (purchase.per_amount, purchase.points) == (Decimal(100), 1)
    assert tiers == {"base"}
    expected = sum(int(amount * 90 // 100) for amount in by_person[person])
    assert expected > 0
    assert balance == expected
    assert sorted(a for a, *_ in stored) == sorted(by_person[person])
    assert {(cur, cat, ch) for _, cur, cat, ch in stored} == {("USD", None, None)}


def _with_bad_rows(slice_dir: Path, tmp_path: Path) -> tuple[Path, int]:
    out = tmp_path / "bad"
    shutil.copytree(slice_dir, out)
    transcript = (out / "transcript.json").read_text()
    person = _records(slice_dir / "profile.json")[1]["id"]
    offer = _records(slice_dir / "portfolio.json")[0]["id"]
    bad = [
        {"person": "0" * 32, "event": "transaction", "value": {"amount": 5.0}, "time": 3},
        {"person": person, "event": "transaction", "value": {"amount": -2.5}, "time": 3},
        {"person": person, "event": "offer received", "value": {"offer id": "f" * 32}, "time": 3},
        {"person": person, "event": "offer completed", "value": {"offer_id": offer}, "time": 3},
        {"person": person, "event": "transaction", "value": {}, "time": 3},
    ]
    lines = [json.dumps(r) for r in bad] + ["{not json"]
    (out / "transcript.json").write_text(transcript + "\n".join(lines) + "\n")
    return out, transcript.count("\n") + 1


def test_import_reports_malformed_rows_and_loads_the_rest(
    engine: Engine, slice_dir: Path, tmp_path: Path
) -> None:
    bad_dir, first_bad = _with_bad_rows(slice_dir, tmp_path)
    report = import_starbucks(engine, bad_dir, rules=RULES)
    found = [(p.row, p.column, p.reason.split(":")[0]) for p in report.problems["transcript.json"]]
    assert found == [
        (first_bad, "person", "unknown person"),
        (first_bad + 1, "value.amount", "negative amount"),
        (first_bad + 2, "value.offer id", "unknown offer"),
        (first_bad + 3, "value", "missing key 'reward'"),
        (first_bad + 4, "value", "missing key 'amount'"),
        (first_bad + 5, "record", "not valid JSON"),
    ]
    assert report.rows_read["transcript.json"] == first_bad + 5
    assert report.rejected_by_reason()["transcript.json: person: unknown person"] == 1
    source = _source_counts(slice_dir)
    counts = _db_counts(engine)
    assert counts["transaction"] == source["transaction"]
    assert counts["events"] == {EVENT_NAMES[k]: n for k, n in source.items() if k in EVENT_NAMES}
    text = "\n".join(report.lines())
    assert f"transcript.json row {first_bad + 1}, column value.amount: negative amount" in text
    assert "rejected rows: 6" in text


def test_parse_rejects_bad_profile_and_portfolio_rows() -> None:
    profile = [
        (1, {"id": "a" * 32, "gender": "M", "age": 40, "became_member_on": "20180101", "income": 50000.0}),
        (2, {"id": "b" * 32, "gender": "X", "age": 40, "became_member_on": "20180101", "income": None}),
        (3, {"id": "c" * 32, "gender": None, "age": 200, "became_member_on": 20180101, "income": None}),
        (4, {"id": "d" * 32, "gender": None, "age": 118, "became_member_on": "2018-01-01", "income": None}),
        (5, {"id": "a" * 32, "gender": None, "age": 118, "became_member_on": 20180101, "income": None}),
    ]
    rows, problems = parse_profile([(r, {k: _num(v) for k, v in rec.items()}) for r, rec in profile])
    assert [r["id"] for r in rows] == ["a" * 32]
    assert rows[0]["income_band"] == "middle"
    assert [(p.row, p.column) for p in problems] == [
        (2, "gender"),
        (3, "age"),
        (4, "became_member_on"),
        (5, "id"),
    ]
    portfolio = [
        {"id": "o1", "offer_type": "discount", "difficulty": 20, "reward": 5, "duration": Decimal("10.0"),
         "channels": ["web", "email"]},
        {"id": "o2", "offer_type": "informational", "difficulty": 0, "reward": 0, "duration": Decimal("3.0"),
         "channels": ["email"]},
        {"id": "o3", "offer_type": "coupon", "difficulty": 0, "reward": 0, "duration": 3, "channels": []},
        {"id": "o4", "offer_type": "bogo", "difficulty": 5, "reward": 5, "duration": Decimal("2.5"),
         "channels": []},
    ]  # fmt: skip
    specs, problems = parse_portfolio(enumerate(portfolio, start=1))
    assert [(p.row, p.column) for p in problems] == [(3, "offer_type"), (4, "duration")]
    discount, informational = specs
    assert (discount["kind"], discount["threshold"], discount["value"], discount["duration_days"]) == (
        "cashback",
        Decimal(20),
        Decimal(5),
        10,
    )
    assert discount["attributes"]["offer_type"] == "discount"
    assert (informational["kind"], informational["threshold"]) == ("informational", None)


def _num(value: Any) -> Any:
    return Decimal(str(value)) if isinstance(value, float) else value


def test_parse_numbers_repeated_rows_and_keeps_exact_amounts() -> None:
    person, offer = "p" * 32, "o" * 32
    records = [
        (1, {"person": person, "event": "transaction", "value": {"amount": Decimal("0.83")}, "time": 5}),
        (2, {"person": person, "event": "transaction", "value": {"amount": Decimal("12.345")}, "time": 5}),
        (3, {"person": person, "event": "offer received", "value": {"offer id": offer}, "time": 0}),
        (4, {"person": person, "event": "offer received", "value": {"offer id": offer}, "time": 0}),
        (
            5,
            {
                "person": person,
                "event": "offer completed",
                "value": {"offer_id": offer, "reward": 2},
                "time": 9,
            },
        ),
    ]
    t = parse_transcript(records, persons={person}, offers={offer})
    assert t.problems == []
    assert t.transactions["transaction_id"].tolist() == [f"sbx:{person}:5:0", f"sbx:{person}:5:1"]
    assert t.transactions["amount"].tolist() == ["0.83", "12.35"]
    assert t.transactions["occurred_at"].iloc[0].to_pydatetime() == EPOCH.replace(hour=5)
    assert t.offer_events["ext_id"].tolist() == [
        f"sbx:{person}:{offer}:sent:0:0",
        f"sbx:{person}:{offer}:sent:0:1",
        f"sbx:{person}:{offer}:completed:9:0",
    ]
    assert t.offer_events["value"].tolist() == [None, None, Decimal("2.00")]


def test_income_band_edges() -> None:
    assert [income_band(Decimal(x)) for x in (30000, 49999, 50000, 75000, 99999, 100000, 120000)] == [
        "low",
        "low",
        "middle",
        "upper_middle",
        "upper_middle",
        "high",
        "high",
    ]
    assert income_band(None) is None


def test_parse_full_files_match_the_readme_counts() -> None:
    data = read_starbucks(starbucks_data())
    assert data.rows_read == {"portfolio.json": 10, "profile.json": 17000, "transcript.json": 306534}
    assert {name: len(p) for name, p in data.problems.items()} == dict.fromkeys(data.rows_read, 0)
    assert data.transcript.read == {
        "transaction": 138953,
        "offer received": 76277,
        "offer viewed": 57725,
        "offer completed": 33579,
    }
    assert len(data.transcript.transactions) == 138953
    assert data.transcript.offer_events["event"].value_counts().to_dict() == {
        "sent": 76277,
        "viewed": 57725,
        "completed": 33579,
    }
    assert data.transcript.offer_events["ext_id"].is_unique
    assert data.transcript.transactions["transaction_id"].is_unique
    assert len(data.customers) == 17000
    assert sum(c["birth_year"] is None for c in data.customers) == 2175
    assert sum(c["gender"] is None for c in data.customers) == 2175
    assert Counter(o["kind"] for o in data.offers) == {"cashback": 8, "informational": 2}


def test_cli_import_starbucks(engine: Engine, slice_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["import", "starbucks", str(slice_dir)])
    assert out.exit_code == 0, out.output
    assert "customers: 300 new" in out.output
    assert "rejected rows: 0" in out.output
    (tmp_path / "empty").mkdir()
    missing = runner.invoke(app, ["import", "starbucks", str(tmp_path / "empty")])
    assert missing.exit_code == 1
    assert "missing portfolio.json, profile.json, transcript.json" in missing.output
    assert len(missing.output.strip().splitlines()) == 1


def test_import_refuses_a_directory_without_the_files(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "profile.json").write_text("")
    with pytest.raises(InvalidInput, match=r"missing portfolio\.json, transcript\.json"):
        import_starbucks(engine, tmp_path, rules=RULES)
