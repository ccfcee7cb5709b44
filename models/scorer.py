"""The fast path from a feature matrix to calibrated probabilities, for the service and for batch scoring.

A ``Scorer`` is a LightGBM booster plus a calibrator held as plain numbers (``models.calibration``): scoring
is ``Booster.predict(raw_score=True)`` on a numpy matrix and one ``np.interp`` (or a sigmoid). No DataFrame
is built on the way: a one-row DataFrame costs hundreds of microseconds, a numpy row through the booster
tens. Columns are positional, in ``scorer.features`` order; ``matrix(frame)`` builds that order from named
columns at the edge.

A scorer is saved as two files, ``booster.txt`` (LightGBM's own text format) and ``scorer.json`` (features,
calibrator, training medians for reason codes, metadata). Training logs both inside the registered MLflow
model, so ``load_champion`` needs neither the pyfunc wrapper nor unpickling anything.

This module imports only numpy and LightGBM at the top: MLflow is loaded inside ``load_champion``.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import lightgbm as lgb
import numpy as np

from loyalty_core import InvalidInput, Unavailable
from models.calibration import Calibrator
from models.compiled import Predict, compile_booster
from models.reasons import Reason, explain

log = logging.getLogger(__name__)

BOOSTER_FILE = "booster.txt"
META_FILE = "scorer.json"
FORMAT_VERSION = 1
CHAMPION = "champion"
SMALL_BATCH = 256  # fewer rows than this are scored on one thread


class Scorer:
    """Calibrated probabilities from a float32/float64 matrix (rows = customers, columns = ``features``)."""

    __slots__ = ("booster", "calibrator", "compiled", "features", "meta", "num_threads", "reference")

    def __init__(
        self,
        booster: lgb.Booster,
        calibrator: Calibrator,
        features: Sequence[str],
        *,
        reference: Mapping[str, float] | None = None,
        meta: Mapping[str, Any] | None = None,
        num_threads: int = 0,
    ) -> None:
        if booster.num_feature() != len(features):
            raise ValueError(f"the booster has {booster.num_feature()} features, {len(features)} names given")
        self.booster = booster
        self.calibrator = calibrator
        self.features: tuple[str, ...] = tuple(features)
        self.reference: dict[str, float] = dict(reference or {})
        self.meta: dict[str, Any] = dict(meta or {})
        self.num_threads = num_threads  # batch scoring; 0 = LightGBM's default (all cores)
        self.compiled: Predict | None = None  # see compile()

    def _check(self, matrix: np.ndarray) -> np.ndarray:
        matrix = np.asarray(matrix)
        if matrix.ndim != 2 or matrix.shape[1] != len(self.features):
            raise InvalidInput(
                f"the scorer takes a matrix with {len(self.features)} columns "
                f"({', '.join(self.features[:5])}...), got shape {matrix.shape}",
                field="features",
            )
        if matrix.dtype not in (np.float32, np.float64):
            matrix = matrix.astype(np.float64)
        return matrix

    def _threads(self, rows: int) -> int:
        # Waking a thread pool costs more than scoring a few rows (measured: one row 35 us on one thread,
        # up to ~400 us on two when the cores are busy; TreeSHAP of one row 3 ms vs 9 ms).
        return 1 if rows < SMALL_BATCH else self.num_threads

    def compile(self) -> bool:
        """Score large batches through the trees compiled to native code (``models.compiled``): the same
        raw scores at a quarter of the CPU time. Returns whether that is now the case; small batches and
        ``predict_one`` keep LightGBM (a call into it is cheaper than the compiled code's thread pool)."""
        if self.compiled is None:
            self.compiled = compile_booster(self.booster)
        return self.compiled is not None

    def margin(self, matrix: np.ndarray) -> np.ndarray:
        """The booster's raw score (log-odds) per row, before calibration."""
        matrix = self._check(matrix)
        if self.compiled is not None and len(matrix) >= SMALL_BATCH:
            return self.compiled(matrix, self.num_threads)
        return np.asarray(
            self.booster.predict(matrix, raw_score=True, num_threads=self._threads(len(matrix))),
            dtype=np.float64,
        )

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        """Calibrated P(label = 1) per row, as a 1-D float64 array."""
        return self.calibrator.apply(self.margin(matrix))

    def predict_one(self, row: np.ndarray | Sequence[float]) -> float:
        """Calibrated P(label = 1) for one customer (one thread, see ``_threads``)."""
        arr = np.asarray(row, dtype=np.float64).reshape(1, -1)
        if arr.shape[1] != len(self.features):
            raise InvalidInput(
                f"the scorer takes {len(self.features)} feature values, got {arr.shape[1]}", field="features"
            )
        margin = float(self.booster.predict(arr, raw_score=True, num_threads=1)[0])
        return self.calibrator.apply_one(margin)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """TreeSHAP contributions to the raw score: n x (features + 1), the last column the bias."""
        matrix = self._check(matrix)
        return np.asarray(
            self.booster.predict(matrix, pred_contrib=True, num_threads=self._threads(len(matrix))),
            dtype=np.float64,
        )

    def explain(self, matrix: np.ndarray, *, k: int = 3, towards: str = "up") -> list[list[Reason]]:
        """Top-``k`` reason codes per row, in words (see ``models.reasons``)."""
        matrix = self._check(matrix)
        return explain(
            self.contributions(matrix), matrix, self.features, self.reference, k=k, towards=towards
        )

    def matrix(self, frame: Any) -> np.ndarray:
        """A DataFrame's (or mapping's) columns in this scorer's order (float64): for edges, not hot paths."""
        missing = [f for f in self.features if f not in frame]
        if missing:
            raise InvalidInput(
                f"missing feature column(s) {', '.join(map(repr, missing[:5]))}", column=missing[0]
            )
        cols = [np.asarray(frame[f], dtype=np.float64) for f in self.features]
        return np.ascontiguousarray(np.column_stack(cols))

    # --- files ------------------------------------------------------------------------------------------
    def to_meta(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "features": list(self.features),
            "calibrator": self.calibrator.to_dict(),
            "reference": self.reference,
            "meta": self.meta,
        }

    def save(self, directory: Path | str) -> list[Path]:
        """Write ``booster.txt`` and ``scorer.json`` into ``directory``; return their paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        booster_path = directory / BOOSTER_FILE
        meta_path = directory / META_FILE
        booster_path.write_text(self.booster.model_to_string(), encoding="utf-8")
        meta_path.write_text(json.dumps(self.to_meta(), indent=1, allow_nan=False), encoding="utf-8")
        return [booster_path, meta_path]

    @classmethod
    def from_strings(cls, booster_text: str, meta_text: str, *, num_threads: int = 0) -> Scorer:
        doc = json.loads(meta_text)
        if doc.get("format") != FORMAT_VERSION:
            raise ValueError(
                f"unknown scorer format {doc.get('format')!r} (this code reads {FORMAT_VERSION})"
            )
        booster = lgb.Booster(model_str=booster_text)
        features = [str(f) for f in doc["features"]]
        if booster.feature_name() != features:
            raise ValueError("the booster's feature names differ from scorer.json's")
        return cls(
            booster,
            Calibrator.from_dict(doc["calibrator"]),
            features,
            reference={str(k): float(v) for k, v in doc.get("reference", {}).items()},
            meta=doc.get("meta", {}),
            num_threads=num_threads,
        )

    @classmethod
    def from_dir(cls, directory: Path | str, *, num_threads: int = 0) -> Scorer:
        directory = Path(directory)
        return cls.from_strings(
            (directory / BOOSTER_FILE).read_text(encoding="utf-8"),
            (directory / META_FILE).read_text(encoding="utf-8"),
            num_threads=num_threads,
        )


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
    from models.store import resolve_tracking_uri

    with downloaded(name, alias, resolve_tracking_uri(tracking_uri)) as (version, local):
        found = find_scorer_dir(local)
        if found is None:
            raise Unavailable(
                f"model {name!r} version {version.version} ({alias}) has no {BOOSTER_FILE}/{META_FILE}: "
                "it was not logged by models.tracking",
                model=name,
            )
        try:
            scorer = Scorer.from_dir(found, num_threads=num_threads)
        except (OSError, ValueError, KeyError, TypeError, lgb.basic.LightGBMError) as exc:
            raise Unavailable(
                f"model {name!r} version {version.version} ({alias}) is broken: {exc}",
                model=name,
                public=f"model {name!r} version {version.version} ({alias}) is broken",
            ) from exc
    log.info("loaded %s version %s (%s)", name, version.version, alias)
    return Champion(scorer, str(version.version), scorer.features, version.run_id)
