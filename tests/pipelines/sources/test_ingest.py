"""The generic transactions importer: exact points, row-level error reports, and nothing counted twice."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from loyalty_core import (
    Entry,
    InvalidInput,
    Member,
    TransactionIn,
    check_invariants,
    get_settings,
    in_transaction,
    load_rules,
    post_transactions,
)
from pipelines.sources.ingest import ingest_file, ingest_frame
from serving import cli_app as app

RULES = load_rules(get_settings().rules)

GOOD = """transaction_id,customer_id,occurred_at,type,amount,category,channel
t1,alice,2025-03-01T10:00:00+03:00,purchase,1999.99,groceries,pos
t2,alice,2025-03-02T10:00:00Z,bill_payment,250.00,,app
t3,bob,2025-03-02T11:00:00Z,transfer,1.00,,app
t4,bob,2025-03-01T09:00:00,purchase,100.00,fuel,pos
"""
BAD = """bad-amount,carol,2025-03-03T10:00:00Z,purchase,12abc,,
bad-date,carol,yesterday,purchase,10.00,,
bad-type,carol,2025-03-03T10:00:00Z,refund,10.00,,
,carol,2025-03-03T10:00:00Z,purchase,10.00,,
neg,carol,2025-03-03T10:00:00Z,purchase,-1.00,,
"""


def _write(tmp_path: Path, text: str, name: str = "tx.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _balances(engine: Engine) -> dict[str, int]:
    with Session(engine) as s:
        return {m.id: m.balance for m in s.execute(select(Member)).scalars()}


def test_ingest_posts_exact_points_and_rerun_adds_nothing(engine: Engine, tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    first = ingest_file(engine, path, rules=RULES)
    assert (first.posted, first.rejected, first.points) == (4, 0, 19 + 4 + 5 + 1)
    assert _balances(engine) == {"alice": 23, "bob": 6}
    again = ingest_file(engine, path, rules=RULES)
    assert (again.posted, again.already_present) == (0, 4)
    assert _balances(engine) == {"alice": 23, "bob": 6}
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Entry)) == 4
        assert check_invariants(s) == []


def test_ingest_reports_bad_rows_by_row_and_column(engine: Engine, tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD + BAD)
    report = ingest_file(engine, path, rules=RULES)
    assert report.posted == 4
    where = {(p.row, p.column) for p in report.problems}
    assert where == {(5, "amount"), (6, "occurred_at"), (7, "type"), (8, "transaction_id"), (9, "amount")}
    assert _balances(engine) == {"alice": 23, "bob": 6}


def test_ingest_parquet_keeps_exact_amounts(engine: Engine, tmp_path: Path) -> None:
    frame = pd.read_csv(_write(tmp_path, GOOD), dtype="string")
    frame.to_parquet(tmp_path / "tx.parquet")
    report = ingest_file(engine, tmp_path / "tx.parquet", rules=RULES)
    assert (report.posted, report.points) == (4, 29)
    with Session(engine) as s:
        amount = s.scalar(select(Entry.amount).where(Entry.ext_id == "t1"))
    assert str(amount) == "1999.99"


def test_ingest_missing_column_names_it(engine: Engine) -> None:
    with pytest.raises(InvalidInput, match="missing column"):
        ingest_frame(engine, pd.DataFrame({"transaction_id": ["x"]}), rules=RULES)


def test_ingest_same_id_other_body_is_a_conflict_not_a_second_posting(engine: Engine, tmp_path: Path) -> None:
    ingest_file(engine, _write(tmp_path, GOOD), rules=RULES)
    changed = GOOD.replace("1999.99", "2999.99")
    report = ingest_file(engine, _write(tmp_path, changed, "changed.csv"), rules=RULES)
    assert [(p.row, p.column) for p in report.problems] == [(1, "transaction_id")]
    assert "different request" in report.problems[0].reason
    assert _balances(engine)["alice"] == 23


def test_cli_ingest_and_expire(engine: Engine, tmp_path: Path) -> None:
    runner = CliRunner()
    path = _write(tmp_path, GOOD + BAD)
    out = runner.invoke(app, ["ingest", str(path), "--report", str(tmp_path / "rejects.csv")])
    assert out.exit_code == 0, out.output
    assert "4 posted" in out.output
    assert "5 rejected" in out.output
    assert len(pd.read_csv(tmp_path / "rejects.csv")) == 5
    strict = runner.invoke(app, ["ingest", str(path), "--strict"])
    assert strict.exit_code == 1
    assert "4 already present" in strict.output
    expired = runner.invoke(app, ["expire", "--as-of", "2026-03-02"])
    assert expired.exit_code == 0, expired.output
    assert "expired 29 points in 4 lots" in expired.output
    assert "expired 0 points" in runner.invoke(app, ["expire", "--as-of", "2026-03-02"]).output
    assert _balances(engine) == {"alice": 0, "bob": 0}
    bad = runner.invoke(app, ["expire", "--as-of", "soon"])
    assert bad.exit_code == 1
    assert "--as-of" in bad.output


@pytest.mark.parametrize("when", ["2099-01-01", "9999-12-31", "9999-12-31T23:59:59+00:00"])
def test_cli_expire_never_runs_past_now(engine: Engine, tmp_path: Path, when: str) -> None:
    runner = CliRunner()
    late = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    path = tmp_path / "recent.csv"
    path.write_text(f"transaction_id,customer_id,occurred_at,type,amount\nr1,carol,{late},purchase,1000.00\n")
    assert runner.invoke(app, ["ingest", str(path)]).exit_code == 0
    refused = runner.invoke(app, ["expire", "--as-of", when])
    assert refused.exit_code == 1, refused.output
    assert refused.exception is None or isinstance(refused.exception, SystemExit), refused.exception
    assert "Traceback" not in refused.output
    assert len(refused.output.strip().splitlines()) == 1, refused.output
    today = runner.invoke(app, ["expire", "--as-of", dt.datetime.now(dt.UTC).date().isoformat()])
    assert today.exit_code == 0, today.output
    assert _balances(engine)["carol"] == 10
    missing = runner.invoke(app, ["ingest", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 1
    assert "no such file" in missing.output


def test_bulk_ingest_equals_posting_one_by_one_on_both_databases(db_engine: Engine, tmp_path: Path) -> None:
    """Large chunks take the bulk write path (COPY and one UPDATE for all members on PostgreSQL); the
    ledger they leave must be the one that posting the same rows one at a time leaves."""
    from loyalty_core import check_invariants

    rows = [
        (
            f"b{i}",
            f"cust-{i % 37}",
            f"2025-04-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
            ("purchase", "bill_payment", "transfer")[i % 3],
            f"{100 + (i * 7919) % 90000}.{i % 100:02d}",
        )
        for i in range(600)
    ]
    text = "transaction_id,customer_id,occurred_at,type,amount\n" + "".join(",".join(r) + "\n" for r in rows)
    report = ingest_file(db_engine, _write(tmp_path, text), rules=RULES, chunk_rows=300)
    assert (report.posted, report.rejected) == (600, 0)
    bulk = _balances(db_engine)

    # The same rows through the API's path, one transaction each, into a second SQLite ledger.
    from loyalty_core import make_engine, migrate

    single = make_engine(f"sqlite:///{tmp_path / 'single.db'}")
    migrate(single)
    frame = pd.read_csv(_write(tmp_path, text, "again.csv"), dtype=str)
    frame["ts"] = pd.to_datetime(frame["occurred_at"], utc=True)
    for r in frame.sort_values("ts", kind="stable").itertuples():
        txn = TransactionIn(r.transaction_id, r.customer_id, r.type, Decimal(r.amount), r.ts.to_pydatetime())
        in_transaction(single, lambda s, t=txn: post_transactions(s, [t], rules=RULES, actor="t"))
    assert bulk == _balances(single)
    assert sum(bulk.values()) == report.points
    with Session(db_engine) as s:
        assert check_invariants(s) == []
        members = {m.id: m for m in s.execute(select(Member)).scalars()}
    with Session(single) as s:
        for m in s.execute(select(Member)).scalars():
            assert (members[m.id].txn_count, members[m.id].amount_sum, members[m.id].spend) == (
                m.txn_count,
                m.amount_sum,
                m.spend,
            )
    single.dispose()


def _mixed_frame(n: int, customers: int) -> pd.DataFrame:
    """Rows of every type over a few months, with offers' worth of history per customer, some bad rows."""
    frame = pd.DataFrame(
        {
            "transaction_id": [f"p{i}" for i in range(n)],
            "customer_id": [f"cust-{(i * 7) % customers}" for i in range(n)],
            "occurred_at": [
                f"2025-{1 + i % 6:02d}-{1 + (i * 13) % 28:02d}T{(i * 5) % 24:02d}:{i % 60:02d}:00Z"
                for i in range(n)
            ],
            "type": [("purchase", "bill_payment", "transfer", "purchase")[i % 4] for i in range(n)],
            "amount": [f"{100 + (i * 7919) % 400000}.{i % 100:02d}" for i in range(n)],
        },
        dtype="string",
    )
    frame.loc[17, "amount"] = "lots"  # reported, by file row, from whichever worker has it
    frame.loc[2222, "occurred_at"] = "someday"
    frame.loc[3001, "transaction_id"] = frame.loc[3000, "transaction_id"]  # a replay with another body
    frame.loc[3001, "customer_id"] = frame.loc[3000, "customer_id"]
    return frame


def _ledger_state(engine: Engine) -> dict[str, tuple[int, int, int, object, object]]:
    with Session(engine) as s:
        assert check_invariants(s) == []
        return {
            m.id: (m.balance, m.debt, m.txn_count, m.amount_sum, m.spend)
            for m in s.execute(select(Member)).scalars()
        }


def test_parallel_ingest_leaves_the_ledger_one_process_leaves(
    pg_engine: Engine, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Customers split over processes on PostgreSQL: every balance, tier spend, count and problem row must be
    what one process posting the rows in order gives (here into SQLite)."""
    import pipelines.sources.ingest as ingest

    monkeypatch.setattr(ingest, "PARALLEL_MIN_ROWS", 0)
    frame = _mixed_frame(6000, 150)
    ticks: list[int] = []
    parallel = ingest_frame(pg_engine, frame, rules=RULES, chunk_rows=500, workers=3, progress=ticks.append)
    single = ingest_frame(engine, frame, rules=RULES, chunk_rows=500)
    assert (parallel.processes, single.processes) == (3, 1)
    assert sum(ticks) == len(frame)
    assert (parallel.posted, parallel.rejected, parallel.points) == (
        single.posted,
        single.rejected,
        single.points,
    )
    assert parallel.rejected == 3
    assert parallel.problems == single.problems
    assert _ledger_state(pg_engine) == _ledger_state(engine)
    again = ingest_frame(pg_engine, frame, rules=RULES, chunk_rows=500, workers=3)
    assert (again.posted, again.already_present) == (0, single.posted)


def test_parallel_plan_keeps_each_customer_in_one_process(
    pg_engine: Engine, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipelines.sources.ingest as ingest

    monkeypatch.setattr(ingest, "PARALLEL_MIN_ROWS", 0)
    frame = _mixed_frame(4000, 97)
    parts = ingest.parallel_plan(pg_engine, frame, 2)
    assert parts is not None
    assert set(parts.tolist()) == {0, 1}
    assert pd.Series(parts).groupby(frame["customer_id"].to_numpy()).nunique().max() == 1
    assert ingest.parallel_plan(engine, frame, 2) is None  # SQLite: one writer at a time
    assert ingest.parallel_plan(pg_engine, frame, 1) is None
    shared = frame.copy()
    shared.loc[5, "transaction_id"] = shared.loc[6, "transaction_id"]  # one id, two customers
    assert shared.loc[5, "customer_id"] != shared.loc[6, "customer_id"]
    assert ingest.parallel_plan(pg_engine, shared, 2) is None
    one = frame.assign(customer_id="cust-1")
    assert ingest.parallel_plan(pg_engine, one, 2) is None  # nothing to split
    monkeypatch.setattr(ingest, "PARALLEL_MIN_ROWS", 10_000)
    assert ingest.parallel_plan(pg_engine, frame, 2) is None  # too few rows to pay for the processes


def test_cli_ingest_splits_a_large_file_over_processes(
    pg_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipelines.sources.ingest as ingest

    monkeypatch.setattr(ingest, "PARALLEL_MIN_ROWS", 0)
    path = tmp_path / "big.csv"
    _mixed_frame(4000, 60).to_csv(path, index=False)
    out = CliRunner().invoke(app, ["ingest", str(path), "--workers", "2"])
    assert out.exit_code == 0, out.output
    assert "3997 posted" in out.output
    assert "3 rejected (2 processes)" in out.output
    assert "row 18, column amount: not a number: 'lots'" in out.output  # file rows, from a worker
