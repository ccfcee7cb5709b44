"""Pair features: what puts a customer and an offer together, computed for customers x offers at once.

The offer model reads, besides the customer's features and the offer's attributes, columns that only exist
for the pair (``PAIR_COLUMNS``): the customer's share of spend in the offer's categories, the chance one of
their transactions clears the offer's threshold, their history with offers of this kind... They are what
lets one propensity model tell which offer suits which customer, new offers included.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from loyalty_core import OFFER_KINDS
from models.inputs.offer_attributes import PREFIX, TXN_TYPES
from models.inputs.vectors import column
from pipelines import CATEGORIES, CHANNELS

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


def _offer_masks(table: pd.DataFrame, prefix: str, words: Sequence[str]) -> np.ndarray:
    """(m, len(words)) 0/1: which of ``words`` the offer accepts (every word when unrestricted)."""
    out = np.ones((len(table), len(words)))
    for k, w in enumerate(words):
        col = f"{prefix}{w}"
        if col in table.columns:
            out[:, k] = table[col].to_numpy(dtype=np.float64)
    return out


class PairFeatures:
    """The catalogue's side of the pair columns, prepared once per catalogue (``offer_table`` rows and
    their kinds), so each call only does the customers x offers arithmetic."""

    def __init__(self, table: pd.DataFrame, kinds: Sequence[str]) -> None:
        t = table
        cats = [c for c in CATEGORIES if c != "other"]
        self._cat_mask = _offer_masks(t, f"{PREFIX}category_", cats)
        self._cat_any = t[f"{PREFIX}any_category"].to_numpy(dtype=np.float64) > 0
        self._cat_names = [f"category_{c}_share_365d" for c in cats]
        types = TXN_TYPES
        self._type_mask = _offer_masks(t, f"{PREFIX}txn_type_", types)
        self._type_names = [f"{ty}_share_365d" for ty in types]
        chans = [c for c in CHANNELS if c != "other"]
        self._chan_mask = _offer_masks(t, f"{PREFIX}channel_", chans)
        self._chan_any = t[f"{PREFIX}channel_any"].to_numpy(dtype=np.float64) > 0
        self._chan_names = [f"channel_{c}_share_365d" for c in chans]
        threshold = t[f"{PREFIX}threshold"].to_numpy(dtype=np.float64)
        self._threshold = np.where(threshold > 0, threshold, np.nan)
        self._duration = t[f"{PREFIX}duration_days"].to_numpy(dtype=np.float64)
        self._kind = np.array([OFFER_KINDS.index(k) if k in OFFER_KINDS else -1 for k in kinds])

    def compute(
        self, m: np.ndarray, where: Mapping[str, int], offers: np.ndarray, wanted: Iterable[int]
    ) -> list[np.ndarray]:
        """The pair columns ``PAIR_COLUMNS[k]`` for k in ``wanted``, each (n, len(offers)) for the customers
        of ``m`` (columns named by ``where``) x the offers at positions ``offers``. Only what is asked for
        is computed (the model may read a few of them)."""
        w = where
        shape = (m.shape[0], len(offers))
        cache: dict[str, np.ndarray] = {}

        def cust(name: str) -> np.ndarray:
            return column(m, w, name)[:, None]

        def off(values: np.ndarray) -> np.ndarray:
            picked: np.ndarray = values[offers]
            return picked[None, :]

        def dot(names: Sequence[str], mask: np.ndarray) -> np.ndarray:
            idx = [w[n] for n in names if n in w]
            mask = mask[:, [k for k, n in enumerate(names) if n in w]]
            block = m[:, idx]
            nan = np.isnan(block)
            known = ~nan.all(axis=1)
            filled = np.where(nan, 0.0, block)
            res = filled @ mask[offers].T
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
                    if with_threshold.any():  # only the offers that have one
                        cols = np.flatnonzero(with_threshold)
                        z = (np.log(threshold[:, cols]) - mu) / np.sqrt(np.maximum(sigma2, 1e-12))
                        p[:, cols] = special.ndtr(-z)
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
