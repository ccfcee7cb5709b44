"""Finding a registered model and loading its scorer: ``name@alias`` in the registry -> a ``Scorer``.

Kept apart from ``models.scorer.scorer`` so the scorer itself (numpy and LightGBM) can be used by pure
code without pulling in MLflow, which is imported here inside the functions.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import lightgbm as lgb

from loyalty_core import InvalidInput, Unavailable
from models.estimators.churn_scorers import load_scorer
from models.registry.store import resolve_tracking_uri
from models.scorer.scorer import BOOSTER_FILE, META_FILE, Scorer

log = logging.getLogger(__name__)

CHAMPION = "champion"  # the alias the service and batch scoring load
CHALLENGER = "challenger"  # alias of the latest registered uplift version, promoted or not


class Champion(NamedTuple):
    scorer: Scorer
    version: str
    feature_names: tuple[str, ...]
    run_id: str | None


def find_scorer_dir(root: Path) -> Path | None:
    """The folder holding ``scorer.json`` in a downloaded model (pyfunc keeps artifacts one level down)."""
    hits = sorted(root.rglob(META_FILE), key=lambda p: len(p.parts))
    return hits[0].parent if hits else None


def aliased_version(client: Any, name: str, alias: str, uri: str) -> Any | None:
    """The registry's version behind ``name@alias``; None when the model or the alias does not exist,
    ``Unavailable`` when the registry cannot be asked (so a server outage never reads as "no champion")."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        missing = exc.error_code == "RESOURCE_DOES_NOT_EXIST" or (
            exc.error_code == "INVALID_PARAMETER_VALUE" and "alias" in str(exc.message).lower()
        )
        if missing:
            return None
        raise Unavailable(
            f"cannot query the model registry ({uri}): {exc.message}",
            model=name,
            public="the model registry cannot be queried",
        ) from exc
    except OSError as exc:
        raise Unavailable(
            f"cannot reach the model registry ({uri}): {exc}",
            model=name,
            public="the model registry cannot be reached",
        ) from exc


@contextmanager
def downloaded(name: str, alias: str, uri: str) -> Iterator[tuple[Any, Path]]:
    """The registered version behind ``models:/<name>@<alias>`` and its artifacts, in a temporary folder that
    is removed afterwards; ``Unavailable`` when there is no such version or it cannot be downloaded."""
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = aliased_version(client, name, alias, uri)
    if version is None:
        raise Unavailable(
            f"no {alias!r} version of model {name!r} in the registry ({uri}): train and promote one first",
            model=name,
            public=f"no {alias!r} version of model {name!r} in the registry: train and promote one first",
        )
    tmp = Path(tempfile.mkdtemp(prefix="loyalty-model-"))
    try:
        try:
            # The version's own artifact location, asked of this client: a ``models:/name/version`` URI
            # would be resolved against MLflow's process-wide registry (whatever its ``registry_uri``
            # argument says, MLflow 3.18), by default a ``mlflow.db`` in the working directory.
            local = Path(
                download_artifacts(
                    artifact_uri=client.get_model_version_download_uri(name, version.version),
                    dst_path=str(tmp),
                    tracking_uri=uri,
                    registry_uri=uri,
                )
            )
        except (MlflowException, OSError) as exc:
            raise Unavailable(
                f"model {name!r} version {version.version} ({alias}) cannot be downloaded: {exc}",
                model=name,
                public=f"model {name!r} version {version.version} ({alias}) cannot be downloaded",
            ) from exc
        yield version, local
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_champion(
    name: str, alias: str = CHAMPION, *, tracking_uri: str | None = None, num_threads: int = 0
) -> Champion:
    """The scorer behind ``models:/<name>@<alias>``; ``Unavailable`` when there is none or it is broken."""
    with downloaded(name, alias, resolve_tracking_uri(tracking_uri)) as (version, local):
        found = find_scorer_dir(local)
        if found is None:
            raise Unavailable(
                f"model {name!r} version {version.version} ({alias}) has no {BOOSTER_FILE}/{META_FILE}: "
                "it was not logged by models.registry.tracking",
                model=name,
            )
        try:
            scorer = load_scorer(found, num_threads=num_threads)  # LightGBM, BG/NBD or a stack
        except (OSError, ValueError, KeyError, TypeError, InvalidInput, lgb.basic.LightGBMError) as exc:
            raise Unavailable(
                f"model {name!r} version {version.version} ({alias}) is broken: {exc}",
                model=name,
                public=f"model {name!r} version {version.version} ({alias}) is broken",
            ) from exc
    log.info("loaded %s version %s (%s)", name, version.version, alias)
    return Champion(scorer, str(version.version), scorer.features, version.run_id)
