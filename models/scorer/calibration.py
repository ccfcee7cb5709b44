"""Probability calibration as plain numbers, so the scorer applies it with one ``np.interp`` and no sklearn.

The calibrator maps the booster's raw margin (log-odds, ``raw_score=True``) to a probability. Working on the
margin rather than on the booster's own probability saves a sigmoid per row at scoring time and changes
nothing for isotonic regression (a monotone map of a monotone map). Two methods:

- ``isotonic``: sklearn's ``IsotonicRegression`` (clip out of bounds), each plateau's rate smoothed away
  from exactly 0 or 1 (see ``_smoothed_plateaus``); exported as thresholds that ``np.interp`` interpolates
  as sklearn does. Flexible, needs a few thousand rows to avoid steps fitted to noise.
- ``sigmoid`` (Platt scaling): ``p = 1 / (1 + exp(-(a * margin + b)))``. Two numbers; the safe choice on
  small calibration sets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from loyalty_core import InvalidInput

Method = Literal["isotonic", "sigmoid"]
METHODS: tuple[str, ...] = ("isotonic", "sigmoid")
# "auto" picks isotonic only when the calibration set can support it (Niculescu-Mizil & Caruana 2005 found
# isotonic overfits below roughly a thousand examples; we ask for more, and for enough of each class).
AUTO_MIN_ROWS = 5000
AUTO_MIN_PER_CLASS = 200


@dataclass(frozen=True, slots=True, eq=False)
class Calibrator:
    method: Method
    x: np.ndarray = field(default_factory=lambda: np.empty(0))  # isotonic thresholds (margins), increasing
    y: np.ndarray = field(default_factory=lambda: np.empty(0))  # isotonic values at the thresholds
    a: float = 1.0  # sigmoid slope
    b: float = 0.0  # sigmoid intercept

    def apply(self, margin: np.ndarray) -> np.ndarray:
        margin = np.asarray(margin, dtype=np.float64)
        if self.method == "isotonic":
            return np.asarray(np.interp(margin, self.x, self.y), dtype=np.float64)
        z = self.a * margin + self.b
        # 1/(1+exp(-z)) without overflow warnings for large |z|.
        return 0.5 * (1.0 + np.tanh(0.5 * z))

    def apply_one(self, margin: float) -> float:
        return float(self.apply(np.asarray([margin]))[0])

    def to_dict(self) -> dict[str, Any]:
        if self.method == "isotonic":
            return {"method": "isotonic", "x": self.x.tolist(), "y": self.y.tolist()}
        return {"method": "sigmoid", "a": self.a, "b": self.b}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Calibrator:
        method = doc.get("method")
        if method == "isotonic":
            x = np.asarray(doc["x"], dtype=np.float64)
            y = np.asarray(doc["y"], dtype=np.float64)
            if x.ndim != 1 or x.shape != y.shape or x.size == 0 or np.any(np.diff(x) < 0):
                raise ValueError("isotonic calibrator needs equally long, non-empty, increasing thresholds")
            return cls("isotonic", x=x, y=y)
        if method == "sigmoid":
            return cls("sigmoid", a=float(doc["a"]), b=float(doc["b"]))
        raise ValueError(f"unknown calibration method {method!r}")


def choose_method(requested: str, y: np.ndarray) -> Method:
    if requested in METHODS:
        return requested  # type: ignore[return-value]
    if requested != "auto":
        raise InvalidInput(
            f"calibration must be 'auto', 'isotonic' or 'sigmoid', got {requested!r}", field="calibration"
        )
    positives = int(y.sum())
    enough = len(y) >= AUTO_MIN_ROWS and min(positives, len(y) - positives) >= AUTO_MIN_PER_CLASS
    return "isotonic" if enough else "sigmoid"


def fit_calibrator(
    margin: np.ndarray, y: np.ndarray, method: str = "auto", sample_weight: np.ndarray | None = None
) -> Calibrator:
    """Fit on held-out margins (never on the rows the trees were grown on: those are over-confident)."""
    margin = np.asarray(margin, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(np.unique(y)) < 2:
        raise InvalidInput("the calibration set has only one label class: it cannot calibrate anything")
    chosen = choose_method(method, y)
    if chosen == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        iso.fit(margin, y, sample_weight=sample_weight)
        return Calibrator(
            "isotonic",
            x=np.asarray(iso.X_thresholds_, dtype=np.float64),
            y=_smoothed_plateaus(iso, margin, sample_weight),
        )
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e6, max_iter=1000)
    lr.fit(margin.reshape(-1, 1), y, sample_weight=sample_weight)
    return Calibrator("sigmoid", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))


def _smoothed_plateaus(iso: Any, margin: np.ndarray, sample_weight: np.ndarray | None) -> np.ndarray:
    """Isotonic values with each plateau's rate pulled off 0 and 1: (positives + 0.5) / (rows + 1).

    Plain isotonic regression gives the lowest and highest plateaus a rate of exactly 0 or 1 whenever a
    few dozen rows there happen to share a label; one later customer of the other label then costs an
    unbounded log-loss. The Jeffreys-style half count keeps large plateaus as they are and small ones
    honest; a running maximum keeps the map monotone.
    """
    w = np.ones(len(margin)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    w = w / w.mean()
    fitted = iso.predict(margin)
    values, inverse = np.unique(fitted, return_inverse=True)
    rows = np.bincount(inverse, weights=w)
    smoothed = (values * rows + 0.5) / (rows + 1.0)
    lookup = dict(zip(values.tolist(), smoothed.tolist(), strict=True))
    y = np.array([lookup.get(v, v) for v in np.asarray(iso.y_thresholds_).tolist()], dtype=np.float64)
    return np.maximum.accumulate(y)
