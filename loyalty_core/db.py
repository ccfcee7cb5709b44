"""Engines and migrations: the one place that knows how to talk to SQLite and PostgreSQL.

SQLite is the default store of a fresh checkout, so it is tuned for several writer processes (the service runs
one worker per core): WAL lets readers proceed during a write, ``busy_timeout`` waits for the lock instead of
failing, and every transaction starts with ``BEGIN IMMEDIATE`` so it takes the write lock up front. Without
that, two transactions that both read then write deadlock on the lock upgrade and one gets ``database is
locked`` at once, whatever the timeout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from loyalty_core.config import get_settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# The values bound to a statement are customers' ids, amounts and dates: SQLAlchemy would copy them into
# every error's text ("[parameters: ...]"), and from there into logs and tracebacks. Engines never do.
HIDE_PARAMETERS = True


def normalize_url(url: str) -> str:
    """Return ``url`` with the driver we ship (psycopg 3) and, for a SQLite file, its folder created.

    ``postgresql://`` alone would select psycopg2, which we do not install; ``postgres://`` is what many
    hosting platforms hand out and SQLAlchemy rejects.
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    parsed = make_url(url)
    database = parsed.database or ""
    if (
        parsed.get_backend_name() == "sqlite"
        and database not in ("", ":memory:")
        and not database.startswith("file:")
    ):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return url


def make_engine(url: str | None = None) -> Engine:
    """Create the engine for ``url`` (default ``LOYALTY_DATABASE_URL``), configured for concurrent writers."""
    url = normalize_url(url or get_settings().database_url)
    if make_url(url).get_backend_name() != "sqlite":
        # No pool_pre_ping: it costs a round trip per transaction, a third of a posting. A connection that
        # died in the pool fails its first statement instead, and ``journal.in_transaction`` retries that.
        return create_engine(
            url, pool_size=10, max_overflow=10, pool_recycle=1800, hide_parameters=HIDE_PARAMETERS
        )

    engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=HIDE_PARAMETERS)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see the "begin" hook below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def alembic_config() -> Config:
    """An Alembic configuration pointing at the migrations inside the installed package (no alembic.ini)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the database behind ``engine`` to the latest schema (``alembic upgrade head``); idempotent."""
    with engine.begin() as connection:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
