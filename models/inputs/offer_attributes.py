"""Offer attributes as model features: one propensity model covers the whole catalogue, new offers included.

The offer model learns P(response | customer features, offer attributes). An offer enters it only through
its ``offer_*`` columns (kind, multiplier, bonus points, threshold, duration, categories, channels, cost,
value, minimum tier), never through its id: a new offer whose attributes lie within what the model has seen
is scored without retraining. ``offer_attributes`` turns the catalogue (the fields of
``loyalty_core.offers.upsert_offer``; the simulator's ``offers.parquet``) into those columns;
``customer_offer_frame`` pairs every customer row with every offer for scoring. ``catalogue_frame`` reads
the catalogue from a frame (the simulator's ``offers.parquet``, ``offer_id`` or ``id``) or records
(``loyalty_core.schema.Offer`` rows or dicts); ``offer_table`` adds the numbers and labels of the
catalogue's free-form ``attributes`` as ``offer_attr_*`` columns.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from loyalty_core import OFFER_KINDS, InvalidInput
from loyalty_core import TXN_TYPES as rules_TXN_TYPES
from models.inputs.frames import require_columns
from pipelines import CATEGORIES as catalogue_CATEGORIES
from pipelines import CHANNELS as catalogue_CHANNELS

PREFIX = "offer_"
ATTR_PREFIX = "offer_attr_"
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


CATALOGUE_FIELDS = (
    "offer_id",
    "kind",
    "multiplier",
    "bonus_points",
    "threshold",
    "categories",
    "txn_types",
    "channels",
    "duration_days",
    "cost",
    "value",
    "min_tier",
    "active",
    "attributes",
)


def catalogue_frame(catalogue: pd.DataFrame | Iterable[Any]) -> pd.DataFrame:
    """The catalogue as a DataFrame with ``offer_id``: from a frame (``id`` renamed), ORM rows or dicts."""
    if isinstance(catalogue, pd.DataFrame):
        frame = catalogue
        if "offer_id" not in frame.columns and "id" in frame.columns:
            frame = frame.rename(columns={"id": "offer_id"})
    else:
        records = []
        for rec in catalogue:
            get = rec.get if isinstance(rec, Mapping) else (lambda k, d=None, r=rec: getattr(r, k, d))
            row = {f: get(f) for f in CATALOGUE_FIELDS}
            if row["offer_id"] is None:
                row["offer_id"] = get("id")
            records.append(row)
        frame = pd.DataFrame.from_records(records, columns=list(CATALOGUE_FIELDS))
    if "offer_id" not in frame.columns or "kind" not in frame.columns:
        raise InvalidInput("the offers catalogue needs offer_id (or id) and kind", field="offer_id")
    frame = frame.assign(offer_id=frame["offer_id"].astype(str)).reset_index(drop=True)
    if frame["offer_id"].duplicated().any():
        dup = frame["offer_id"][frame["offer_id"].duplicated()].iloc[0]
        raise InvalidInput(f"the offers catalogue lists {dup!r} twice", field="offer_id")
    return frame


def _attribute_columns(attributes: Sequence[Any]) -> dict[str, list[float]]:
    """The catalogue's free-form ``attributes`` as numbers: numeric values as they are, text and lists of
    text as 0/1 indicators ``offer_attr_<key>_<value>`` (a new offer lacking a key: NaN / 0)."""
    docs = [a if isinstance(a, Mapping) else {} for a in attributes]
    numeric: dict[str, list[float]] = {}
    labels: dict[str, set[str]] = {}
    for doc in docs:
        for key, value in doc.items():
            if isinstance(value, bool):
                labels.setdefault(str(key), set()).add(str(value).lower())
            elif isinstance(value, int | float) and math.isfinite(float(value)):
                numeric.setdefault(str(key), [])
            elif isinstance(value, str):
                labels.setdefault(str(key), set()).add(value)
            elif isinstance(value, list | tuple):
                labels.setdefault(str(key), set()).update(str(v) for v in value)
    out: dict[str, list[float]] = {}
    for key in sorted(numeric):
        out[f"{ATTR_PREFIX}{key}"] = [
            float(v) if isinstance((v := d.get(key)), int | float) and not isinstance(v, bool) else math.nan
            for d in docs
        ]
    for key in sorted(labels):
        for word in sorted(labels[key]):
            out[f"{ATTR_PREFIX}{key}_{word}"] = [1.0 if word in _words(d.get(key)) else 0.0 for d in docs]
    return out


def _words(value: Any) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, bool):
        return {str(value).lower()}
    if isinstance(value, list | tuple):
        return {str(v) for v in value}
    return {str(value)}


def offer_table(catalogue: pd.DataFrame | Iterable[Any]) -> pd.DataFrame:
    """``offer_id``, ``kind`` and every numeric offer column (``offer_*``, ``offer_attr_*``) per offer."""
    frame = catalogue_frame(catalogue)
    attrs = offer_attributes(frame.drop(columns=["attributes"], errors="ignore"))
    extra = _attribute_columns(frame["attributes"].tolist() if "attributes" in frame.columns else [])
    table = pd.concat([attrs, pd.DataFrame(extra, index=attrs.index)], axis=1) if extra else attrs
    table.insert(1, "kind", frame["kind"].astype(str).to_numpy())
    return table
