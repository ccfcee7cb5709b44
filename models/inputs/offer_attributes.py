"""Offer attributes as model features: one propensity model covers the whole catalogue, new offers included.

The offer model learns P(response | customer features, offer attributes). An offer enters it only through
its ``offer_*`` columns (kind, multiplier, bonus points, threshold, duration, categories, channels, cost,
value, minimum tier), never through its id: a new offer whose attributes lie within what the model has seen
is scored without retraining. ``offer_attributes`` turns the catalogue (the fields of
``loyalty_core.offers.upsert_offer``; the simulator's ``offers.parquet``) into those columns;
``customer_offer_frame`` pairs every customer row with every offer for scoring.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from loyalty_core import OFFER_KINDS, InvalidInput
from loyalty_core import TXN_TYPES as rules_TXN_TYPES
from models.frames import require_columns
from pipelines import CATEGORIES as catalogue_CATEGORIES
from pipelines import CHANNELS as catalogue_CHANNELS

PREFIX = "offer_"
TIERS = {"base": 0, "silver": 1, "gold": 2}
# An offer names real categories and channels; the feature catalogue's catch-all "other" is never one.
CATEGORIES = tuple(c for c in catalogue_CATEGORIES if c != "other")
TXN_TYPES = rules_TXN_TYPES
CHANNELS = tuple(c for c in catalogue_CHANNELS if c != "other")


def _number(value: Any) -> float:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return np.nan
    if isinstance(value, Decimal):
        return float(value)
    return float(value)


def _members(value: Any) -> list[str] | None:
    """A list column's cell as a list of strings; None (= no restriction) for null."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _one_hot(
    prefix: str, cells: Iterable[list[str] | None], vocabulary: Sequence[str]
) -> dict[str, list[float]]:
    """Indicator per vocabulary word; a null cell means "any", so every indicator is 1 (and ``*_any`` = 1)."""
    cells = list(cells)
    out = {f"{prefix}any": [1.0 if c is None else 0.0 for c in cells]}
    for word in vocabulary:
        out[f"{prefix}{word}"] = [1.0 if c is None or word in c else 0.0 for c in cells]
    return out


def offer_attributes(catalogue: pd.DataFrame, *, id_column: str = "offer_id") -> pd.DataFrame:
    """``offer_id`` plus numeric ``offer_*`` columns, one row per offer of the catalogue."""
    if id_column not in catalogue.columns and "id" in catalogue.columns:
        catalogue = catalogue.rename(columns={"id": id_column})
    require_columns(catalogue, [id_column, "kind"], what="offers catalogue")
    bad = ~catalogue["kind"].isin(OFFER_KINDS)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InvalidInput(
            f"offer kind must be one of {', '.join(OFFER_KINDS)}, "
            f"got {catalogue['kind'].iloc[row]!r} at row {row}",
            column="kind",
            row=row,
        )

    def column(name: str, default: float) -> list[float]:
        if name not in catalogue.columns:
            return [default] * len(catalogue)
        return [default if np.isnan(v := _number(x)) else v for x in catalogue[name].tolist()]

    out: dict[str, Any] = {id_column: catalogue[id_column].astype(str).to_numpy()}
    for kind in OFFER_KINDS:
        out[f"{PREFIX}kind_{kind}"] = (catalogue["kind"] == kind).astype(np.float64).to_numpy()
    out[f"{PREFIX}multiplier"] = column("multiplier", 1.0)
    out[f"{PREFIX}bonus_points"] = column("bonus_points", 0.0)
    threshold = column("threshold", 0.0)
    out[f"{PREFIX}threshold"] = threshold
    out[f"{PREFIX}duration_days"] = column("duration_days", np.nan)
    out[f"{PREFIX}cost"] = column("cost", 0.0)
    out[f"{PREFIX}value"] = column("value", 0.0)
    tiers = catalogue["min_tier"].tolist() if "min_tier" in catalogue.columns else [None] * len(catalogue)
    out[f"{PREFIX}min_tier"] = [
        float(TIERS.get(str(t), 0)) if t is not None and t is not pd.NA else 0.0 for t in tiers
    ]
    for column_name, vocabulary, prefix in (
        ("categories", CATEGORIES, f"{PREFIX}category_"),
        ("txn_types", TXN_TYPES, f"{PREFIX}txn_type_"),
        ("channels", CHANNELS, f"{PREFIX}channel_"),
    ):
        cells = (
            [_members(v) for v in catalogue[column_name].tolist()]
            if column_name in catalogue.columns
            else [None] * len(catalogue)
        )
        out.update(_one_hot(prefix, cells, vocabulary))
    frame = pd.DataFrame(out)
    frame[f"{PREFIX}any_category"] = frame.pop(f"{PREFIX}category_any")
    return frame


def customer_offer_frame(customers: pd.DataFrame, offers: pd.DataFrame) -> pd.DataFrame:
    """Every customer row paired with every offer: customer features + ``offer_id`` + ``offer_*`` columns."""
    require_columns(offers, ["offer_id"], what="offer attributes")
    clash = [c for c in offers.columns if c in customers.columns]
    if clash:
        raise InvalidInput(f"customer features and offer attributes share column(s) {clash}", column=clash[0])
    return customers.merge(offers, how="cross")
