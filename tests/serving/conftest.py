"""App clients for the serving tests: the real app, lifespan included, on a fresh database with known keys."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from loyalty_core import Settings
from serving.app import create_app
from tests.conftest import fresh_pg_database, uplift_champion

KEYS = {"core": "test-core-key", "marketing": "test-marketing-key", "admin": "test-admin-key"}
MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def use_mlflow_store(mp: pytest.MonkeyPatch, uri: str) -> None:
    for name in MLFLOW_ENV:
        mp.setenv(name, uri)
    mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mp.setenv("DO_NOT_TRACK", "true")


@pytest.fixture(autouse=True)
def _mlflow_follows_the_environment() -> Iterator[None]:
    """After each test, forget MLflow's process-wide store (the service and the jobs set it, and MLflow
    resolves ``models:/`` downloads from it), so the next test's store is the one its environment names."""
    yield
    mlflow = sys.modules.get("mlflow")
    if mlflow is None:
        return
    saved = {name: os.environ.get(name) for name in MLFLOW_ENV}
    mlflow.set_tracking_uri(None)  # also unsets the variables...
    mlflow.set_registry_uri(None)
    for name, value in saved.items():  # ...which the package's fixture still needs
        if value is not None:
            os.environ[name] = value


@pytest.fixture(scope="package", autouse=True)
def _empty_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Every app of these tests asks an empty registry of its own, never the repository's mlflow/ store.

    Created once (MLflow builds its schema on first use, which takes seconds), so an app without models
    costs a few registry queries. Tests that need champions point the variables at a store that has them.
    """
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path_factory.mktemp('empty-mlflow') / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).search_registered_models()
    with pytest.MonkeyPatch.context() as mp:
        use_mlflow_store(mp, uri)
        yield uri


def free_port() -> int:
    """A loopback port nobody listens on now (for a server of a test's own)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThreadedServer:
    """The app under uvicorn on a free loopback port, in a thread of this process: real sockets, real
    concurrency. ``with ThreadedServer(app) as base_url:``; extra keywords go to ``uvicorn.Config``."""

    def __init__(self, app: Any, **config: Any) -> None:
        self.port = free_port()
        config.setdefault("log_level", "warning")
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, **config))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


API_KEYS = ",".join(f"{scope}:{key}" for scope, key in KEYS.items())


# Where no multiplier rule is (the repository's var/policy/ may hold one from a `loyalty score` run).
NO_MULTIPLIER_RULE = Path(tempfile.mkdtemp(prefix="loyalty-no-rule-")) / "multiplier.json"


def _client_for(engine: Engine) -> Iterator[TestClient]:
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(
        Settings(
            database_url=url,
            api_keys=API_KEYS,
            multiplier_file=NO_MULTIPLIER_RULE,
        )
    )
    with TestClient(app) as client:  # as a context manager, so the lifespan (engine, batcher) runs
        yield client


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    """The service on this test's own SQLite database."""
    yield from _client_for(engine)


@pytest.fixture
def pg_client(pg_engine: Engine) -> Iterator[TestClient]:
    """The service on the (emptied) PostgreSQL test database."""
    yield from _client_for(pg_engine)


@pytest.fixture
def auth() -> dict[str, dict[str, str]]:
    """Request headers per scope: ``client.get(..., headers=auth["core"])``."""
    return {scope: {"X-API-Key": key} for scope, key in KEYS.items()}


# --- a small world with real champions ----------------------------------------------------------------------


MULTIPLIER_BUDGET = 100.0  # expected extra points: binds on the world's 300 customers


@dataclass(frozen=True)
class World:
    """A simulated bank ingested into a SQLite ledger, features in its online table, and champions trained
    on it by the real jobs in an MLflow store of its own. Treat it as read-only: copy ``db`` (``world_db``)
    and use ``mlflow_copy`` before changing anything."""

    root: Path
    db: Path
    mlflow_uri: str
    customers: tuple[str, ...]
    as_of: dt.datetime
    scores: Path  # ``loyalty score``'s output for the same date (batch scoring of the same champions)
    multiplier: Path  # the multiplier rule that run wrote, its budget binding


def _checkpoint(path: Path) -> None:
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    from loyalty_core import DEFAULT_RULES, load_rules, make_engine, migrate
    from models import Registration, ScoreRequest, score_all, train_churn, train_offers
    from pipelines import SimConfig, ingest_history, run_feature_job, simulate

    root = tmp_path_factory.mktemp("world")
    config = SimConfig(customers=300, days=240, seed=7)
    simulate(config, root / "history")
    db = root / "loyalty.db"
    engine = make_engine(f"sqlite:///{db}")
    rules = load_rules(DEFAULT_RULES)
    uri = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    (root / "mlflow").mkdir()
    try:
        migrate(engine)
        ingest_history(engine, root / "history", rules=rules)
        run_feature_job(engine, as_of=config.end_at, rules=rules, out_dir=root / "features")
        with pytest.MonkeyPatch.context() as mp:
            use_mlflow_store(mp, uri)
            train_churn(engine, rules=rules, registration=Registration(tracking_uri=uri))
            # with the uplift model beside it
            offers = train_offers(engine, rules=rules, registration=Registration(tracking_uri=uri))
            # The service's uplift path is under test: when the job's gate withheld the champion (it must
            # beat ranking by propensity on its holdout, rare on a world this small), override it.
            uplift_champion(offers.uplift, uri, "tests: the service's uplift path")
            score_all(
                engine,
                rules=rules,
                request=ScoreRequest(
                    as_of=config.end_at.date(),
                    out=root / "scores.parquet",
                    multiplier_budget=MULTIPLIER_BUDGET,
                    multiplier_file=root / "multiplier.json",
                ),
            )
            import mlflow

            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)
        with engine.connect() as conn:
            ids = conn.execute(text("SELECT customer_id FROM online_features ORDER BY customer_id"))
            customers = tuple(str(c) for c in ids.scalars())
    finally:
        engine.dispose()
    _checkpoint(db)
    return World(root, db, uri, customers, config.end_at, root / "scores.parquet", root / "multiplier.json")


def copy_ledger(source: Engine, target: Engine, *, chunk: int = 5000) -> None:
    """Copy every table of ``source`` into the empty migrated ``target``, ids included.

    A world built once on SQLite serves PostgreSQL too (the same rows, not a second simulation). Tables go
    in dependency order; PostgreSQL's id sequences then move past the copied ids, as if the rows had been
    written there.
    """
    from sqlalchemy import func, select

    from loyalty_core import metadata

    with source.connect() as src, target.begin() as dst:
        for table in metadata.sorted_tables:
            result = src.execute(select(table)).mappings()
            while rows := result.fetchmany(chunk):
                dst.execute(table.insert(), [dict(row) for row in rows])
            if target.dialect.name != "postgresql":
                continue
            column = table.autoincrement_column
            top = None if column is None else dst.scalar(select(func.max(column)))
            if column is not None and top is not None:
                dst.execute(
                    text("SELECT setval(pg_get_serial_sequence(:t, :c), :v)"),
                    {"t": table.name, "c": column.name, "v": top},
                )


@pytest.fixture(scope="module")
def pg_world(world: World) -> Iterator[Engine]:
    """The world's ledger (history, features, offers) in a PostgreSQL database of its own, one per test
    module that asks, dropped after it: the module may write into it. Champions stay in ``world.mlflow_uri``.
    """
    from loyalty_core import make_engine

    with fresh_pg_database("loyalty_world") as engine:
        source = make_engine(f"sqlite:///{world.db}")
        try:
            copy_ledger(source, engine)
        finally:
            source.dispose()
        yield engine


@pytest.fixture
def world_db(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """This test's own copy of the world's ledger."""
    from loyalty_core import get_settings, make_engine

    path = tmp_path / "loyalty.db"
    shutil.copyfile(world.db, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("LOYALTY_DATABASE_URL", url)
    get_settings.cache_clear()
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def mlflow_copy(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A copy of the world's registry this test may change (artifacts stay where the world keeps them)."""
    (tmp_path / "mlflow").mkdir()
    path = tmp_path / "mlflow" / "mlflow.db"
    shutil.copyfile(world.root / "mlflow" / "mlflow.db", path)
    uri = f"sqlite:///{path}"
    use_mlflow_store(monkeypatch, uri)
    return uri


def scored_app(engine: Engine, world: World | None = None, **settings: Any) -> FastAPI:
    url = engine.url.render_as_string(hide_password=False)
    options: dict[str, Any] = {"model_poll_seconds": 0, **settings}
    options.setdefault("multiplier_file", NO_MULTIPLIER_RULE if world is None else world.multiplier)
    return create_app(Settings(database_url=url, api_keys=API_KEYS, **options))


@pytest.fixture
def scored(world: World, world_db: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The service on a copy of the world, with its champions loaded (no polling)."""
    use_mlflow_store(monkeypatch, world.mlflow_uri)
    with TestClient(scored_app(world_db, world)) as client:
        yield client


# --- a bank that only has transactions ----------------------------------------------------------------------


README = Path(__file__).resolve().parents[2] / "README.md"
CHURN_ONLY_SECTION = "### A bank that only has transactions"


def churn_only_commands() -> tuple[list[list[str]], list[str]]:
    """The ``loyalty`` commands of the README's churn-only block, in order, and its comment lines."""
    import shlex

    section = README.read_text(encoding="utf-8").split(CHURN_ONLY_SECTION, 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    commands: list[list[str]] = []
    comments: list[str] = []
    for line in block.splitlines():
        code, _, comment = line.partition("#")
        if not code.strip():
            comments.append(comment.strip())
        for part in filter(None, (p.strip() for p in code.split("&&"))):
            words = shlex.split(part)
            assert words[0] == "loyalty", part
            commands.append(words[1:])
    return commands, comments


@dataclass(frozen=True)
class ChurnOnlyWorld:
    """A bank with transactions and nothing else (no offers, no customers file), taken down the README's
    path ("A bank that only has transactions") with the real commands, up to ``loyalty score``
    (``score_args``, for the tests to run). Its registry holds a churn champion only. Read-only, like
    ``World``."""

    root: Path
    db: Path
    mlflow_uri: str
    customers: tuple[str, ...]
    as_of: str
    score_args: tuple[str, ...] = ()
    readme_says: tuple[str, ...] = ()  # the block's comment lines (what the commands print)


def churn_only_env(mp: pytest.MonkeyPatch, world: ChurnOnlyWorld, db: Path | None = None) -> None:
    """The variables a shell would export for this world's commands (``db``: a copy of its ledger)."""
    from loyalty_core import get_settings

    mp.setenv("LOYALTY_DATABASE_URL", f"sqlite:///{db or world.db}")
    mp.setenv("LOYALTY_MULTIPLIER_FILE", str(world.root / "multiplier.json"))
    use_mlflow_store(mp, world.mlflow_uri)
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def churn_only_world(tmp_path_factory: pytest.TempPathFactory) -> ChurnOnlyWorld:
    import pandas as pd
    from typer.testing import CliRunner

    from pipelines import SimConfig, simulate
    from serving.cli import app

    root = tmp_path_factory.mktemp("churn-only")
    config = SimConfig(customers=200, days=240, seed=11)
    simulate(config, root / "sim")
    columns = ["transaction_id", "customer_id", "occurred_at", "type", "amount", "category", "channel"]
    transactions = pd.read_parquet(root / "sim" / "transactions.parquet")[columns]
    transactions.to_csv(root / "transactions.csv", index=False)  # the bank's export: nothing else
    (root / "mlflow").mkdir()
    world = ChurnOnlyWorld(
        root,
        root / "loyalty.db",
        f"sqlite:///{root / 'mlflow' / 'mlflow.db'}",
        (),
        config.end_at.date().isoformat(),
    )
    readme, says = churn_only_commands()
    # the README's file names and date, here: this test's files and the simulated history's last day
    local = {"transactions.csv": str(root / "transactions.csv"), "2026-12-08": world.as_of}
    commands = [[local.get(w, w.replace("var/", f"{root}/")) for w in args] for args in readme]
    assert [c[0] for c in commands] == ["init", "ingest", "features", "train", "score"], commands
    commands[2] += ["--out", str(root / "features")]  # not the checkout's var/features
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as mp:
        churn_only_env(mp, world)
        for args in commands[:-1]:
            result = runner.invoke(app, args)
            assert result.exit_code == 0, (args, result.output)
        import mlflow

        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    from loyalty_core import get_settings, make_engine

    get_settings.cache_clear()
    engine = make_engine(f"sqlite:///{world.db}")
    try:
        with engine.connect() as conn:
            ids = conn.execute(text("SELECT customer_id FROM online_features ORDER BY customer_id"))
            customers = tuple(str(c) for c in ids.scalars())
    finally:
        engine.dispose()
    _checkpoint(world.db)
    return ChurnOnlyWorld(
        world.root, world.db, world.mlflow_uri, customers, world.as_of, tuple(commands[-1]), tuple(says)
    )
