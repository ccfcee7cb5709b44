"""Churn champions that are not (only) trees: BG/NBD on its own, and a stack of LightGBM and BG/NBD.

Why they exist: on a short purchase log (a single cohort, under a year of history) the buy-till-you-die model
(Fader, Hardie & Lee 2005, "Counting your customers the easy way") extrapolates past the data and ranks
next-year churn as well as or better than trees that only ever saw short, complete label windows. The churn
job (``models.jobs.churn_candidates``) therefore registers whichever candidate wins on its holdout, and the
service and batch scoring must serve any of them with the code that serves LightGBM.

So both classes ARE ``models.scorer.Scorer`` (subclasses): the same ``features`` (the churn model's input
columns, built by ``models.inputs.ChurnInputs`` from the customer vector), ``margin`` (log-odds),
``predict_proba`` (``calibrator.apply(margin)``, a sigmoid here), ``predict_one``, ``contributions`` (n x
(features + 1), the last column the bias, summing to the margin, so ``explain`` gives reason codes),
``compile``, ``matrix``, ``meta`` and ``reference``. Only ``save``/``to_meta`` differ, and ``load_scorer``
reads any of the three kinds back from ``scorer.json``'s ``model_type``.

BG/NBD reads (frequency, recency, T) from the vector (``models.inputs.bgnbd_history``: the 365-day window,
transactions as purchase occasions). Its reason codes are exact Shapley values of the margin over its three
inputs (``txn_count_365d``, ``days_since_last_txn``, ``mean_gap_days_365d``) against the training medians:
"overdue", "few purchases", in the same phrases as the trees' reasons.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from loyalty_core import InvalidInput
from models.estimators.bgnbd.checks import PARAM_NAMES
from models.estimators.bgnbd.formulas import customer_outlook
from models.inputs.churn import BGNBD_UNIT_DAYS, bgnbd_history
from models.scorer.calibration import Calibrator
from models.scorer.scorer import BOOSTER_FILE, FORMAT_VERSION, META_FILE, Scorer, write_scorer_files

BGNBD_INPUTS: tuple[str, ...] = ("txn_count_365d", "days_since_last_txn", "mean_gap_days_365d")
SIGNALS = ("p_none", "expected")
EXPECTED_FLOOR = 0.01  # purchases: -log(E + floor) stays finite for customers BG/NBD gives up on
PROBABILITY_FLOOR = 1e-6
IDENTITY = Calibrator("sigmoid", a=1.0, b=0.0)


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
    return np.asarray(np.log(q) - np.log1p(-q), dtype=np.float64)


def bgnbd_signals(
    params: Mapping[str, float], horizon_days: float, history: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(P(no purchase over the horizon), expected purchases over it) per row of a (frequency, recency, T)
    history in weeks; a row without history (NaN) gets 1 and 0: BG/NBD knows nothing of them, and a
    customer with no transaction in a year is the surest churner."""
    n = len(history)
    p_none, expected = np.ones(n), np.zeros(n)
    ok = ~np.isnan(history).any(axis=1)
    if ok.any():
        _, exp_, quiet = customer_outlook(
            params, horizon_days / BGNBD_UNIT_DAYS, history[ok, 0], history[ok, 1], history[ok, 2]
        )
        p_none[ok], expected[ok] = quiet, exp_
    return p_none, expected


def signal_margin(signal: str, p_none: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """The churn log-odds of a BG/NBD signal before calibration: logit P(none), or -log(E + floor)."""
    if signal == "p_none":
        return _logit(p_none)
    return np.asarray(-np.log(expected + EXPECTED_FLOOR), dtype=np.float64)


def shapley(value: Any, x: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact Shapley values of ``value`` (a function of an (n, k) array) at the rows of ``x`` against one
    reference row: (n, k) contributions and the value at the reference. k is 3 here: 8 evaluations."""
    n, k = x.shape
    cache: dict[tuple[int, ...], np.ndarray] = {}
    for subset in itertools.product((0, 1), repeat=k):
        mixed = np.where(np.asarray(subset, dtype=bool)[None, :], x, ref[None, :])
        cache[subset] = value(mixed)
    phi = np.zeros((n, k))
    for i in range(k):
        for subset, v in cache.items():
            if subset[i]:
                continue
            size = sum(subset)
            weight = math.factorial(size) * math.factorial(k - size - 1) / math.factorial(k)
            with_i = tuple(1 if j == i else s for j, s in enumerate(subset))
            phi[:, i] += weight * (cache[with_i] - v)
    return phi, cache[(0,) * k]


class BgnbdScorer(Scorer):
    """BG/NBD as a served churn model: the margin is ``signal_margin`` over ``horizon_days``, the calibrator a
    sigmoid (identity for ``p_none``: the model's own probability; Platt for ``expected``)."""

    __slots__ = ("horizon_days", "params", "signal")
    model_type = "bgnbd"

    def __init__(
        self,
        params: Mapping[str, float],
        horizon_days: float,
        features: Sequence[str],
        *,
        signal: str = "p_none",
        calibrator: Calibrator = IDENTITY,
        reference: Mapping[str, float] | None = None,
        meta: Mapping[str, Any] | None = None,
        num_threads: int = 0,
    ) -> None:
        missing = [c for c in BGNBD_INPUTS if c not in features]
        if missing:
            raise InvalidInput(
                f"a BG/NBD scorer needs the input column(s) {', '.join(missing)}", field="features"
            )
        if signal not in SIGNALS:
            raise InvalidInput(
                f"unknown BG/NBD signal {signal!r}; one of {', '.join(SIGNALS)}", field="signal"
            )
        self.params = {p: float(params[p]) for p in PARAM_NAMES}
        self.horizon_days = float(horizon_days)
        self.signal = signal
        self.calibrator = calibrator
        self.features = tuple(features)
        self.reference = dict(reference or {})
        self.meta = {**dict(meta or {}), "candidate": str((meta or {}).get("candidate", f"bgnbd_{signal}"))}
        self.num_threads = num_threads
        self.compiled = None

    def signals(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P(none), E[purchases]) over ``horizon_days`` per row of an input matrix."""
        history = bgnbd_history(self._check(matrix), self.features)
        return bgnbd_signals(self.params, self.horizon_days, history)

    def margin(self, matrix: np.ndarray) -> np.ndarray:
        return signal_margin(self.signal, *self.signals(matrix))

    def predict_one(self, row: np.ndarray | Sequence[float]) -> float:
        return float(self.predict_proba(np.asarray(row, dtype=np.float64).reshape(1, -1))[0])

    def compile(self) -> bool:
        """Nothing to compile: the closed forms are a few vectorised numpy calls."""
        return True

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Exact Shapley values of the margin over ``BGNBD_INPUTS`` against the reference (training medians);
        every other column contributes 0; the last column is the margin at the reference."""
        return self.signal_contributions(matrix, self.signal)

    def signal_contributions(self, matrix: np.ndarray, signal: str) -> np.ndarray:
        """``contributions`` of one signal's margin (the stack weighs both)."""
        matrix = self._check(matrix).astype(np.float64)
        cols = [self.features.index(c) for c in BGNBD_INPUTS]
        ref = np.array([self.reference.get(c, np.nan) for c in BGNBD_INPUTS], dtype=np.float64)
        ref = np.where(np.isfinite(ref), ref, np.nanmedian(matrix[:, cols], axis=0) if len(matrix) else 0.0)

        def value(part: np.ndarray) -> np.ndarray:
            full = matrix.copy()
            full[:, cols] = part
            return signal_margin(signal, *self.signals(full))

        phi, bias = shapley(value, matrix[:, cols], np.nan_to_num(ref))
        out = np.zeros((len(matrix), len(self.features) + 1))
        out[:, cols] = phi
        out[:, -1] = bias
        return out

    def to_meta(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "model_type": self.model_type,
            "features": list(self.features),
            "params": self.params,
            "horizon_days": self.horizon_days,
            "signal": self.signal,
            "calibrator": self.calibrator.to_dict(),
            "reference": self.reference,
            "meta": self.meta,
        }

    def save(self, directory: Path | str) -> list[Path]:
        return write_scorer_files(directory, self.to_meta(), None)

    @classmethod
    def from_meta(cls, doc: Mapping[str, Any], *, num_threads: int = 0) -> BgnbdScorer:
        return cls(
            doc["params"],
            float(doc["horizon_days"]),
            [str(f) for f in doc["features"]],
            signal=str(doc["signal"]),
            calibrator=Calibrator.from_dict(doc["calibrator"]),
            reference={str(k): float(v) for k, v in doc.get("reference", {}).items()},
            meta=doc.get("meta", {}),
            num_threads=num_threads,
        )


class StackedScorer(Scorer):
    """Logistic stack: margin = w0 + w1 * trees' raw margin + w2 * logit P(none) + w3 * -log(E + floor), the
    BG/NBD terms over ``bgnbd.horizon_days``; the weights were fitted on the calibration cutoff
    (``fit_stack``), so the sigmoid of the margin is the probability."""

    __slots__ = ("bgnbd", "trees", "weights")
    model_type = "stack"

    def __init__(
        self,
        trees: Scorer,
        bgnbd: BgnbdScorer,
        weights: Sequence[float],
        *,
        meta: Mapping[str, Any] | None = None,
        num_threads: int = 0,
    ) -> None:
        if tuple(trees.features) != tuple(bgnbd.features):
            raise ValueError("the stack's trees and BG/NBD must read the same input columns")
        if len(weights) != 4:
            raise ValueError(f"a stack has 4 weights (intercept, trees, P(none), E), got {len(weights)}")
        self.trees = trees
        self.bgnbd = bgnbd
        self.weights = tuple(float(w) for w in weights)
        self.booster = trees.booster  # what reports of tree counts read
        self.calibrator = IDENTITY
        self.features = trees.features
        self.reference = dict(trees.reference)
        self.meta = {**trees.meta, **dict(meta or {}), "candidate": "stack"}
        self.num_threads = num_threads
        self.compiled = None
        trees.num_threads = bgnbd.num_threads = num_threads

    def parts(self, matrix: np.ndarray) -> np.ndarray:
        """(n, 3): the trees' raw margin, logit P(none), -log(E + floor): what the weights multiply."""
        matrix = self._check(matrix)
        p_none, expected = self.bgnbd.signals(matrix)
        return np.column_stack(
            [
                self.trees.margin(matrix),
                signal_margin("p_none", p_none, expected),
                signal_margin("expected", p_none, expected),
            ]
        )

    def margin(self, matrix: np.ndarray) -> np.ndarray:
        w = np.asarray(self.weights)
        return np.asarray(w[0] + self.parts(matrix) @ w[1:], dtype=np.float64)

    def predict_one(self, row: np.ndarray | Sequence[float]) -> float:
        return float(self.predict_proba(np.asarray(row, dtype=np.float64).reshape(1, -1))[0])

    def compile(self) -> bool:
        return self.trees.compile()

    def part(self, name: str) -> Scorer | None:
        """The stacked LightGBM scorer (``"lightgbm"``), for reports comparing it with the stack."""
        return self.trees if name == "lightgbm" else None

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """The weighted sum of the parts' contributions (TreeSHAP for the trees, Shapley for BG/NBD)."""
        matrix = self._check(matrix)
        w0, w_trees, w_none, w_expected = self.weights
        out = w_trees * self.trees.contributions(matrix)
        for weight, signal in ((w_none, "p_none"), (w_expected, "expected")):
            if weight:
                out += weight * self.bgnbd.signal_contributions(matrix, signal)
        out[:, -1] += w0
        return out

    def to_meta(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "model_type": self.model_type,
            "features": list(self.features),
            "weights": list(self.weights),
            "trees": self.trees.to_meta(),
            "bgnbd": self.bgnbd.to_meta(),
            "meta": self.meta,
        }

    def save(self, directory: Path | str) -> list[Path]:
        return write_scorer_files(directory, self.to_meta(), self.trees.booster)


def load_scorer(directory: Path | str, *, num_threads: int = 0) -> Scorer:
    """Any churn or offer scorer saved by ``save``: LightGBM (no ``model_type``), BG/NBD or a stack."""
    directory = Path(directory)
    meta_text = (directory / META_FILE).read_text(encoding="utf-8")
    doc = json.loads(meta_text)
    kind = doc.get("model_type", "lightgbm")
    if kind == "lightgbm":
        return Scorer.from_strings(
            (directory / BOOSTER_FILE).read_text(encoding="utf-8"), meta_text, num_threads=num_threads
        )
    if doc.get("format") != FORMAT_VERSION:
        raise ValueError(f"unknown scorer format {doc.get('format')!r} (this code reads {FORMAT_VERSION})")
    if kind == BgnbdScorer.model_type:
        return BgnbdScorer.from_meta(doc, num_threads=num_threads)
    if kind == StackedScorer.model_type:
        trees = Scorer.from_strings(
            (directory / BOOSTER_FILE).read_text(encoding="utf-8"),
            json.dumps(doc["trees"]),
            num_threads=num_threads,
        )
        bgnbd = BgnbdScorer.from_meta(doc["bgnbd"], num_threads=num_threads)
        return StackedScorer(trees, bgnbd, doc["weights"], meta=doc.get("meta", {}), num_threads=num_threads)
    raise ValueError(f"unknown scorer model_type {kind!r} (this code reads lightgbm, bgnbd, stack)")
