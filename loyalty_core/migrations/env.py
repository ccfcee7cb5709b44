"""Alembic environment.

Runs with a connection handed over by ``loyalty_core.db.migrate`` (``config.attributes["connection"]``) or,
from the developer's ``alembic`` command, with an engine built from ``LOYALTY_DATABASE_URL`` by the same
``make_engine`` the application uses. ``render_as_batch`` lets later migrations alter SQLite tables (copy and
move), which SQLite's ALTER TABLE cannot do in place.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from loyalty_core.db import make_engine
from loyalty_core.schema import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine()
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
