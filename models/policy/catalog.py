"""The offers catalogue as the policy sees it: aligned arrays, one position per offer.

The catalogue is read once per model load and then consulted on every ranking, so it keeps both numpy arrays
(the batch paths) and plain Python lists (the single-customer path, where a numpy call costs more than the
whole loop over ~10 offers).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from loyalty_core import InvalidInput

DEFAULT_TIERS: tuple[str, ...] = ("base", "silver", "gold")  # as in loyalty_core/default_rules.toml


def _field(record: Any, name: str, default: Any = None) -> Any:
    if isinstance(record, Mapping):
        return record.get(name, default)
    return getattr(record, name, default)


def _is_missing(x: Any) -> bool:
    if x is None:
        return True
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):  # list-like: not missing
        return False


@dataclass(frozen=True, slots=True, eq=False)
class OfferCatalog:
    """The offers as aligned arrays: position ``j`` of every array is offer ``offer_ids[j]``.

    Model scores handed to this module are aligned with ``offer_ids`` too (``catalog.align`` helps). Money is
    float64 here (RUB): the policy needs arithmetic on expectations, not exact cents.

    ``min_tier`` is the rank of the offer's minimum tier in ``tiers`` (0 = open to all). A ``min_tier`` that
    is not a tier of the programme restricts nothing, exactly as ``loyalty_core.offers.activate_offer``
    treats it, so the policy never refuses an offer the ledger would activate.
    """

    offer_ids: tuple[str, ...]
    value: np.ndarray
    cost: np.ndarray
    active: np.ndarray
    min_tier: np.ndarray
    channels: tuple[frozenset[str] | None, ...]
    tiers: tuple[str, ...] = DEFAULT_TIERS
    index: dict[str, int] = field(default_factory=dict)
    # Python floats of value and cost for the single-customer path (no numpy scalars in its loop).
    value_list: list[float] = field(default_factory=list, repr=False)
    cost_list: list[float] = field(default_factory=list, repr=False)
    active_list: list[bool] = field(default_factory=list, repr=False)
    min_tier_list: list[int] = field(default_factory=list, repr=False)
    _channel_ok: dict[str | None, np.ndarray] = field(default_factory=dict, repr=False)
    _channel_ok_list: dict[str | None, list[bool]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        n = len(self.offer_ids)
        if len(set(self.offer_ids)) != n:
            raise InvalidInput("the offers catalogue has duplicate offer ids", field="offer_id")
        for name in ("value", "cost", "active", "min_tier"):
            if np.shape(getattr(self, name)) != (n,):
                raise InvalidInput(f"catalogue column {name!r} must have one entry per offer", field=name)
        if len(self.channels) != n:
            raise InvalidInput("catalogue column 'channels' must have one entry per offer", field="channels")
        if not (np.isfinite(self.value).all() and np.isfinite(self.cost).all()):
            raise InvalidInput("offer value and cost must be finite numbers", field="value")
        if (self.cost < 0).any():
            j = int(np.flatnonzero(self.cost < 0)[0])
            raise InvalidInput(f"offer {self.offer_ids[j]!r} has a negative cost", field="cost")
        self.index.update({oid: j for j, oid in enumerate(self.offer_ids)})
        self.value_list[:] = self.value.tolist()
        self.cost_list[:] = self.cost.tolist()
        self.active_list[:] = self.active.tolist()
        self.min_tier_list[:] = self.min_tier.tolist()

    def __len__(self) -> int:
        return len(self.offer_ids)

    @classmethod
    def from_records(cls, records: Iterable[Any], *, tiers: Sequence[str] = DEFAULT_TIERS) -> OfferCatalog:
        """From ``Offer`` rows, dicts, or the simulator's offers rows (``offer_id`` or ``id``).

        ``active`` defaults to true (the simulator's file has no such column); ``channels`` None or empty
        means every channel.
        """
        tiers = tuple(tiers)
        ids: list[str] = []
        value: list[float] = []
        cost: list[float] = []
        active: list[bool] = []
        min_tier: list[int] = []
        channels: list[frozenset[str] | None] = []
        for i, rec in enumerate(records):
            oid = _field(rec, "offer_id")
            if _is_missing(oid):
                oid = _field(rec, "id")
            if _is_missing(oid) or not str(oid):
                raise InvalidInput(f"offer at row {i} has no id", field="offer_id", row=i)
            ids.append(str(oid))
            for name, out in (("value", value), ("cost", cost)):
                raw = _field(rec, name, 0)
                try:
                    out.append(0.0 if _is_missing(raw) else float(raw))
                except (TypeError, ValueError) as exc:
                    raise InvalidInput(
                        f"offer {oid!r}: {name} {raw!r} is not a number", field=name, row=i
                    ) from exc
            flag = _field(rec, "active", True)
            active.append(True if _is_missing(flag) else bool(flag))
            tier = _field(rec, "min_tier")
            min_tier.append(tiers.index(tier) if not _is_missing(tier) and tier in tiers else 0)
            chans = _field(rec, "channels")
            if _is_missing(chans) or len(chans) == 0:
                channels.append(None)
            else:
                channels.append(frozenset(str(c) for c in chans))
        return cls(
            offer_ids=tuple(ids),
            value=np.asarray(value, dtype=np.float64),
            cost=np.asarray(cost, dtype=np.float64),
            active=np.asarray(active, dtype=bool),
            min_tier=np.asarray(min_tier, dtype=np.int64),
            channels=tuple(channels),
            tiers=tiers,
        )

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, tiers: Sequence[str] = DEFAULT_TIERS) -> OfferCatalog:
        return cls.from_records(frame.to_dict("records"), tiers=tiers)

    def tier_rank(self, tier: str | None) -> int:
        """Rank of a customer's tier; None (unknown member) is the base tier."""
        if tier is None:
            return 0
        try:
            return self.tiers.index(tier)
        except ValueError:
            raise InvalidInput(f"tier {tier!r} is not one of {', '.join(self.tiers)}", field="tier") from None

    def tier_ranks(self, tiers: Iterable[Any]) -> np.ndarray:
        return np.fromiter((self.tier_rank(None if _is_missing(t) else t) for t in tiers), dtype=np.int64)

    def channel_ok(self, channel: str | None) -> np.ndarray:
        """Offers available in ``channel`` (None = no channel restriction, e.g. a batch score). Cached."""
        ok = self._channel_ok.get(channel)
        if ok is None:
            ok = np.fromiter(
                (channel is None or c is None or channel in c for c in self.channels),
                dtype=bool,
                count=len(self),
            )
            self._channel_ok[channel] = ok
        return ok

    def channel_ok_list(self, channel: str | None) -> list[bool]:
        ok = self._channel_ok_list.get(channel)
        if ok is None:
            ok = self.channel_ok(channel).tolist()
            self._channel_ok_list[channel] = ok
        return ok

    def align(self, scores: Mapping[str, float], *, missing: float = math.nan) -> np.ndarray:
        """Scores given by offer id as an array in catalogue order (``missing`` where there is none)."""
        out = np.full(len(self), missing, dtype=np.float64)
        for oid, s in scores.items():
            j = self.index.get(oid)
            if j is not None:
                out[j] = s
        return out
