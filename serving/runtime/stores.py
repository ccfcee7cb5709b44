"""Setting up the stores the service uses, once, before any worker process starts.

``loyalty serve`` runs several workers. Left to themselves, each would create the MLflow store's schema on
first use, and MLflow's migrations are not safe to run twice at once: two workers racing on a new SQLite
store leave it broken for good (``table _alembic_tmp_latest_metrics already exists``). So the command line
sets up the ledger's schema and the MLflow store's here, in the parent process, and only then starts the
workers, which find both ready. ``loyalty init`` does the same, so a fresh checkout is ready at once.

The other commands open the ledger through ``open_ledger``, which refuses a missing or outdated schema with
the command to run rather than a traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from loyalty_core import Unavailable, alembic_config, make_engine, migrate, normalize_url

log = logging.getLogger(__name__)

# Stores MLflow keeps in a database whose schema it migrates itself; a tracking server or a folder has none.
_DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def safe_url(url: str) -> str:
    """The URL with any password replaced by ``***``, safe to print or log."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a database URL (a tracking server's address): it holds no parsable password
        return url


def prepare_ledger(database_url: str) -> str:
    """Create or upgrade the ledger's schema (idempotent); the URL it used, without its password."""
    url = normalize_url(database_url)
    engine = make_engine(url)
    try:
        migrate(engine)
    except OperationalError as exc:
        raise Unavailable(f"cannot reach the database {safe_url(url)}: {exc.orig}") from exc
    finally:
        engine.dispose()
    return safe_url(url)


def prepare_mlflow(tracking_uri: str | None = None) -> str:
    """Create or upgrade the MLflow store's schema (tracking and registry); the store's URI, without any
    password. A store MLflow reaches over HTTP sets up its own schema: nothing is done for it."""
    from models import registry_client

    uri, client = registry_client(tracking_uri)
    if uri.split(":", 1)[0].split("+", 1)[0] not in _DATABASE_SCHEMES:
        return safe_url(uri)
    try:
        # The first use of each store runs MLflow's migrations on a new database and checks an old one.
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)
    except Exception as exc:
        raise Unavailable(
            f"cannot set up the MLflow store {safe_url(uri)}: {type(exc).__name__}: {exc}"
        ) from exc
    return safe_url(uri)


def prepare_stores(database_url: str, tracking_uri: str | None = None) -> tuple[str, str]:
    """Both stores ready for the service: the ledger's schema, then the MLflow store's."""
    ledger = prepare_ledger(database_url)
    store = prepare_mlflow(tracking_uri)
    log.info("stores ready: ledger %s, MLflow %s", ledger, store)
    return ledger, store


def open_ledger(database_url: str) -> Engine:
    """An engine on the configured ledger, refused with one line saying what to run when its schema is
    missing or behind this version's: without the check, ``no such table: members`` ends a traceback.

    A SQLite file that is not there is refused before connecting, which would create it empty.
    """
    url = database_url
    shown = safe_url(url)
    parsed = make_url(url)
    database = parsed.database or ""
    if (
        parsed.get_backend_name() == "sqlite"
        and database not in ("", ":memory:")
        and not database.startswith("file:")
        and not Path(database).expanduser().exists()
    ):
        raise Unavailable(f"there is no ledger database at {shown} yet: run `loyalty init` to create it")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:
        engine.dispose()
        raise Unavailable(f"cannot reach the database {shown}: {exc.orig}") from exc
    scripts = ScriptDirectory.from_config(alembic_config())
    heads = scripts.get_heads()
    if current in heads:
        return engine
    engine.dispose()
    if current is None:
        raise Unavailable(f"the database {shown} has no ledger schema yet: run `loyalty init` to create it")
    if current in {script.revision for script in scripts.walk_revisions()}:
        raise Unavailable(
            f"the database {shown} has an older ledger schema ({current}, this version needs "
            f"{', '.join(heads)}): run `loyalty init` to migrate it"
        )
    raise Unavailable(
        f"the database {shown} has a ledger schema ({current}) this version of loyalty does not know: it "
        "was migrated by a newer version; install that version"
    )
