"""The simulator's output: the file contract, determinism, loading into the ledger, and `loyalty simulate`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from loyalty_core import (
    InvalidInput,
)
from pipelines.sources.history import ingest_history
from pipelines.sources.simulator.config import SimConfig
from pipelines.sources.simulator.writer import simulate
from serving import cli_app as app
from tests.pipelines.sources.simulator.conftest import (
    F64,
    MONEY,
    PURCHASE_CATEGORIES,
    RULES,
    TEXT,
    TEXTS,
    TS,
    History,
)

CONTRACT = {
    "customers.parquet": {
        "customer_id": TEXT,
        "joined_on": pa.date32(),
        "birth_year": pa.int16(),
        "gender": TEXT,
        "region": TEXT,
        "income_band": TEXT,
        "income": MONEY,
        "channel": TEXT,
    },
    "offers.parquet": {
        "offer_id": TEXT,
        "name": TEXT,
        "kind": TEXT,
        "multiplier": pa.decimal128(10, 4),
        "bonus_points": pa.int32(),
        "threshold": MONEY,
        "categories": TEXTS,
        "txn_types": TEXTS,
        "channels": TEXTS,
        "duration_days": pa.int32(),
        "cost": MONEY,
        "value": MONEY,
        "min_tier": TEXT,
    },
    "decisions.parquet": {
        "decision_id": TEXT,
        "customer_id": TEXT,
        "made_at": TS,
        "policy": TEXT,
        "offer_id": TEXT,
        "probability": F64,
        "channel": TEXT,
    },
    "offer_events.parquet": {
        "event_id": TEXT,
        "customer_id": TEXT,
        "offer_id": TEXT,
        "event": TEXT,
        "occurred_at": TS,
        "channel": TEXT,
        "decision_id": TEXT,
    },
    "transactions.parquet": {
        "transaction_id": TEXT,
        "customer_id": TEXT,
        "occurred_at": TS,
        "type": TEXT,
        "amount": MONEY,
        "category": TEXT,
        "channel": TEXT,
        "currency": TEXT,
        "region": TEXT,
    },
    "truth/customers.parquet": {
        "customer_id": TEXT,
        "churn_at": TS,
        "churn_hazard": F64,
        "activity_rate": F64,
        "salary_day": pa.int16(),
        "bill_regularity": F64,
        **{f"taste_{c}": F64 for c in PURCHASE_CATEGORIES},
        "resp_multiplier": F64,
        "resp_bonus_points": F64,
        "resp_cashback": F64,
        "resp_informational": F64,
        "multiplier_sensitivity": F64,
        "segment": TEXT,
    },
    "truth/offer_effects.parquet": {
        "customer_id": TEXT,
        "offer_id": TEXT,
        "p_complete_treated": F64,
        "p_complete_control": F64,
        "uplift": F64,
        "expected_incremental_value": F64,
    },
}


def file_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_history(tmp_path: Path) -> None:
    config = SimConfig(customers=300, days=120, seed=5)
    simulate(config, tmp_path / "a")
    simulate(config, tmp_path / "b")
    simulate(SimConfig(customers=300, days=120, seed=6), tmp_path / "c")
    a, b, c = (file_bytes(tmp_path / x) for x in "abc")
    assert set(a) == {*CONTRACT, "manifest.json", "truth/decisions.parquet"}
    assert a == b
    assert a["transactions.parquet"] != c["transactions.parquet"]
    assert a["truth/customers.parquet"] != c["truth/customers.parquet"]
    assert json.loads(a["manifest.json"])["seed"] == 5
    assert json.loads(c["manifest.json"])["seed"] == 6


def test_every_file_has_the_contract_schema(history: History) -> None:
    for name, columns in CONTRACT.items():
        schema = pq.read_schema(history.path / name)
        actual = {f.name: f.type for f in schema}
        for column, expected in columns.items():
            assert column in actual, f"{name} lacks {column}"
            assert actual[column] == expected, f"{name}.{column} is {actual[column]}, not {expected}"
    rows = history.manifest["rows"]
    for name in CONTRACT:
        assert rows[name] == pq.ParquetFile(history.path / name).metadata.num_rows
    assert history.manifest["customers"] == 1500
    assert history.manifest["start"] == "2025-01-01T00:00:00+00:00"
    assert history.manifest["end"] == "2025-05-31T00:00:00+00:00"


def test_a_history_without_campaigns_is_still_complete(tmp_path: Path) -> None:
    simulate(SimConfig(customers=5, days=2, seed=1), tmp_path / "h")
    assert pq.read_table(tmp_path / "h" / "decisions.parquet").num_rows == 0
    assert pq.read_schema(tmp_path / "h" / "offer_events.parquet").field("occurred_at").type == TS
    assert json.loads((tmp_path / "h" / "manifest.json").read_text())["campaigns"] == []


def test_the_ledger_agrees_with_the_history(engine: Engine, tmp_path: Path) -> None:
    """Load a history through ``loyalty ingest``'s loader: nothing held or rejected, the same completions."""
    simulate(SimConfig(customers=150, days=75, seed=3), tmp_path / "h")
    report = ingest_history(engine, tmp_path / "h", rules=RULES)
    assert report.transactions is not None
    assert (report.transactions.held, report.transactions.rejected) == (0, 0)
    assert report.transactions.posted == report.transactions.rows_read > 0
    assert report.completions_expected > 5
    assert report.completions_agree


def test_bad_configurations_are_refused(tmp_path: Path) -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for config, field in (
        (SimConfig(customers=0, days=10, seed=1), "customers"),
        (SimConfig(customers=10, days=0, seed=1), "days"),
        (SimConfig(customers=10, days=10, seed=-1), "seed"),
        (SimConfig(customers=10, days=366, seed=1), "start"),
    ):
        with pytest.raises(InvalidInput) as caught:
            simulate(config, tmp_path / "out", now=now)
        assert caught.value.details["field"] == field
    assert not (tmp_path / "out").exists()


def test_simulate_command_writes_the_history(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "h"
    args = [
        "simulate",
        "--customers",
        "50",
        "--days",
        "40",
        "--seed",
        "2",
        "--end",
        "2025-06-01",
        "--out",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "50 customers over 40 days (2025-04-22 to 2025-06-01)" in result.output
    assert f"-> {out}" in result.output
    assert {p.name for p in out.iterdir()} >= {"manifest.json", "transactions.parquet", "truth"}
    first = file_bytes(out)
    again = runner.invoke(app, args)  # an earlier simulator output is replaced without --force
    assert again.exit_code == 0, again.output
    assert file_bytes(out) == first


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--customers", "0"], "customers must be between 1"),
        (["--days", "0"], "days must be between 1"),
        (["--start", "2025-02-30"], "is not a date"),
        (["--start", "2099-01-01"], "in the future"),
        (["--end", "2099-01-01"], "in the future"),
        (["--end", "2025-13-01"], "--end '2025-13-01' is not a date"),
        (["--start", "2025-01-01", "--end", "2025-06-01"], "not both"),
        (["--seed", "-3"], "seed must be a non-negative"),
    ],
)
def test_simulate_command_refuses_bad_arguments(tmp_path: Path, args: list[str], reason: str) -> None:
    result = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path / "h"), *args])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [lines[0]], result.output
    assert lines[0].startswith("error:"), result.output
    assert reason in lines[0], result.output


def test_simulate_command_ends_the_history_today_by_default(tmp_path: Path) -> None:
    """Without a date the bank stops where today begins (UTC), so live postings continue it."""
    out = tmp_path / "h"
    result = CliRunner().invoke(app, ["simulate", "--customers", "5", "--days", "10", "--out", str(out)])
    assert result.exit_code == 0, result.output
    today = dt.datetime.now(dt.UTC).date()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["end"] == dt.datetime(today.year, today.month, today.day, tzinfo=dt.UTC).isoformat()
    assert manifest["start"].startswith((today - dt.timedelta(days=10)).isoformat())


def test_simulate_command_keeps_out_of_foreign_directories(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    runner = CliRunner()
    args = ["simulate", "--customers", "20", "--days", "20", "--out", str(out)]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1
    assert "not empty" in refused.output
    assert "--force" in refused.output
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    forced = runner.invoke(app, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert (out / "notes.txt").read_text() == "keep me"
    assert (out / "transactions.parquet").is_file()
    (tmp_path / "file").write_text("x")
    not_a_dir = runner.invoke(app, ["simulate", "--out", str(tmp_path / "file")])
    assert not_a_dir.exit_code == 1
    assert "not a directory" in not_a_dir.output
