"""Engines, migrations, append-only triggers and ``loyalty init``."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, insert, inspect, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from loyalty_core.db import alembic_config, make_engine, migrate, normalize_url
from loyalty_core.schema import Entry, Line, metadata
from serving import cli_app as app

NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def _post_entry(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(Entry.__table__).values(
                id=1,
                kind="earn",
                ext_id="t-1",
                member_id="m-1",
                status="posted",
                effective_at=NOW,
                recorded_at=NOW,
                actor="test",
                request_hash="0" * 64,
                response={"points": 10},
                points=10,
            )
        )
        conn.execute(
            insert(Line.__table__),
            [
                {"entry_id": 1, "account": "points", "member_id": "m-1", "points": 10, "effective_at": NOW},
                {
                    "entry_id": 1,
                    "account": "programme",
                    "member_id": None,
                    "points": -10,
                    "effective_at": NOW,
                },
            ],
        )


def test_migrate_creates_every_table(db_engine: Engine) -> None:
    tables = set(inspect(db_engine).get_table_names())
    assert set(metadata.tables) | {"alembic_version"} <= tables


def test_migrate_matches_schema_module(db_engine: Engine) -> None:
    with db_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []


def test_migrate_is_idempotent(db_engine: Engine) -> None:
    migrate(db_engine)
    with db_engine.connect() as conn:
        current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert current == ScriptDirectory.from_config(alembic_config()).get_current_head()


@pytest.mark.parametrize("table", ["entries", "lines"])
@pytest.mark.parametrize("statement", ["UPDATE {table} SET points = points + 1", "DELETE FROM {table}"])
def test_journal_refuses_update_and_delete(db_engine: Engine, table: str, statement: str) -> None:
    _post_entry(db_engine)
    with pytest.raises(DBAPIError, match=f"{table} are append-only"), db_engine.begin() as conn:
        conn.execute(text(statement.format(table=table)))
    with db_engine.connect() as conn:
        rows = conn.execute(text(f"SELECT count(*), sum(points) FROM {table}")).one()
    assert tuple(rows) == ((1, 10) if table == "entries" else (2, 0))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite://", "sqlite://"),
    ],
)
def test_normalize_url_selects_psycopg(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


def test_normalize_url_creates_sqlite_folder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a' / 'b' / 'x.db'}"
    assert normalize_url(url) == url
    assert (tmp_path / "a" / "b").is_dir()


def test_make_engine_sqlite_pragmas(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_make_engine_sqlite_begins_immediate(engine: Engine) -> None:
    """A transaction takes the write lock when it begins, before any statement (no upgrade deadlocks)."""
    path = engine.url.database
    assert path is not None
    with engine.begin():
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()


def test_make_engine_sqlite_foreign_keys_enforced(engine: Engine) -> None:
    with pytest.raises(DBAPIError, match="FOREIGN KEY"), engine.begin() as conn:
        conn.execute(insert(Line.__table__).values(entry_id=99, account="points", points=1, effective_at=NOW))


def test_init_creates_sqlite_database_idempotently(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "nested" / "loyalty.db"
    monkeypatch.setenv("LOYALTY_DATABASE_URL", f"sqlite:///{db}")
    runner = CliRunner()
    for _ in range(2):
        result = runner.invoke(app, ["init"])
        assert result.exit_code == 0, result.output
        assert str(db) in result.stdout
    eng = make_engine(f"sqlite:///{db}")
    try:
        assert set(metadata.tables) <= set(inspect(eng).get_table_names())
    finally:
        eng.dispose()


def test_init_unreachable_database_is_one_masked_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOYALTY_DATABASE_URL", "postgresql://app:s3cret@127.0.0.1:1/loyalty")
    result = CliRunner().invoke(app, ["init"])
    assert result.exit_code == 1
    assert "s3cret" not in result.output
    assert result.stderr.startswith(
        "error: cannot reach the database postgresql+psycopg://app:***@127.0.0.1:1/"
    )
    assert result.stderr.count("\n") == 1


def test_repo_var_is_untouched_by_tests() -> None:
    from loyalty_core.config import DEFAULT_VAR, get_settings

    assert str(DEFAULT_VAR) not in get_settings().database_url


def test_migration_0002_carries_spend_and_offers_both_ways(tmp_path: Path) -> None:
    from alembic import command

    from loyalty_core.db import alembic_config

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")

    def to(revision: str, down: bool = False) -> None:
        with engine.begin() as connection:
            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(cfg, revision)

    to("0001")
    at = "2026-01-05 00:00:00"
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO members VALUES ('m1', '{at}', 5, 0, 1, 500)"))
        conn.execute(text("INSERT INTO spend_months VALUES ('m1', '2026-01-01', 500.00)"))
        conn.execute(
            text(
                "INSERT INTO offers (id, name, kind, multiplier, bonus_points, duration_days, cost, value, "
                f"active, created_at) VALUES ('o', 'o', 'multiplier', 2, 0, 14, 0, 0, 1, '{at}')"
            )
        )
        conn.execute(
            text(
                f"INSERT INTO activations (ext_id, offer_id, member_id, activated_at, expires_at) "
                f"VALUES ('x', 'o', 'm1', '{at}', '2026-01-19 00:00:00')"
            )
        )
    to("head")
    with engine.connect() as conn:
        spend, until = conn.execute(text("SELECT spend, offers_until FROM members")).one()
    assert {k: Decimal(v) for k, v in json.loads(spend).items()} == {"2026-01": Decimal(500)}
    assert until.startswith("2026-01-19")
    to("0001", down=True)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT month, amount FROM spend_months")).one() == ("2026-01-01", 500)
    engine.dispose()
