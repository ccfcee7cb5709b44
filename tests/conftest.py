"""Shared fixtures: databases for the tests, and isolation from the developer's own files.

- ``engine``: a fresh, migrated SQLite database (file) per test. Migrations run once per session into a
  template file that each test copies, so a test pays for a file copy, not for Alembic.
- ``pg_engine``: the session's PostgreSQL database ``loyalty_test_<random>`` (created on the server of
  ``LOYALTY_TEST_PG_URL``, default ``postgresql://postgres@127.0.0.1:5432/postgres``, migrated once,
  dropped at the end), with every table truncated before each test. Tests using it are marked
  ``postgres``. When the server cannot be reached they are skipped, unless ``CI`` is true or
  ``LOYALTY_REQUIRE_POSTGRES=1``: then they fail, so a CI run never passes by skipping the PostgreSQL half.
- ``db_engine``: the same test on both backends (params ``sqlite`` and ``postgres``).

Each of them also points ``LOYALTY_DATABASE_URL`` at its database for the duration of the test. Without any
of them, ``LOYALTY_DATABASE_URL`` points at a per-session temporary file: no test writes into the repo's var/.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from loyalty_core import get_settings, make_engine, metadata, migrate, normalize_url

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TRUE = {"1", "true", "yes", "on"}


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in TRUE


def postgres_required() -> bool:
    """In CI (or when asked) a missing PostgreSQL is a failure, never a silent skip."""
    return _truthy("CI") or _truthy("LOYALTY_REQUIRE_POSTGRES")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Any test that uses ``pg_engine`` directly carries the ``postgres`` marker, so ``-m`` selects it."""
    for item in items:
        if "pg_engine" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session", autouse=True)
def _isolated_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Default every test to a throw-away SQLite URL, never the repository's var/loyalty.db."""
    url = f"sqlite:///{tmp_path_factory.mktemp('default-db') / 'loyalty.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOYALTY_DATABASE_URL", url)
        get_settings.cache_clear()
        yield
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Settings are cached; re-read them around each test so ``monkeypatch.setenv`` takes effect."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _use_database(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("LOYALTY_DATABASE_URL", url)
    get_settings.cache_clear()


# --- SQLite ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    template = make_engine(f"sqlite:///{path}")
    try:
        migrate(template)
    finally:
        template.dispose()
    # Fold the WAL into the main file so that copying that one file copies everything.
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()
    return path


@pytest.fixture
def engine(_sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A fresh migrated SQLite database for this test only."""
    path = tmp_path / "loyalty.db"
    shutil.copyfile(_sqlite_template, path)
    url = f"sqlite:///{path}"
    _use_database(monkeypatch, url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


# --- PostgreSQL ------------------------------------------------------------------------------------------


def _unavailable(reason: str) -> None:
    if postgres_required():
        pytest.fail(f"PostgreSQL is required (CI or LOYALTY_REQUIRE_POSTGRES=1) but {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@contextmanager
def fresh_pg_database(prefix: str) -> Iterator[Engine]:
    """A new migrated database ``<prefix>_<random>`` on the test server, dropped on exit.

    For data that must outlive one test (the shared database is emptied before each test that asks for
    ``pg_engine``), and for rows copied with their ids: the ledger keeps blocks of entry ids per process and
    database, so ids written under a block it already holds would collide with it.
    """
    import psycopg

    admin_url = make_url(normalize_url(os.environ.get("LOYALTY_TEST_PG_URL", DEFAULT_PG_URL)))
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin_dsn = admin_url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _unavailable(f"cannot connect to {admin_url.render_as_string(hide_password=True)}: {exc}")

    eng = make_engine(admin_url.set(database=name).render_as_string(hide_password=False))
    try:
        migrate(eng)
        yield eng
    finally:
        eng.dispose()
        with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _pg_database() -> Iterator[Engine]:
    with fresh_pg_database("loyalty_test") as eng:
        yield eng


@pytest.fixture
def pg_engine(_pg_database: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """The session's PostgreSQL test database, emptied (identities restarted) before this test."""
    tables = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    with _pg_database.begin() as conn:
        # TRUNCATE fires no row-level triggers, so the append-only journal can still be emptied here.
        # No RESTART IDENTITY: the ledger caches blocks of entry ids per process, which stay unique only
        # while the sequence never goes backwards (as in production).
        conn.execute(text(f"TRUNCATE {tables} CASCADE"))
    _use_database(monkeypatch, _pg_database.url.render_as_string(hide_password=False))
    return _pg_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_engine(request: pytest.FixtureRequest) -> Engine:
    """Runs the test once on a fresh SQLite database and once on the emptied PostgreSQL database."""
    fixture = "engine" if request.param == "sqlite" else "pg_engine"
    result: Engine = request.getfixturevalue(fixture)
    return result


# --- the shared Starbucks files ----------------------------------------------------------------------------
STARBUCKS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "starbucks"


def starbucks_data() -> Path:
    """The Starbucks files beside the clone: required in CI, skipped elsewhere when absent."""
    if not (STARBUCKS / "transcript.json").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"the shared Starbucks data is missing at {STARBUCKS}")
        pytest.skip(
            f"the public Starbucks data is not at {STARBUCKS.resolve()}: docs/data.md says where to get it"
        )
    return STARBUCKS


def write_starbucks_slice(out: Path, persons: int) -> Path:
    """Into ``out``: the first ``persons`` profiles, every transcript row of theirs, the whole portfolio."""
    data = starbucks_data()
    shutil.copyfile(data / "portfolio.json", out / "portfolio.json")
    with (data / "profile.json").open() as fh:
        profile = [next(fh) for _ in range(persons)]
    (out / "profile.json").write_text("".join(profile))
    ids = {json.loads(line)["id"] for line in profile}
    with (data / "transcript.json").open() as fh, (out / "transcript.json").open("w") as dst:
        # The person id is the first field of every line: no need to decode 300,000 lines to filter them.
        dst.writelines(line for line in fh if line[12:44] in ids)
    return out


def uplift_champion(report: Any, tracking_uri: str, reason: str) -> str:
    """The uplift version a training run registered, made champion by the recorded override if the job's
    gate withheld it (``models.registry.promotion``): worlds this small rarely earn one, and the tests
    that call this are about the uplift path, not the gate. ``report`` is the run's ``UpliftReport``."""
    from models import promote_uplift

    assert report is not None
    assert report.version is not None
    if not report.promoted:
        promote_uplift(report.version, reason=reason, tracking_uri=tracking_uri)
    return str(report.version)
