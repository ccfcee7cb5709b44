"""Model input matrices from customer feature vectors: the ONE place batch scoring, training and the service
build them, so a model never sees columns in another order or computed another way than it was trained on.

A customer's feature vector is a row of the feature snapshot / online table, in ``pipelines.catalogue``'s
``FEATURE_NAMES`` order (``feature_names`` below). Two models read it:

- the churn model: the customer's features plus three BG/NBD columns (``BGNBD_COLUMNS``) computed from the
  vector itself (see ``bgnbd_history``) with the BG/NBD parameters the model was trained with. Deriving them
  from the vector, rather than from the raw transactions, is what lets the service score a customer from
  the online table alone; the parameters were fitted only on facts before each training cutoff.
- the offer model: rows are (customer, offer) pairs: the customer's features, the offer's attributes
  (``offer_*``, from ``models.offers.offer_attributes`` plus the numbers and labels of the catalogue's
  ``attributes`` as ``offer_attr_*``) and pair features (``PAIR_COLUMNS``) that put the two together: the
  customer's share of spend in the offer's categories, the chance one of their transactions clears the
  offer's threshold, their history with offers of this kind... A new offer is scored from its attributes.

Both classes are built once (from the model's input names, read from ``scorer.features``) and map column
indices then; ``matrix`` is numpy only. API, kept stable for ``serving`` and ``models.batch_score``::

    churn = ChurnInputs.for_scorer(churn_scorer, FEATURE_NAMES)
    churn.matrix(customer_matrix)                  # (n, len(churn.columns)) float64
    offers = OfferInputs.for_scorer(offer_scorer, catalogue, FEATURE_NAMES)
    offers.matrix(customer_matrix, offer_ids)  # (n * m, columns); row i*m + j: customer i, offer j
    offers.pairs(customer_matrix, rows, offer_ids)  # a row per (customer_matrix[rows[k]], offer_ids[k])
    offers.pairs_at(customer_matrix, rows, positions)  # the same with positions in offers.offer_ids

``catalogue`` is a DataFrame (the simulator's ``offers.parquet``, ``offer_id`` or ``id``) or records
(``loyalty_core.schema.Offer`` rows or dicts) with the fields of ``loyalty_core.offers.upsert_offer``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from loyalty_core import OFFER_KINDS, InvalidInput
from models import offers as offer_cols
from models.bgnbd import PARAM_NAMES, customer_outlook
from pipelines import CATEGORIES, CHANNELS, FEATURE_NAMES

BGNBD_UNIT_DAYS = 7.0  # weeks, as in the paper; only the parameters' scale depends on it
BGNBD_COLUMNS: tuple[str, ...] = ("bgnbd_p_alive", "bgnbd_expected_txns", "bgnbd_p_no_txn")
ATTR_PREFIX = "offer_attr_"
PAIR_COLUMNS: tuple[str, ...] = (
    "pair_category_share",  # share of the customer's spend in the offer's categories (1 when any)
    "pair_type_share",  # share of their transactions of the offer's transaction types (1 when any)
    "pair_channel_share",  # share of their transactions through the offer's channels (1 when any)
    "pair_preferred_channel",  # 1 when their preferred channel is one of the offer's (or it has none)
    "pair_p_over_threshold",  # P(one transaction >= threshold), lognormal from their mean and spread
    "pair_expected_matches",  # expected transactions that would complete it within its validity
    "pair_p_any_match",  # 1 - exp(-expected matches): P(at least one), Poisson
    "pair_expected_spend_ratio",  # spend expected within the validity / threshold
    "pair_threshold_to_mean",  # threshold / mean transaction amount
    "pair_kind_sent",  # offers of this kind sent to them before
    "pair_kind_viewed",
    "pair_kind_completed",
    "pair_kind_view_rate",
    "pair_kind_completion_rate",
)


def _index(names: Sequence[str]) -> dict[str, int]:
    return {n: i for i, n in enumerate(names)}


def _col(matrix: np.ndarray, where: Mapping[str, int], name: str) -> np.ndarray:
    """A customer column by name; NaN when the vector has no such feature (another catalogue)."""
    j = where.get(name)
    return matrix[:, j] if j is not None else np.full(len(matrix), np.nan)


def _as_2d(customer_matrix: np.ndarray, width: int) -> np.ndarray:
    m = np.asarray(customer_matrix, dtype=np.float64)
    if m.ndim == 1:
        m = m.reshape(1, -1)
    if m.ndim != 2 or m.shape[1] != width:
        raise InvalidInput(
            f"customer feature vectors must have {width} values (the feature catalogue), got shape {m.shape}",
            field="features",
        )
    return m


# --- BG/NBD from the feature vector -----------------------------------------------------------------------
def bgnbd_history(customer_matrix: np.ndarray, feature_names: Sequence[str] = FEATURE_NAMES) -> np.ndarray:
    """(n, 3) BG/NBD history (frequency, recency, T) in weeks over the last 365 days; NaN rows = no history.

    Read from the vector, so only the 365-day window is known: the first transaction in it is
    ``days_since_last_txn + mean_gap_days_365d * (txn_count_365d - 1)`` days back, which makes
    ``T = that``, ``recency = T - days_since_last_txn`` and ``frequency = txn_count_365d - 1``. Transactions
    count as purchase occasions (the vector has no distinct-day count over the year). A customer without a
    transaction in the year has no row: BG/NBD says nothing about them, LightGBM sees NaN.
    """
    where = _index(feature_names)
    m = _as_2d(customer_matrix, len(feature_names))
    count = _col(m, where, "txn_count_365d")
    last = _col(m, where, "days_since_last_txn")
    gap = _col(m, where, "mean_gap_days_365d")
    span = np.where(count >= 2, np.nan_to_num(gap, nan=0.0) * (count - 1), 0.0)
    ok = (count >= 1) & np.isfinite(last) & (last >= 0)
    age = last + span
    out = np.full((len(m), 3), np.nan)
    # repeats all at one instant (span 0) carry no rate information: the model needs recency > 0 for them
    out[ok, 0] = np.where(span[ok] > 0, count[ok] - 1, 0)
    out[ok, 1] = np.minimum(span[ok], age[ok]) / BGNBD_UNIT_DAYS
    out[ok, 2] = age[ok] / BGNBD_UNIT_DAYS
    # T = 0 (a first transaction exactly at the cutoff) has no exposure; the model needs T > 0
    out[ok & (age <= 0)] = np.nan
    return out


@dataclass(frozen=True, slots=True)
class BgnbdParams:
    """The four fitted numbers and the horizon the churn columns look over (kept in the scorer's meta)."""

    r: float
    alpha: float
    a: float
    b: float
    horizon_days: int

    def as_dict(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b, "horizon_days": self.horizon_days}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> BgnbdParams:
        try:
            r, alpha, a, b = (float(doc[p]) for p in PARAM_NAMES)
            return cls(r=r, alpha=alpha, a=a, b=b, horizon_days=int(doc["horizon_days"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"BG/NBD parameters are incomplete: {doc!r}", field="bgnbd") from exc

    @property
    def params(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}


def bgnbd_columns(history: np.ndarray, params: BgnbdParams) -> np.ndarray:
    """(n, 3): P(alive), expected transactions over the horizon, P(none over it); NaN without history."""
    out = np.full((len(history), 3), np.nan)
    ok = ~np.isnan(history).any(axis=1)
    if not ok.any():
        return out
    t = params.horizon_days / BGNBD_UNIT_DAYS
    x, tx, age = history[ok, 0], history[ok, 1], history[ok, 2]
    alive, expected, quiet = customer_outlook(params.params, t, x, tx, age)
    out[ok, 0] = alive
    out[ok, 1] = expected
    out[ok, 2] = quiet
    return out


class ChurnInputs:
    """The churn model's input matrix from customer feature vectors (see the module docstring).

    ``columns`` are the model's inputs in order (``scorer.features``); each is a customer feature or one of
    ``BGNBD_COLUMNS`` (those need ``bgnbd``). Default: every customer feature, then the BG/NBD columns when
    ``bgnbd`` is given.
    """

    def __init__(
        self,
        feature_names: Sequence[str] = FEATURE_NAMES,
        *,
        columns: Sequence[str] | None = None,
        bgnbd: BgnbdParams | None = None,
    ) -> None:
        self.feature_names: tuple[str, ...] = tuple(feature_names)
        self.bgnbd = bgnbd
        default = (*self.feature_names, *(BGNBD_COLUMNS if bgnbd is not None else ()))
        self.columns: tuple[str, ...] = tuple(columns) if columns is not None else default
        where = _index(self.feature_names)
        unknown = [c for c in self.columns if c not in where and c not in BGNBD_COLUMNS]
        if unknown:
            raise InvalidInput(
                f"the churn model needs feature(s) the customer vectors lack: {', '.join(unknown[:5])}",
                field="features",
            )
        if bgnbd is None and any(c in BGNBD_COLUMNS for c in self.columns):
            raise InvalidInput("the churn model reads BG/NBD columns but no BG/NBD parameters were given")
        self._source = np.array([where.get(c, -1) for c in self.columns], dtype=np.int64)
        self._direct = np.flatnonzero(self._source >= 0)
        self._derived = [
            (k, BGNBD_COLUMNS.index(c)) for k, c in enumerate(self.columns) if c in BGNBD_COLUMNS
        ]

    @classmethod
    def for_scorer(cls, scorer: Any, feature_names: Sequence[str] = FEATURE_NAMES) -> ChurnInputs:
        """From a ``models.scorer.Scorer`` (its ``features``; BG/NBD parameters from ``meta["bgnbd"]``)."""
        doc = scorer.meta.get("bgnbd")
        return cls(
            feature_names,
            columns=scorer.features,
            bgnbd=BgnbdParams.from_dict(doc) if doc else None,
        )

    def matrix(self, customer_matrix: np.ndarray) -> np.ndarray:
        """(n, len(columns)) float64, C-ordered: what ``Scorer.predict_proba`` takes."""
        m = _as_2d(customer_matrix, len(self.feature_names))
        out = np.empty((len(m), len(self.columns)), dtype=np.float64)
        out[:, self._direct] = m[:, self._source[self._direct]]
        if self._derived:
            assert self.bgnbd is not None
            extra = bgnbd_columns(bgnbd_history(m, self.feature_names), self.bgnbd)
            for k, j in self._derived:
                out[:, k] = extra[:, j]
        return out

    def frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """The same columns as a DataFrame from a feature frame (training): one code path for both."""
        missing = [f for f in self.feature_names if f not in features.columns]
        if missing:
            raise InvalidInput(f"features lack column(s) {', '.join(missing[:5])}", field="features")
        m = np.ascontiguousarray(
            features[list(self.feature_names)].to_numpy(dtype=np.float64, na_value=np.nan)
        )
        return pd.DataFrame(self.matrix(m), columns=list(self.columns), index=features.index)


# --- offers -------------------------------------------------------------------------------------------------
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
    attrs = offer_cols.offer_attributes(frame.drop(columns=["attributes"], errors="ignore"))
    extra = _attribute_columns(frame["attributes"].tolist() if "attributes" in frame.columns else [])
    table = pd.concat([attrs, pd.DataFrame(extra, index=attrs.index)], axis=1) if extra else attrs
    table.insert(1, "kind", frame["kind"].astype(str).to_numpy())
    return table


def _offer_masks(table: pd.DataFrame, prefix: str, words: Sequence[str]) -> np.ndarray:
    """(m, len(words)) 0/1: which of ``words`` the offer accepts (every word when unrestricted)."""
    out = np.ones((len(table), len(words)))
    for k, w in enumerate(words):
        col = f"{prefix}{w}"
        if col in table.columns:
            out[:, k] = table[col].to_numpy(dtype=np.float64)
    return out


class OfferInputs:
    """The offer model's input matrix for (customer, offer) pairs (see the module docstring).

    ``columns`` are the model's inputs in order (``scorer.features``): customer features, offer columns of
    ``offer_table`` and ``PAIR_COLUMNS``. Default: every customer feature, every offer column of this
    catalogue, every pair column. An offer column the catalogue lacks (an attribute only older offers had)
    is NaN for every offer; a customer feature the vectors lack is an error.
    """

    def __init__(
        self,
        feature_names: Sequence[str] = FEATURE_NAMES,
        catalogue: pd.DataFrame | Iterable[Any] = (),
        *,
        columns: Sequence[str] | None = None,
    ) -> None:
        self.feature_names: tuple[str, ...] = tuple(feature_names)
        self.table = offer_table(catalogue)
        self.offer_ids: tuple[str, ...] = tuple(self.table["offer_id"].tolist())
        self.kinds: tuple[str, ...] = tuple(self.table["kind"].tolist())
        self.offer_index = _index(self.offer_ids)
        offer_names = [c for c in self.table.columns if c not in ("offer_id", "kind")]
        default = (*self.feature_names, *offer_names, *PAIR_COLUMNS)
        self.columns: tuple[str, ...] = tuple(columns) if columns is not None else default
        where = _index(self.feature_names)
        offer_where = _index(offer_names)
        unknown = [
            c
            for c in self.columns
            if c not in where and c not in PAIR_COLUMNS and not c.startswith(offer_cols.PREFIX)
        ]
        if unknown:
            raise InvalidInput(
                f"the offer model needs feature(s) the customer vectors lack: {', '.join(unknown[:5])}",
                field="features",
            )
        self._cust_pos = np.array([k for k, c in enumerate(self.columns) if c in where], dtype=np.int64)
        self._cust_src = np.array([where[c] for c in self.columns if c in where], dtype=np.int64)
        offer_values = self.table[offer_names].to_numpy(dtype=np.float64, na_value=np.nan)
        self._offer_pos = np.array(
            [k for k, c in enumerate(self.columns) if c not in where and c not in PAIR_COLUMNS],
            dtype=np.int64,
        )
        self._offers = np.column_stack(
            [
                offer_values[:, offer_where[self.columns[k]]]
                if self.columns[k] in offer_where
                else np.full(len(self.table), np.nan)
                for k in self._offer_pos
            ]
            or [np.empty((len(self.table), 0))]
        ).reshape(len(self.table), len(self._offer_pos))
        self._pair_pos = np.array(
            [k for k, c in enumerate(self.columns) if c in PAIR_COLUMNS], dtype=np.int64
        )
        self._pair_src = np.array(
            [PAIR_COLUMNS.index(self.columns[k]) for k in self._pair_pos], dtype=np.int64
        )
        self._where = where
        self._cust_runs = _runs(self._cust_pos, self._cust_src)
        self._cust_runs_packed = _runs(self._cust_pos, np.arange(len(self._cust_src)))
        self._offer_runs = _runs(self._offer_pos, np.arange(len(self._offer_pos)))
        self._prepare_pairs()

    @classmethod
    def for_scorer(
        cls,
        scorer: Any,
        catalogue: pd.DataFrame | Iterable[Any],
        feature_names: Sequence[str] = FEATURE_NAMES,
    ) -> OfferInputs:
        """From a ``models.scorer.Scorer`` (its ``features`` are the columns) and the current catalogue."""
        return cls(feature_names, catalogue, columns=scorer.features)

    def with_catalogue(self, catalogue: pd.DataFrame | Iterable[Any]) -> OfferInputs:
        """The same columns over another catalogue (offers added or changed: no retraining needed)."""
        return OfferInputs(self.feature_names, catalogue, columns=self.columns)

    @property
    def completable(self) -> np.ndarray:
        """Offers that can complete (informational ones never do, so they get no propensity)."""
        return np.array([k != "informational" for k in self.kinds], dtype=bool)

    def offer_positions(self, offer_ids: Sequence[str] | None) -> np.ndarray:
        if offer_ids is None:
            return np.arange(len(self.offer_ids))
        pos = np.array([self.offer_index.get(str(o), -1) for o in offer_ids], dtype=np.int64)
        if (pos < 0).any():
            bad = [str(o) for o, p in zip(offer_ids, pos, strict=True) if p < 0]
            raise InvalidInput(
                f"unknown offer(s) {', '.join(bad[:5])}: not in the catalogue", field="offer_id"
            )
        return pos

    # --- pair features ---------------------------------------------------------------------------------
    def _prepare_pairs(self) -> None:
        t = self.table
        cats = [c for c in CATEGORIES if c != "other"]
        self._cat_mask = _offer_masks(t, f"{offer_cols.PREFIX}category_", cats)
        self._cat_any = t[f"{offer_cols.PREFIX}any_category"].to_numpy(dtype=np.float64) > 0
        self._cat_names = [f"category_{c}_share_365d" for c in cats]
        types = offer_cols.TXN_TYPES
        self._type_mask = _offer_masks(t, f"{offer_cols.PREFIX}txn_type_", types)
        self._type_names = [f"{ty}_share_365d" for ty in types]
        chans = [c for c in CHANNELS if c != "other"]
        self._chan_mask = _offer_masks(t, f"{offer_cols.PREFIX}channel_", chans)
        self._chan_any = t[f"{offer_cols.PREFIX}channel_any"].to_numpy(dtype=np.float64) > 0
        self._chan_names = [f"channel_{c}_share_365d" for c in chans]
        threshold = t[f"{offer_cols.PREFIX}threshold"].to_numpy(dtype=np.float64)
        self._threshold = np.where(threshold > 0, threshold, np.nan)
        self._duration = t[f"{offer_cols.PREFIX}duration_days"].to_numpy(dtype=np.float64)
        self._kind = np.array([OFFER_KINDS.index(k) if k in OFFER_KINDS else -1 for k in self.kinds])

    def _pairs(
        self, m: np.ndarray, rows: np.ndarray | None, offers: np.ndarray, wanted: Iterable[int]
    ) -> list[np.ndarray]:
        """The pair columns ``PAIR_COLUMNS[k]`` for k in ``wanted``, each (n, len(offers)) for customers x
        offers, or (len(rows), 1) with one offer per row when ``rows`` is given. Only what is asked for is
        computed (the model may read a few of them)."""
        w = self._where
        shape = (m.shape[0], len(offers)) if rows is None else (len(rows), 1)
        cache: dict[str, np.ndarray] = {}

        def cust(name: str) -> np.ndarray:
            v = _col(m, w, name)
            return v[:, None] if rows is None else v[rows][:, None]

        def off(values: np.ndarray) -> np.ndarray:
            picked: np.ndarray = values[offers]
            return picked[None, :] if rows is None else picked[:, None]

        def dot(names: Sequence[str], mask: np.ndarray) -> np.ndarray:
            idx = [w[n] for n in names if n in w]
            mask = mask[:, [k for k, n in enumerate(names) if n in w]]
            block = m[:, idx] if rows is None else m[rows][:, idx]
            nan = np.isnan(block)
            known = ~nan.all(axis=1)
            filled = np.where(nan, 0.0, block)
            if rows is None:
                res = filled @ mask[offers].T
            else:
                res = np.einsum("ij,ij->i", filled, mask[offers])[:, None]
            return np.where(known[:, None], res, np.nan)

        def get(name: str) -> np.ndarray:
            if name not in cache:
                cache[name] = np.broadcast_to(compute(name), shape)
            return cache[name]

        def compute(name: str) -> Any:
            with np.errstate(divide="ignore", invalid="ignore"):
                if name == "pair_category_share":
                    shares = dot(self._cat_names, self._cat_mask)
                    no_txn = np.isnan(cust("txn_count_365d")) | (cust("txn_count_365d") == 0)
                    return np.where(off(self._cat_any), np.where(no_txn, np.nan, 1.0), shares)
                if name == "pair_type_share":
                    return dot(self._type_names, self._type_mask)
                if name == "pair_channel_share":
                    return np.where(off(self._chan_any), 1.0, dot(self._chan_names, self._chan_mask))
                if name == "pair_preferred_channel":
                    pref = cust("preferred_channel")
                    ok = np.zeros(np.broadcast_shapes(pref.shape, off(self._chan_any).shape))
                    for k in range(self._chan_mask.shape[1]):
                        ok = np.where(pref == k, off(self._chan_mask[:, k]), ok)
                    return np.where(off(self._chan_any), 1.0, np.where(pref < 0, np.nan, ok))
                if name == "pair_p_over_threshold":
                    mean, std = cust("txn_amount_mean_365d"), cust("txn_amount_std_365d")
                    sigma2 = np.log1p(np.square(std / mean))
                    mu = np.log(mean) - sigma2 / 2
                    threshold = off(self._threshold)
                    p = np.ones(np.broadcast_shapes(mean.shape, threshold.shape))
                    with_threshold = ~np.isnan(self._threshold[offers])
                    if rows is None and with_threshold.any():  # only the offers that have one
                        cols = np.flatnonzero(with_threshold)
                        z = (np.log(threshold[:, cols]) - mu) / np.sqrt(np.maximum(sigma2, 1e-12))
                        p[:, cols] = special.ndtr(-z)
                    elif rows is not None and with_threshold.any():
                        z = (np.log(threshold) - mu) / np.sqrt(np.maximum(sigma2, 1e-12))
                        p = np.where(np.isnan(threshold), 1.0, special.ndtr(-z))
                    p[np.broadcast_to(np.isnan(mean), p.shape)] = np.nan
                    return p
                if name == "pair_expected_matches":
                    share = np.where(off(self._cat_any), get("pair_type_share"), get("pair_category_share"))
                    rate = cust("txn_count_90d") / 90.0
                    return rate * off(self._duration) * share * get("pair_p_over_threshold")
                if name == "pair_p_any_match":
                    return -np.expm1(-get("pair_expected_matches"))
                if name == "pair_expected_spend_ratio":
                    return cust("txn_amount_90d") / 90.0 * off(self._duration) / off(self._threshold)
                if name == "pair_threshold_to_mean":
                    return off(self._threshold) / cust("txn_amount_mean_365d")
                if name in ("pair_kind_sent", "pair_kind_viewed", "pair_kind_completed"):
                    event = name.removeprefix("pair_kind_")
                    kind = off(self._kind)
                    out = np.full(shape, np.nan)
                    for k, kind_name in enumerate(OFFER_KINDS):
                        out = np.where(kind == k, cust(f"offers_{event}_{kind_name}"), out)
                    return out
                if name == "pair_kind_view_rate":
                    sent = get("pair_kind_sent")
                    return np.where(sent > 0, get("pair_kind_viewed") / sent, np.nan)
                if name == "pair_kind_completion_rate":
                    sent = get("pair_kind_sent")
                    return np.where(sent > 0, get("pair_kind_completed") / sent, np.nan)
            raise AssertionError(name)

        return [get(PAIR_COLUMNS[int(k)]) for k in wanted]

    # --- matrices ---------------------------------------------------------------------------------------
    def matrix(self, customer_matrix: np.ndarray, offer_ids: Sequence[str] | None = None) -> np.ndarray:
        """Every customer x every offer of ``offer_ids`` (default: the whole catalogue), customer-major:
        row ``i * len(offer_ids) + j`` is customer ``i`` with offer ``j``. float64, C-ordered."""
        m = _as_2d(customer_matrix, len(self.feature_names))
        offers = self.offer_positions(offer_ids)
        n, k = len(m), len(offers)
        out = np.empty((n, k, len(self.columns)), dtype=np.float64)
        for d, s, length in self._cust_runs:
            out[:, :, d : d + length] = m[:, None, s : s + length]
        chosen = self._offers[offers]
        for d, s, length in self._offer_runs:
            out[:, :, d : d + length] = chosen[None, :, s : s + length]
        for pos, values in zip(self._pair_pos, self._pairs(m, None, offers, self._pair_src), strict=True):
            out[:, :, pos] = values
        return out.reshape(n * k, len(self.columns))

    def pairs(
        self, customer_matrix: np.ndarray, rows: Sequence[int] | np.ndarray, offer_ids: Sequence[str]
    ) -> np.ndarray:
        """One input row per pair ``(customer_matrix[rows[k]], offer_ids[k])``: training frames, or a
        pruned candidate list. float64, C-ordered."""
        return self.pairs_at(customer_matrix, rows, self.offer_positions(offer_ids))

    def pairs_at(
        self, customer_matrix: np.ndarray, rows: Sequence[int] | np.ndarray, positions: np.ndarray
    ) -> np.ndarray:
        """As ``pairs`` with offers given by position in ``offer_ids`` (no id lookups: the batch path)."""
        m = _as_2d(customer_matrix, len(self.feature_names))
        r = np.asarray(rows, dtype=np.int64)
        offers = np.asarray(positions, dtype=np.int64)
        if len(r) != len(offers):
            raise InvalidInput("rows and offers must have the same length", field="offer_id")
        out = np.empty((len(r), len(self.columns)), dtype=np.float64)
        # gather only the customer columns the model reads (a row per pair: the wide vector would cost
        # ~10x the memory traffic), then place them
        picked = m[:, self._cust_src][r]
        for d, s, length in self._cust_runs_packed:
            out[:, d : d + length] = picked[:, s : s + length]
        chosen = self._offers[offers]
        for d, s, length in self._offer_runs:
            out[:, d : d + length] = chosen[:, s : s + length]
        if len(self._pair_pos):
            # Pair features per customer x offer of the catalogue, then picked per pair: a few
            # (customers, offers) array operations instead of per-pair gathers of customer columns.
            uniq, inverse = np.unique(r, return_inverse=True)
            every = np.arange(len(self.offer_ids))
            for pos, values in zip(
                self._pair_pos, self._pairs(m[uniq], None, every, self._pair_src), strict=True
            ):
                out[:, pos] = values[inverse, offers]
        return out


def _runs(dest: np.ndarray, src: np.ndarray) -> list[tuple[int, int, int]]:
    """Stretches ``(dest_start, src_start, length)`` where both positions step by one: copied as slices,
    which is an order of magnitude faster than fancy indexing on wide matrices."""
    runs: list[tuple[int, int, int]] = []
    for d, s in zip(dest.tolist(), src.tolist(), strict=True):
        if runs and runs[-1][0] + runs[-1][2] == d and runs[-1][1] + runs[-1][2] == s:
            runs[-1] = (runs[-1][0], runs[-1][1], runs[-1][2] + 1)
        else:
            runs.append((d, s, 1))
    return runs
