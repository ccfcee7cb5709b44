"""Where the MLflow tracking store and model registry live; cheap to import (no MLflow, no sklearn).

``MLFLOW_TRACKING_URI`` when set (any store MLflow supports: a server, a database), else
``sqlite:///<repo>/mlflow/mlflow.db``. A SQLite store keeps its artifacts in ``artifacts/`` beside the
database file (``mlflow/artifacts`` by default), so one folder holds the whole store; other stores keep
their own artifact location. The registry is always the same store as the runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote

from loyalty_core import REPO_ROOT, Settings

DEFAULT_STORE_DIR = REPO_ROOT / "mlflow"


def default_tracking_uri() -> str:
    return f"sqlite:///{DEFAULT_STORE_DIR / 'mlflow.db'}"


def resolve_tracking_uri(uri: str | None = None) -> str:
    # A fresh Settings, not the cached one: notebooks and tests point MLflow elsewhere while running.
    return uri or Settings().mlflow_tracking_uri or default_tracking_uri()


def artifact_root(uri: str) -> Path | None:
    """``artifacts/`` beside a SQLite store's database file; None for stores that manage their own."""
    if not uri.startswith("sqlite:///"):
        return None
    # sqlite:///relative/path.db is relative to the working directory, sqlite:////abs/path.db absolute
    db = Path(unquote(uri.removeprefix("sqlite:///").split("?", 1)[0]))
    return (db if db.is_absolute() else Path.cwd() / db).parent / "artifacts"


def prepare_store(uri: str) -> None:
    """Create a SQLite store's folder (MLflow creates the database file, not its directory)."""
    root = artifact_root(uri)
    if root is not None:
        root.parent.mkdir(parents=True, exist_ok=True)


def registry_client(tracking_uri: str | None = None) -> tuple[str, Any]:
    """The store's URI and an ``MlflowClient`` on it for runs and registry alike, its folder ready for
    writing. MLflow is imported here, on first use, so that importing this module stays cheap."""
    from mlflow import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    prepare_store(uri)
    return uri, MlflowClient(tracking_uri=uri, registry_uri=uri)


def use_store(tracking_uri: str | None) -> str:
    """Point MLflow's process-wide tracking and registry URIs at our store and return it.

    ``download_artifacts("models:/name/version", registry_uri=...)`` resolves the registry from MLflow's
    process-wide setting, not from its argument (MLflow 3.17, ``ModelsArtifactRepository``): without this a
    process that did not train first (``loyalty score``) would look in MLflow's own default store. Left set
    afterwards, as ``models.registry.tracking.log_training`` does (MLflow writes them into ``os.environ``).
    """
    import mlflow

    uri = resolve_tracking_uri(tracking_uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri
