"""The command line's own behaviour: what a newcomer meets before any job runs."""

from __future__ import annotations

import importlib.metadata
import logging
from pathlib import Path

import pytest
from alembic import command
from rich.logging import RichHandler
from rich.progress import Progress
from sqlalchemy import Engine
from typer.testing import CliRunner

from loyalty_core import alembic_config, make_engine
from serving.cli import app, configure_logging
from serving.cli.output import job_progress, progress_bars, stderr

# Every command that reads the ledger, with arguments that pass its own checks.
READERS = [
    ["ingest", "{tmp}/t.csv"],
    ["features", "--as-of", "2026-11-02"],
    ["train", "churn"],
    ["train", "offers"],
    ["score", "--as-of", "2026-11-02", "--out", "{tmp}/scores.csv"],
    ["expire", "--as-of", "2026-11-01"],
    ["import", "starbucks", "{tmp}/starbucks"],
]


def _args(args: list[str], tmp: Path) -> list[str]:
    (tmp / "t.csv").write_text(
        "transaction_id,customer_id,occurred_at,type,amount\nt1,c1,2026-11-01,purchase,100\n"
    )
    (tmp / "starbucks").mkdir(exist_ok=True)
    for name in ("portfolio.json", "profile.json", "transcript.json"):
        (tmp / "starbucks" / name).write_text("[]")
    return [a.format(tmp=tmp) for a in args]


@pytest.mark.parametrize("args", READERS, ids=lambda a: " ".join(a[:2]))
def test_cli_reader_before_init_says_run_init(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "var" / "loyalty.db"
    monkeypatch.setenv("LOYALTY_DATABASE_URL", f"sqlite:///{db}")
    result = CliRunner().invoke(app, _args(args, tmp_path))
    assert result.exit_code == 1, result.output
    assert (
        result.stderr
        == f"error: there is no ledger database at sqlite:///{db} yet: run `loyalty init` to create it\n"
    )
    assert not db.exists()  # refused before connecting, which would leave an empty file behind


@pytest.mark.parametrize("args", READERS, ids=lambda a: " ".join(a[:2]))
def test_cli_reader_on_empty_database_says_run_init(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "loyalty.db"
    make_engine(f"sqlite:///{db}").dispose()
    db.touch()
    monkeypatch.setenv("LOYALTY_DATABASE_URL", f"sqlite:///{db}")
    result = CliRunner().invoke(app, _args(args, tmp_path))
    assert result.exit_code == 1, result.output
    assert (
        result.stderr
        == f"error: the database sqlite:///{db} has no ledger schema yet: run `loyalty init` to create it\n"
    )


def test_cli_reader_on_old_schema_says_migrate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "loyalty.db"
    old: Engine = make_engine(f"sqlite:///{db}")
    try:
        with old.begin() as connection:
            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "0004")
    finally:
        old.dispose()
    monkeypatch.setenv("LOYALTY_DATABASE_URL", f"sqlite:///{db}")
    result = CliRunner().invoke(app, _args(["ingest", "{tmp}/t.csv"], tmp_path))
    assert result.exit_code == 1, result.output
    assert "has an older ledger schema (0004" in result.stderr
    assert result.stderr.endswith(": run `loyalty init` to migrate it\n")
    # and `loyalty init` is indeed what makes it work
    assert CliRunner().invoke(app, ["init"]).exit_code == 0
    result = CliRunner().invoke(app, _args(["ingest", "{tmp}/t.csv"], tmp_path))
    assert result.exit_code == 0, result.output
    assert "1 posted" in result.stdout


def test_cli_version_is_the_installed_distribution() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"loyalty {importlib.metadata.version('loyalty-platform')}\n"


def test_cli_features_help_keeps_square_brackets() -> None:
    result = CliRunner().invoke(app, ["features", "--help"])
    assert result.exit_code == 0
    assert "needs the [spark]" in result.stdout


def test_job_progress_reused_stage_gets_its_own_bar() -> None:
    """The demo runs simulate then ingest on one callback: both have a "transactions" stage."""
    bar = Progress(disable=True)
    progress = job_progress(bar)
    progress("transactions", 0, 1500)  # the simulator counts customers
    progress("transactions", 1500)
    progress("transactions", 0, 256_421)  # the ingest counts rows
    progress("transactions", 256_421)
    progress("transactions", 0)  # the ingest's rejected rows: none, and no new bar for them
    for _ in range(7):  # churn's features, one per cutoff
        progress("features", 1, 7)
    for _ in range(12):  # then the offers job's
        progress("features", 1, 12)
    seen = [(t.description, t.completed, t.total) for t in bar.tasks]
    assert seen == [
        ("transactions", 1500, 1500),
        ("transactions", 256_421, 256_421),
        ("features", 7, 7),
        ("features", 12, 12),
    ]


def test_job_progress_stage_keeps_its_bar_until_full() -> None:
    bar = Progress(disable=True)
    progress = job_progress(bar)
    progress("writing", 0, 3)
    progress("writing", 1)
    progress("writing", 1, None)
    progress("extract", 0, None)
    progress("extract", 1, 1)
    progress("writing", 1)
    assert [(t.description, t.completed) for t in bar.tasks] == [("writing", 3), ("extract", 1)]


def test_progress_routes_logging_through_the_bars_console() -> None:
    configure_logging(logging.INFO)
    root = logging.getLogger()
    before = list(root.handlers)
    with progress_bars():
        handlers = list(root.handlers)
    assert [type(h) for h in handlers] == [RichHandler]
    assert isinstance(handlers[0], RichHandler)
    assert handlers[0].console is stderr
    assert root.handlers == before


def test_expire_without_as_of_runs_up_to_now(engine: Engine) -> None:
    """``loyalty expire`` alone read the clock twice: its cutoff came out after its "now" and was refused."""
    result = CliRunner().invoke(app, ["expire"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("expired 0 points in 0 lots of 0 customers as of ")
