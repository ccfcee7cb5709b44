"""Reason codes: the few features that moved a customer's score the most, said the way a marketer talks.

LightGBM's ``pred_contrib`` splits each raw score (log-odds) exactly into one contribution per feature plus
a bias (TreeSHAP). The features with the largest contributions towards the score are "why this customer",
chosen by the direction and size of the contribution: only those that pushed the way asked, by at least
``MIN_CONTRIBUTION``. The wording comes from which side of the training median the customer's value sits
on: a churn score raised by ``spend_trend_30d`` reads "spent less in the last 30 days than in the months
before" when the trend is below the median. Every phrase compares the customer with most customers (or with
their own past), so it is true of anyone on that side of the median whatever the score: no phrase claims
more than the value says ("has already left" for a probability of 1 %). The phrases themselves are data, in
``models.reasons.phrases``; an input without one (a new feature) still reads as words built from its name
(``humanize``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from models.reasons.phrases import FLAGS, MISSING_DEFAULT, MISSING_PHRASES, NEUTRAL_PHRASES, PHRASES

_WINDOW = re.compile(r"^(\d+)([dwmy])$")
_UNITS = {"d": "days", "w": "weeks", "m": "months", "y": "years"}
_WORDS = {
    "txn": "transaction",
    "txns": "transactions",
    "category": "",
    "cnt": "number of",
    "count": "number of",
    "n": "number of",
    "num": "number of",
    "amt": "amount",
    "avg": "average",
    "mean": "average",
    "pct": "share of",
    "share": "share of",
    "qty": "quantity",
    "std": "variability of",
    "days": "days",
    "since": "since",
}
_LEADING = {"number of", "share of", "average", "variability of"}


MIN_CONTRIBUTION = 0.05  # log-odds: a feature moving the odds by less than about 5 % is not a reason


@dataclass(frozen=True, slots=True)
class Reason:
    feature: str
    phrase: str
    contribution: float  # to the raw score (log-odds) of this row
    value: float | None  # the customer's value (None when missing)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def humanize(feature: str) -> str:
    """``txn_count_90d`` -> "number of transactions in the last 90 days"; unknown words are kept as is."""
    tokens = [t for t in re.split(r"[_\W]+", feature.lower()) if t]
    window = ""
    words: list[str] = []
    for token in tokens:
        m = _WINDOW.match(token)
        if m:
            n, unit = m.groups()
            window = f" in the last {n} {_UNITS[unit] if n != '1' else _UNITS[unit][:-1]}"
            continue
        words.append(_WORDS.get(token, token))
    leading = [w for w in words if w in _LEADING]
    rest = [w for w in words if w and w not in _LEADING]
    if "number of" in leading and rest and rest[0] == "transaction":
        rest[0] = "transactions"
    text = " ".join([*leading, *rest]) or feature
    return text + window


def describe(
    feature: str,
    value: float | None,
    reference: float | None,
    phrases: Mapping[str, tuple[str, str]] = PHRASES,
) -> str | None:
    """One phrase for ``feature`` at ``value``, by which side of ``reference`` (the training median) it is on;
    None when it sits at the reference: "as most customers" explains no score.

    Yes/no inputs (``FLAGS``) read 1 as the first phrase and 0 as the second, whatever the median.
    """
    if feature in NEUTRAL_PHRASES:
        return NEUTRAL_PHRASES[feature]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if feature in MISSING_PHRASES:
            return MISSING_PHRASES[feature]
        return MISSING_DEFAULT if feature in phrases else f"{humanize(feature)}: not on record"
    if reference is None or (isinstance(reference, float) and math.isnan(reference)):
        reference = 0.0
    if feature in FLAGS:
        above = value >= 0.5
    elif value != reference:
        above = value > reference
    else:
        return None
    if feature in phrases:
        return phrases[feature][0 if above else 1]
    return f"{humanize(feature)}: {'higher' if above else 'lower'} than for most customers"


def explain(
    contributions: np.ndarray,
    matrix: np.ndarray,
    features: Sequence[str],
    reference: Mapping[str, float] | None = None,
    *,
    k: int = 3,
    phrases: Mapping[str, tuple[str, str]] = PHRASES,
    towards: str = "up",
    min_contribution: float = MIN_CONTRIBUTION,
) -> list[list[Reason]]:
    """The top ``k`` reasons per row, chosen by the direction and size of their contributions.

    ``contributions`` is LightGBM's ``pred_contrib`` output (n x (features + 1), the last column the bias);
    ``towards="up"`` keeps only features that raised the score (why this customer is at risk / likely to
    respond), ``"down"`` only those that lowered it, ``"both"`` ranks by absolute size. A contribution
    smaller than ``min_contribution`` (log-odds) is no reason: it moves the score by less than a few per cent,
    and a customer with a low score would otherwise be given the faint reasons of a high one. A feature at
    the reference (the median) has no phrase and gives its place to the next one.
    """
    contributions = np.asarray(contributions, dtype=np.float64)
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    if contributions.ndim == 1:
        contributions = contributions.reshape(1, -1)
    n_features = len(features)
    if contributions.shape[1] != n_features + 1 or matrix.shape[1] != n_features:
        raise ValueError(
            f"contributions {contributions.shape} and matrix {matrix.shape} do not fit {n_features} features"
        )
    if towards not in ("up", "down", "both"):
        raise ValueError(f"towards must be 'up', 'down' or 'both', got {towards!r}")
    per_feature = contributions[:, :n_features]
    if towards == "up":
        key = np.where(per_feature > 0, per_feature, -np.inf)
    elif towards == "down":
        key = np.where(per_feature < 0, -per_feature, -np.inf)
    else:
        key = np.abs(per_feature)
    k = max(0, min(k, n_features))
    ranked = np.argsort(-key, axis=1, kind="stable")
    ref = reference or {}
    out: list[list[Reason]] = []
    for i in range(per_feature.shape[0]):
        reasons: list[Reason] = []
        for j in ranked[i]:
            if len(reasons) == k:
                break
            if not np.isfinite(key[i, j]) or key[i, j] < min_contribution or key[i, j] == 0.0:
                break
            name = features[j]
            raw = float(matrix[i, j])
            value = None if math.isnan(raw) else raw
            phrase = describe(name, value, ref.get(name), phrases)
            if phrase is not None:
                reasons.append(Reason(name, phrase, float(per_feature[i, j]), value))
        out.append(reasons)
    return out
