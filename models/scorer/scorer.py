"""The fast path from a feature matrix to calibrated probabilities, for the service and for batch scoring.

A ``Scorer`` is a LightGBM booster plus a calibrator held as plain numbers
(``models.scorer.calibration``): scoring is ``Booster.predict(raw_score=True)`` on a numpy matrix and
one ``np.interp`` (or a sigmoid). No DataFrame is built on the way: a one-row DataFrame costs hundreds of
microseconds, a numpy row through the booster tens. Columns are positional, in ``scorer.features`` order;
``matrix(frame)`` builds that order from named columns at the edge.

A scorer is saved as two files, ``booster.txt`` (LightGBM's own text format) and ``scorer.json`` (features,
calibrator, training medians for reason codes, metadata). Training logs both inside the registered MLflow
model, so ``models.registry.champions.load_champion`` needs neither the pyfunc wrapper nor unpickling
anything.

This module imports only numpy and LightGBM: finding and loading a registered scorer is
``models.registry.champions``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from loyalty_core import InvalidInput
from models.reasons import Reason, explain
from models.scorer.calibration import Calibrator
from models.scorer.compiled import Predict, compile_booster

log = logging.getLogger(__name__)

BOOSTER_FILE = "booster.txt"
META_FILE = "scorer.json"
FORMAT_VERSION = 1
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
        """Score large batches through the trees compiled to native code (``models.scorer.compiled``): the
        same raw scores at a quarter of the CPU time. Returns whether that is now the case; small batches and
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
        return write_scorer_files(directory, self.to_meta(), self.booster)

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


def write_scorer_files(
    directory: Path | str, meta: dict[str, Any], booster: lgb.Booster | None
) -> list[Path]:
    """The files of every kind of scorer: its trees (when it has any) and its meta; their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    if booster is not None:
        paths.append(directory / BOOSTER_FILE)
        paths[-1].write_text(booster.model_to_string(), encoding="utf-8")
    paths.append(directory / META_FILE)
    paths[-1].write_text(json.dumps(meta, indent=1, allow_nan=False), encoding="utf-8")
    return paths
