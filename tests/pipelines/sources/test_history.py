"""Loading a whole history directory: offers active at the time of each transaction, idempotent re-runs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from loyalty_core import (
    DEFAULT_RULES,
    Activation,
    Customer,
    Decision,
    Entry,
    InvalidInput,
    Member,
    OfferEvent,
    check_invariants,
    in_transaction,
    load_rules,
)
from pipelines.sources.history import ingest_history, load_offers
from serving import cli_app as app

RULES = load_rules(DEFAULT_RULES)
T0 = dt.datetime(2025, 3, 1, 9, tzinfo=dt.UTC)
MONEY = pa.decimal128(18, 2)
TS = pa.timestamp("us", tz="UTC")


def at(days: float) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


def write_history(out: Path) -> None:
    """Two customers, a x2 travel multiplier and a 500-point bonus above 3,000 RUB, one control decision."""
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "customer_id": ["C1", "C2"],
                "joined_on": pa.array([dt.date(2020, 5, 1), dt.date(2024, 1, 9)], pa.date32()),
                "birth_year": pa.array([1980, None], pa.int32()),
                "gender": ["F", "M"],
                "region": ["Moscow", "Kazan"],
                "income_band": ["high", "middle"],
                "income": pa.array([Decimal("250000.00"), Decimal("80000.00")], MONEY),
                "channel": ["app", "pos"],
            }
        ),
        out / "customers.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "offer_id": ["X2TRAVEL", "BONUS3K"],
                "name": ["Double points on travel", "500 points above 3,000 RUB"],
                "kind": ["multiplier", "bonus_points"],
                "multiplier": pa.array([Decimal(2), Decimal(1)], pa.decimal128(10, 4)),
                "bonus_points": pa.array([0, 500], pa.int32()),
                "threshold": pa.array([None, Decimal(3000)], MONEY),
                "categories": pa.array([["travel"], None], pa.list_(pa.string())),
                "txn_types": pa.array([["purchase"], ["purchase"]], pa.list_(pa.string())),
                "channels": pa.array([None, None], pa.list_(pa.string())),
                "duration_days": pa.array([14, 7], pa.int32()),
                "cost": pa.array([Decimal(100), Decimal(500)], MONEY),
                "value": pa.array([Decimal(300), Decimal(900)], MONEY),
                "min_tier": pa.array([None, None], pa.string()),
            }
        ),
        out / "offers.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "decision_id": ["D1", "D2", "D3"],
                "customer_id": ["C1", "C2", "C1"],
                "made_at": pa.array([at(0), at(0), at(30)], TS),
                "policy": ["campaign:1", "campaign:1", "campaign:2"],
                "offer_id": pa.array(["X2TRAVEL", "BONUS3K", None], pa.string()),
                "probability": [0.4, 0.4, 0.2],
                "channel": ["app", "pos", "app"],
            }
        ),
        out / "decisions.parquet",
    )
    events = [
        ("E1", "C1", "X2TRAVEL", "sent", at(0), "D1"),
        ("E2", "C1", "X2TRAVEL", "viewed", at(0.5), "D1"),
        ("E3", "C1", "X2TRAVEL", "activated", at(1), "D1"),
        ("E4", "C1", "X2TRAVEL", "completed", at(3), "D1"),
        ("E5", "C2", "BONUS3K", "sent", at(0), "D2"),
        ("E6", "C2", "BONUS3K", "viewed", at(1), "D2"),
        ("E7", "C2", "BONUS3K", "activated", at(2), "D2"),
        ("E8", "C2", "BONUS3K", "completed", at(4), "D2"),
    ]
    pq.write_table(
        pa.table(
            {
                "event_id": [e[0] for e in events],
                "customer_id": [e[1] for e in events],
                "offer_id": [e[2] for e in events],
                "event": [e[3] for e in events],
                "occurred_at": pa.array([e[4] for e in events], TS),
                "channel": ["app"] * len(events),
                "decision_id": [e[5] for e in events],
            }
        ),
        out / "offer_events.parquet",
    )
    txns = [
        ("T1", "C1", at(0.2), "purchase", "5000.00", "travel"),  # before activation: 50 points
        ("T2", "C2", at(1), "purchase", "3500.00", "groceries"),  # before activation: 35
        ("T3", "C1", at(3), "purchase", "5000.00", "travel"),  # x2: 100, completes X2TRAVEL
        ("T4", "C2", at(3), "purchase", "2999.99", "groceries"),  # under the threshold: 29
        ("T5", "C2", at(4), "purchase", "3000.00", "groceries"),  # 30 + 500, completes BONUS3K
        ("T6", "C2", at(5), "purchase", "3000.00", "groceries"),  # bonus pays once: 30
        ("T7", "C1", at(16), "purchase", "5000.00", "travel"),  # expired: 50
        ("T8", "C1", at(17), "bill_payment", "1000.00", "utilities"),  # 20
    ]
    pq.write_table(
        pa.table(
            {
                "transaction_id": [t[0] for t in txns],
                "customer_id": [t[1] for t in txns],
                "occurred_at": pa.array([t[2] for t in txns], TS),
                "type": [t[3] for t in txns],
                "amount": pa.array([Decimal(t[4]) for t in txns], MONEY),
                "category": [t[5] for t in txns],
                "channel": ["app"] * len(txns),
                "currency": ["RUB"] * len(txns),
                "region": ["Moscow"] * len(txns),
            }
        ),
        out / "transactions.parquet",
    )


def balances(engine: Engine) -> dict[str, int]:
    with Session(engine) as s:
        return dict(s.execute(select(Member.id, Member.balance)).all())


def count(engine: Engine, model: type) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_history_earns_with_the_offers_active_at_the_time(db_engine: Engine, tmp_path: Path) -> None:
    write_history(tmp_path / "h")
    report = ingest_history(db_engine, tmp_path / "h", rules=RULES)
    assert report.transactions is not None
    assert (report.transactions.posted, report.transactions.rejected) == (8, 0)
    assert balances(db_engine) == {"C1": 50 + 100 + 50 + 20, "C2": 35 + 29 + 530 + 30}
    assert (report.completions_expected, report.completions_in_ledger, report.completions_matching) == (
        2,
        2,
        2,
    )
    assert report.completions_agree
    with Session(db_engine) as s:
        points = dict(s.execute(select(Entry.ext_id, Entry.points).where(Entry.kind == "earn")).all())
        c2 = s.get(Customer, "C2")
        control = s.get(Decision, "D3")
        expires = s.scalars(select(Activation.expires_at).order_by(Activation.ext_id)).all()
    assert (points["T3"], points["T5"], points["T6"], points["T7"]) == (100, 530, 30, 50)
    assert c2 is not None
    assert (c2.birth_year, c2.income, c2.source) == (None, Decimal("80000.00"), "simulator")
    assert control is not None
    assert (control.offer_id, control.probability) == (None, 0.2)
    assert expires == [at(1) + dt.timedelta(days=14), at(2) + dt.timedelta(days=7)]
    with Session(db_engine) as s:
        completions = s.execute(
            select(
                OfferEvent.customer_id, OfferEvent.offer_id, OfferEvent.occurred_at, OfferEvent.decision_id
            )
            .where(OfferEvent.event == "completed")
            .order_by(OfferEvent.customer_id)
        ).all()
    # Written by the ledger when T3 and T5 completed the offers, not copied from the file.
    assert [tuple(r) for r in completions] == [
        ("C1", "X2TRAVEL", at(3), "D1"),
        ("C2", "BONUS3K", at(4), "D2"),
    ]
    assert count(db_engine, OfferEvent) == 8


def test_history_rerun_adds_nothing(engine: Engine, tmp_path: Path) -> None:
    write_history(tmp_path / "h")
    ingest_history(engine, tmp_path / "h", rules=RULES)
    before = (balances(engine), count(engine, Entry), count(engine, OfferEvent), count(engine, Activation))
    again = ingest_history(engine, tmp_path / "h", rules=RULES)
    assert again.transactions is not None
    assert (again.transactions.already_present, again.transactions.posted) == (8, 0)
    assert (again.decisions_new, again.offer_events_new, again.activations_new) == (0, 0, 0)
    assert (
        balances(engine),
        count(engine, Entry),
        count(engine, OfferEvent),
        count(engine, Activation),
    ) == before


def test_history_reports_bad_transaction_rows_by_file_row(engine: Engine, tmp_path: Path) -> None:
    write_history(tmp_path / "h")
    table = pq.read_table(tmp_path / "h" / "transactions.parquet")
    types = table.column("type").to_pylist()
    types[4] = "cash_withdrawal"
    table = table.set_column(table.schema.get_field_index("type"), "type", pa.array(types))
    pq.write_table(table, tmp_path / "h" / "transactions.parquet")
    report = ingest_history(engine, tmp_path / "h", rules=RULES)
    assert report.transactions is not None
    (problem,) = report.transactions.problems
    assert (problem.row, problem.column, problem.transaction_id) == (5, "type", "T5")
    # T5 would have completed the bonus offer: ledger and history now disagree, and the report says so.
    assert not report.completions_agree
    assert "disagree" in report.notes[0]


def test_not_a_history_directory_is_refused(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match=r"missing customers\.parquet"):
        ingest_history(engine, tmp_path / "empty", rules=RULES)


def test_ingest_command_takes_a_directory(engine: Engine, tmp_path: Path) -> None:
    write_history(tmp_path / "h")
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", str(tmp_path / "h")])
    assert result.exit_code == 0, result.output
    assert "8 posted" in result.output
    assert "2 in the history, 2 completed by the ledger, 2 matching" in result.output
    missing = runner.invoke(app, ["ingest", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1
    assert "no such file or directory" in missing.output


@pytest.mark.postgres
def test_a_simulated_history_lands_in_the_ledger_as_the_simulator_says(
    pg_engine: Engine, tmp_path: Path
) -> None:
    """The simulator and the ledger agree: every transaction posted, every completion the ledger's own."""
    from pipelines.sources.simulator.config import SimConfig
    from pipelines.sources.simulator.writer import simulate

    out = tmp_path / "sim"
    simulate(SimConfig(customers=150, days=120, seed=11), out)
    report = ingest_history(pg_engine, out, rules=RULES)
    assert report.transactions is not None
    rows = pq.ParquetFile(out / "transactions.parquet").metadata.num_rows
    assert (report.transactions.rows_read, report.transactions.posted) == (rows, rows)
    assert report.completions_expected > 0
    assert report.completions_agree, report.notes
    with Session(pg_engine) as s:
        assert check_invariants(s) == []
        earned = s.scalar(select(func.sum(Entry.points)).where(Entry.kind == "earn"))
    assert earned == report.transactions.points


def test_an_offer_for_a_tier_the_rules_do_not_have_is_refused(engine: Engine) -> None:
    """An unknown ``min_tier`` would match no member (or, read as "no tier", everyone): the import stops."""
    frame = pd.DataFrame(
        [
            {
                "offer_id": "vip",
                "name": "VIP",
                "kind": "informational",
                "duration_days": 7,
                "min_tier": "platinum",
            }
        ]
    )
    with pytest.raises(InvalidInput, match="platinum"):
        in_transaction(engine, lambda s: load_offers(s, frame, rules=RULES, now=at(0)))
    ok = frame.assign(min_tier="gold")
    assert set(in_transaction(engine, lambda s: load_offers(s, ok, rules=RULES, now=at(0)))) == {"vip"}
