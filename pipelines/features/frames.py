"""The ledger as plain DataFrames, and one long "events" frame that carries all of them at once.

``LedgerFrames`` is what the feature and label functions read: one frame per kind of fact, each with fixed
columns and dtypes (``SCHEMAS``), one row per fact, times as ``datetime64[us, UTC]``. Amounts are float64 in
the programme's home currency (converted at the rules' fixed fx rates by ``extract``): features need
arithmetic, not cents, while the ledger keeps the exact decimals.

Spark's ``groupBy(...).applyInPandas`` hands the function ONE frame per group, so ``pack`` unions every
frame into a single long frame with a ``source`` column and generic slots (``t1..t3`` times, ``s1..s5``
strings, ``f1..f2`` floats, ``i1`` integers; ``PACKING`` says which column goes where) and ``unpack`` turns it
back. Both engines then call the very same feature function on ``LedgerFrames``. The offers catalogue is a
dimension, not per customer: what features and labels need of it (kind, duration) is joined into the offer
events and activations, and it is not packed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from loyalty_core import InvalidInput

TS = "datetime64[us, UTC]"
STR: Final = "str"
# Customer ids and low-cardinality strings are categoricals: one hash per row when loaded, integer codes
# from then on (and a fraction of the memory).
CAT: Final = "category"
ID = CAT

SCHEMAS: dict[str, dict[str, str]] = {
    "customers": {
        "customer_id": ID,
        "joined_on": TS,  # midnight UTC of the joining date; NaT when unknown
        "birth_year": "float64",
        "gender": CAT,
        "region": CAT,
        "income": "float64",
        "income_band": CAT,
        "channel": CAT,  # preferred channel
    },
    "transactions": {  # posted earn entries
        "id": "int64",
        "customer_id": ID,
        "occurred_at": TS,
        "type": CAT,
        "amount": "float64",  # home currency
        "category": CAT,
        "channel": CAT,
        "points": "int64",
    },
    "refunds": {  # reversals of posted transactions
        "id": "int64",
        "customer_id": ID,
        "occurred_at": TS,  # when the refund was booked
        "original_at": TS,  # when the refunded transaction happened (its month's tier spend shrinks)
        "type": CAT,
        "amount": "float64",  # home currency, positive
    },
    "movements": {  # lines of the member's points and debt accounts
        "id": "int64",
        "customer_id": ID,
        "effective_at": TS,
        "kind": CAT,  # the entry's kind: earn, review, activity, redeem, capture, reverse, expire
        "account": CAT,  # points | debt
        "points": "int64",  # signed
    },
    "lots": {
        "id": "int64",
        "customer_id": ID,
        "earned_at": TS,
        "expires_at": TS,
        "points": "int64",  # as credited; what is left of it now is deliberately not read (see extract)
    },
    "offer_events": {
        "id": "int64",
        "customer_id": ID,
        "offer_id": STR,
        "offer_kind": CAT,
        "duration_days": "int64",
        "event": CAT,  # sent | viewed | activated | completed (| shown | accepted from feedback)
        "occurred_at": TS,
        "channel": CAT,
        "decision_id": STR,
    },
    "activations": {
        "id": "int64",
        "customer_id": ID,
        "offer_id": STR,
        "offer_kind": CAT,
        "activated_at": TS,
        "expires_at": TS,
        "completed_at": TS,  # NaT while not completed
    },
    "offers": {
        "offer_id": STR,
        "kind": STR,
        "duration_days": "int64",
        "multiplier": "float64",
        "bonus_points": "int64",
        "threshold": "float64",
        "cost": "float64",
        "value": "float64",
    },
}

# Where each frame's columns travel in the packed events frame (customer_id and source are always there).
PACKING: dict[str, dict[str, str]] = {
    "customers": {
        "joined_on": "t1",
        "gender": "s1",
        "region": "s2",
        "income_band": "s3",
        "channel": "s4",
        "income": "f1",
        "birth_year": "f2",
    },
    "transactions": {
        "id": "id",
        "occurred_at": "t1",
        "type": "s1",
        "category": "s2",
        "channel": "s3",
        "amount": "f1",
        "points": "i1",
    },
    "refunds": {"id": "id", "occurred_at": "t1", "original_at": "t2", "type": "s1", "amount": "f1"},
    "movements": {"id": "id", "effective_at": "t1", "kind": "s1", "account": "s2", "points": "i1"},
    "lots": {"id": "id", "earned_at": "t1", "expires_at": "t2", "points": "i1"},
    "offer_events": {
        "id": "id",
        "occurred_at": "t1",
        "event": "s1",
        "offer_kind": "s2",
        "channel": "s3",
        "offer_id": "s4",
        "decision_id": "s5",
        "duration_days": "i1",
    },
    "activations": {
        "id": "id",
        "activated_at": "t1",
        "expires_at": "t2",
        "completed_at": "t3",
        "offer_kind": "s2",
        "offer_id": "s4",
    },
}
PACKED: dict[str, str] = {
    "customer_id": STR,
    "source": STR,
    "id": "int64",
    "t1": TS,
    "t2": TS,
    "t3": TS,
    "s1": STR,
    "s2": STR,
    "s3": STR,
    "s4": STR,
    "s5": STR,
    "f1": "float64",
    "f2": "float64",
    "i1": "float64",  # integers with nulls; every packed integer is far below 2**53, so float64 is exact
}
PER_CUSTOMER = tuple(PACKING)


def conform(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """``frame`` with exactly the columns and dtypes of ``SCHEMAS[name]`` (missing optional ones as nulls).

    Required: ``customer_id`` and the frame's times and integers; strings and floats may be absent.
    """
    schema = SCHEMAS[name]
    out: dict[str, pd.Series] = {}
    n = len(frame)
    for col, dtype in schema.items():
        if col in frame.columns:
            out[col] = _cast(frame[col], dtype, f"{name}.{col}")
        elif dtype in (STR, CAT):
            out[col] = pd.Series(np.full(n, np.nan), index=frame.index).astype(STR).astype(_dtype(dtype))
        elif dtype == "float64":
            out[col] = pd.Series(np.full(n, np.nan), index=frame.index)
        elif dtype == TS and col in ("completed_at", "joined_on"):
            out[col] = pd.Series(pd.NaT, index=frame.index, dtype=TS)
        else:
            raise InvalidInput(f"{name} needs a column {col!r}", field=col)
    if "customer_id" in out and out["customer_id"].isna().any():
        row = int(np.flatnonzero(out["customer_id"].isna().to_numpy())[0])
        raise InvalidInput(f"{name}.customer_id is missing in row {row}", field="customer_id", row=row)
    return pd.DataFrame(out, copy=False).reset_index(drop=True)


def _dtype(name: str) -> Any:
    """A dtype object for a schema's dtype name (what ``astype`` is typed to accept)."""
    return pd.api.types.pandas_dtype(name)


def _cast(col: pd.Series, dtype: str, where: str) -> pd.Series:
    try:
        if dtype == TS:
            if col.dtype == TS:
                return col
            converted = pd.to_datetime(col, utc=True)
            return converted.dt.as_unit("us")
        if dtype == CAT:
            if isinstance(col.dtype, pd.CategoricalDtype):
                return col
            out: pd.Series = col.astype(STR).astype(CAT)
            return out
        if dtype == "int64" and col.dtype != "int64":
            if col.isna().any():
                raise InvalidInput(f"{where} has missing values", field=where)
            return col.astype("int64")
        return col.astype(_dtype(dtype)) if col.dtype != dtype else col
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{where} cannot be read as {dtype}: {exc}", field=where) from exc


@dataclass(frozen=True, slots=True, eq=False)  # frames do not compare or hash as values
class LedgerFrames:
    """Everything the features and labels read, for some set of customers (all of them, or a partition)."""

    customers: pd.DataFrame
    transactions: pd.DataFrame
    refunds: pd.DataFrame
    movements: pd.DataFrame
    lots: pd.DataFrame
    offer_events: pd.DataFrame
    activations: pd.DataFrame
    offers: pd.DataFrame

    @classmethod
    def from_frames(cls, **frames: pd.DataFrame) -> LedgerFrames:
        """Conformed frames; the ones not given are empty (handy for tests and partial data)."""
        unknown = set(frames) - set(SCHEMAS)
        if unknown:
            raise InvalidInput(f"unknown frame(s): {', '.join(sorted(unknown))}", field="frames")
        return cls(
            **{name: conform(frames[name], name) if name in frames else empty(name) for name in SCHEMAS}
        )

    def items(self) -> Iterable[tuple[str, pd.DataFrame]]:
        for f in dataclasses.fields(self):
            yield f.name, getattr(self, f.name)

    def subset(self, customer_ids: Iterable[str]) -> LedgerFrames:
        """The same frames restricted to some customers (the offers catalogue is kept whole)."""
        wanted = pd.Index(list(customer_ids), dtype=STR)
        parts = {
            name: frame
            if name == "offers"
            else frame[frame["customer_id"].isin(wanted)].reset_index(drop=True)
            for name, frame in self.items()
        }
        return LedgerFrames(**parts)

    @property
    def rows(self) -> int:
        return sum(len(frame) for name, frame in self.items() if name != "offers")


def empty(name: str) -> pd.DataFrame:
    return pd.DataFrame({col: pd.Series([], dtype=dtype) for col, dtype in SCHEMAS[name].items()})


def pack(frames: LedgerFrames) -> pd.DataFrame:
    """One long frame (``PACKED`` columns) holding every per-customer frame, told apart by ``source``."""
    parts = []
    for name in PER_CUSTOMER:
        frame: pd.DataFrame = getattr(frames, name)
        n = len(frame)
        cols: dict[str, object] = {
            "customer_id": frame["customer_id"].astype(STR),
            "source": pd.Series(np.full(n, name, dtype=object), index=frame.index),
        }
        mapping: Mapping[str, str] = PACKING[name]
        for col, slot in mapping.items():
            cols[slot] = frame[col]
        parts.append(_with_packed_dtypes(pd.DataFrame(cols)))
    return pd.concat(parts, ignore_index=True)


def _with_packed_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    n = len(frame)
    out = {}
    for slot, dtype in PACKED.items():
        if slot in frame.columns:
            col = frame[slot]
            if isinstance(col.dtype, pd.CategoricalDtype):
                col = col.astype(STR)
            out[slot] = col.astype(_dtype(dtype)) if dtype != TS else _cast(col, TS, slot)
        elif slot == "id":
            out[slot] = pd.Series(np.zeros(n, dtype="int64"))
        elif dtype == TS:
            out[slot] = pd.Series(pd.NaT, index=frame.index, dtype=TS)
        else:
            out[slot] = pd.Series(np.full(n, np.nan), index=frame.index).astype(_dtype(dtype))
    return pd.DataFrame(out)


def unpack(events: pd.DataFrame) -> LedgerFrames:
    """The frames ``pack`` packed (offers catalogue empty); times may come back naive (Spark): read as UTC."""
    missing = [c for c in ("customer_id", "source") if c not in events.columns]
    if missing:
        raise InvalidInput(f"events frame lacks column(s) {', '.join(missing)}", field="events")
    source = events["source"].astype(STR)
    parts: dict[str, pd.DataFrame] = {}
    for name in PER_CUSTOMER:
        rows = events[(source == name).to_numpy()]
        cols = {"customer_id": rows["customer_id"]}
        for col, slot in PACKING[name].items():
            cols[col] = rows[slot]
        parts[name] = conform(pd.DataFrame(cols), name)
    return LedgerFrames(**parts, offers=empty("offers"))


def customer_index(frames: LedgerFrames) -> pd.Index:
    """Every customer id the per-customer frames mention (sorted), from their categories, not their rows."""
    found = [
        np.asarray(frame["customer_id"].cat.categories, dtype=object)
        if isinstance(frame["customer_id"].dtype, pd.CategoricalDtype)
        else np.asarray(pd.unique(frame["customer_id"]), dtype=object)
        for name, frame in frames.items()
        if name != "offers" and len(frame)
    ]
    if not found:
        return pd.Index([], dtype=STR)
    index: pd.Index = pd.Index(np.concatenate(found), dtype=STR).unique().sort_values()
    return index


def _positions(col: pd.Series, ids: pd.Index) -> np.ndarray:
    if isinstance(col.dtype, pd.CategoricalDtype):
        return np.append(ids.get_indexer(col.cat.categories), -1)[col.cat.codes.to_numpy()]
    return ids.get_indexer(pd.Index(col))


def split_by_customer(frames: LedgerFrames, max_rows: int) -> Iterator[LedgerFrames]:
    """Groups of whole customers (consecutive ids) of about ``max_rows`` rows each, one at a time.

    A customer's rows always stay together and keep their order, so a per-customer function gives the
    same answer on the groups as on the whole; the groups only bound how much is worked on at once. Each
    group is copied out when it is asked for, so only one exists beside the whole at any time.
    """
    if max_rows < 1:
        raise InvalidInput("max_rows must be positive", field="max_rows")
    if frames.rows <= max_rows:
        yield frames
        return
    ids = customer_index(frames)
    per_customer = np.zeros(len(ids), dtype=np.int64)
    row_group: dict[str, np.ndarray] = {}
    positions = {name: _positions(getattr(frames, name)["customer_id"], ids) for name in PER_CUSTOMER}
    for pos in positions.values():
        per_customer += np.bincount(pos, minlength=len(ids))
    group = ((np.cumsum(per_customer) - 1) // max_rows).astype(np.int32)
    for name in PER_CUSTOMER:
        row_group[name] = group[positions.pop(name)]
    for g in range(int(group.max()) + 1 if len(group) else 1):
        yield LedgerFrames(
            **{
                name: frame
                if name == "offers"
                else frame.iloc[np.flatnonzero(row_group[name] == g)].reset_index(drop=True)
                for name, frame in frames.items()
            }
        )
