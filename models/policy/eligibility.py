"""Which offers a customer may get now: tier, channel, running activations and frequency caps.

Two shapes of the same rules: ``eligibility_one`` for one customer per request (plain Python), and
``contact_counts`` + ``active_matrix`` + ``eligibility_matrix`` for many customers at once (a campaign, a
batch score). Both return the same ``Exclusion`` codes (a test checks it on random inputs), so a campaign
never targets a customer the online path would refuse, and vice versa.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import pandas as pd

from loyalty_core import InvalidInput
from models.policy.catalog import OfferCatalog


class Exclusion(IntEnum):
    """Why an offer is not eligible for a customer (0 = eligible). The first rule that fails is reported."""

    ELIGIBLE = 0
    INACTIVE = 1  # withdrawn from the catalogue
    CHANNEL = 2  # the offer is not available in the request's channel
    TIER = 3  # the customer's tier is below the offer's min_tier
    ALREADY_ACTIVE = 4  # the customer holds a running activation of it
    OFFER_CAP = 5  # this offer was already sent to the customer too often within the window
    CHANNEL_CAP = 6  # the customer got too many offers in this channel within the window
    CUSTOMER_CAP = 7  # the customer got too many offers within the window


EXCLUSION_NAMES: tuple[str, ...] = tuple(e.name.lower() for e in Exclusion)


@dataclass(frozen=True, slots=True)
class FrequencyCaps:
    """How often a customer may be contacted: within ``window`` before now, at most ``per_customer`` offers
    in all, ``per_channel`` in the request's channel, and ``per_offer`` times the same offer. None = no cap.

    The caps also bound the slate: a request may show no more offers than the caps have room for.
    """

    window: dt.timedelta = dt.timedelta(days=30)
    per_customer: int | None = 4
    per_channel: int | None = 2
    per_offer: int | None = 1

    def __post_init__(self) -> None:
        if self.window <= dt.timedelta(0):
            raise InvalidInput("the frequency-cap window must be positive", field="window")
        for name in ("per_customer", "per_channel", "per_offer"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise InvalidInput(f"frequency cap {name} must be >= 0", field=name)


DEFAULT_CAPS = FrequencyCaps()
NO_CAPS = FrequencyCaps(per_customer=None, per_channel=None, per_offer=None)


@dataclass(frozen=True, slots=True)
class Contact:
    """An offer sent to the customer earlier (a ``sent`` offer event, or one offer of a served decision)."""

    sent_at: dt.datetime
    offer_id: str
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class CustomerState:
    """What eligibility needs to know about one customer at request time."""

    tier: str | None = None
    active_offers: frozenset[str] = frozenset()
    contacts: tuple[Contact, ...] = ()


def _check_utc(ts: dt.datetime, name: str) -> None:
    if ts.tzinfo is None:
        raise InvalidInput(f"{name} must be timezone-aware (UTC)", field=name)


def eligibility_one(
    catalog: OfferCatalog,
    state: CustomerState,
    *,
    now: dt.datetime,
    channel: str | None = None,
    caps: FrequencyCaps = FrequencyCaps(),
) -> tuple[list[int], int]:
    """Exclusion code per offer (``Exclusion``, 0 = eligible) and how many offers the caps still allow.

    Contacts count when ``now - window < sent_at <= now``. A customer at a customer-wide or channel cap gets
    no offer at all (those offers that passed the other rules get the cap's code).
    """
    _check_utc(now, "now")
    start = now - caps.window
    total = 0
    in_channel = 0
    per_offer: dict[str, int] = {}
    for c in state.contacts:
        if start < c.sent_at <= now:
            total += 1
            if channel is not None and c.channel == channel:
                in_channel += 1
            per_offer[c.offer_id] = per_offer.get(c.offer_id, 0) + 1
    room = _room(total, in_channel, caps, channel)
    rank = catalog.tier_rank(state.tier)
    ok_channel = catalog.channel_ok_list(channel)
    active, min_tier = catalog.active_list, catalog.min_tier_list
    codes: list[int] = []
    offer_cap = caps.per_offer
    for j, oid in enumerate(catalog.offer_ids):
        if not active[j]:
            codes.append(Exclusion.INACTIVE)
        elif not ok_channel[j]:
            codes.append(Exclusion.CHANNEL)
        elif rank < min_tier[j]:
            codes.append(Exclusion.TIER)
        elif oid in state.active_offers:
            codes.append(Exclusion.ALREADY_ACTIVE)
        elif offer_cap is not None and per_offer.get(oid, 0) >= offer_cap:
            codes.append(Exclusion.OFFER_CAP)
        elif room[1] is not None:
            codes.append(room[1])
        else:
            codes.append(Exclusion.ELIGIBLE)
    return codes, room[0]


def _room(
    total: int, in_channel: int, caps: FrequencyCaps, channel: str | None
) -> tuple[int, Exclusion | None]:
    """Slots left under the customer-wide and channel caps, and the cap's code when there is none."""
    left_customer = math.inf if caps.per_customer is None else max(caps.per_customer - total, 0)
    left_channel = (
        math.inf if caps.per_channel is None or channel is None else max(caps.per_channel - in_channel, 0)
    )
    if left_customer == 0:
        return 0, Exclusion.CUSTOMER_CAP
    if left_channel == 0:
        return 0, Exclusion.CHANNEL_CAP
    left = min(left_customer, left_channel)
    return (int(left) if left != math.inf else 1 << 30), None


@dataclass(frozen=True, slots=True)
class ContactCounts:
    """Contacts within the cap window per customer (aligned with the caller's customer ids)."""

    total: np.ndarray  # (n,)
    in_channel: np.ndarray  # (n,) in the request's channel (zeros when there is none)
    per_offer: np.ndarray  # (n, offers)


def contact_counts(
    contacts: pd.DataFrame,
    customer_ids: Sequence[str] | pd.Index,
    catalog: OfferCatalog,
    *,
    now: dt.datetime,
    window: dt.timedelta,
    channel: str | None = None,
) -> ContactCounts:
    """Count a contacts frame (``customer_id, offer_id, sent_at, channel``) as ``eligibility_one`` does.

    Contacts of customers or offers not asked about are ignored (an offer removed from the catalogue still
    counts towards the customer-wide and channel caps).
    """
    _check_utc(now, "now")
    missing = [c for c in ("customer_id", "offer_id", "sent_at", "channel") if c not in contacts.columns]
    if missing:
        raise InvalidInput(f"the contacts frame lacks column(s) {', '.join(missing)}", column=missing[0])
    index = pd.Index(customer_ids)
    n, m = len(index), len(catalog)
    total = np.zeros(n, dtype=np.int64)
    in_channel = np.zeros(n, dtype=np.int64)
    per_offer = np.zeros((n, m), dtype=np.int64)
    if contacts.empty or n == 0:
        return ContactCounts(total, in_channel, per_offer)
    sent = pd.to_datetime(contacts["sent_at"], utc=True)
    ts = pd.Timestamp(now)
    keep = ((sent > ts - pd.Timedelta(window)) & (sent <= ts)).to_numpy()
    rows = index.get_indexer(pd.Index(contacts["customer_id"].astype(str)))
    keep = keep & (rows >= 0)
    rows = rows[keep]
    total += np.bincount(rows, minlength=n)
    if channel is not None:
        same = (contacts["channel"].astype("object").to_numpy()[keep] == channel).astype(bool)
        in_channel += np.bincount(rows[same], minlength=n)
    cols = pd.Index(catalog.offer_ids).get_indexer(
        pd.Index(contacts["offer_id"].astype(str).to_numpy()[keep])
    )
    known = cols >= 0
    np.add.at(per_offer, (rows[known], cols[known]), 1)
    return ContactCounts(total, in_channel, per_offer)


def active_matrix(
    activations: pd.DataFrame,
    customer_ids: Sequence[str] | pd.Index,
    catalog: OfferCatalog,
    *,
    now: dt.datetime,
) -> np.ndarray:
    """(customers, offers) True where an activation (``customer_id, offer_id, activated_at, expires_at``) runs
    at ``now`` (``activated_at <= now < expires_at``, the ledger's window)."""
    _check_utc(now, "now")
    index = pd.Index(customer_ids)
    out = np.zeros((len(index), len(catalog)), dtype=bool)
    if activations.empty:
        return out
    ts = pd.Timestamp(now)
    running = (
        (pd.to_datetime(activations["activated_at"], utc=True) <= ts)
        & (pd.to_datetime(activations["expires_at"], utc=True) > ts)
    ).to_numpy()
    rows = index.get_indexer(pd.Index(activations["customer_id"].astype(str)))
    cols = pd.Index(catalog.offer_ids).get_indexer(pd.Index(activations["offer_id"].astype(str)))
    keep = running & (rows >= 0) & (cols >= 0)
    out[rows[keep], cols[keep]] = True
    return out


def eligibility_matrix(
    catalog: OfferCatalog,
    *,
    tier_rank: np.ndarray,
    active: np.ndarray | None = None,
    counts: ContactCounts | None = None,
    channel: str | None = None,
    caps: FrequencyCaps = FrequencyCaps(),
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised ``eligibility_one``: codes ``(customers, offers)`` int8 and slots left ``(customers,)``."""
    tier_rank = np.asarray(tier_rank, dtype=np.int64)
    n, m = len(tier_rank), len(catalog)
    if active is None:
        active = np.zeros((n, m), dtype=bool)
    if counts is None:
        zeros = np.zeros(n, dtype=np.int64)
        counts = ContactCounts(zeros, zeros, np.zeros((n, m), dtype=np.int64))
    if np.shape(active) != (n, m) or np.shape(counts.per_offer) != (n, m):
        raise InvalidInput("active and contact counts must be (customers, offers) matrices", field="active")
    big = 1 << 30
    left_customer = (
        np.full(n, big) if caps.per_customer is None else np.maximum(caps.per_customer - counts.total, 0)
    )
    left_channel = (
        np.full(n, big)
        if caps.per_channel is None or channel is None
        else np.maximum(caps.per_channel - counts.in_channel, 0)
    )
    slots = np.minimum(left_customer, left_channel)
    codes = np.zeros((n, m), dtype=np.int8)
    # Assign from the last rule to the first, so the first failing rule wins (as in eligibility_one).
    codes[(left_customer > 0) & (left_channel == 0)] = Exclusion.CHANNEL_CAP
    codes[left_customer == 0] = Exclusion.CUSTOMER_CAP
    if caps.per_offer is not None:
        codes[counts.per_offer >= caps.per_offer] = Exclusion.OFFER_CAP
    codes[active] = Exclusion.ALREADY_ACTIVE
    codes[tier_rank[:, None] < catalog.min_tier[None, :]] = Exclusion.TIER
    codes[:, ~catalog.channel_ok(channel)] = Exclusion.CHANNEL
    codes[:, ~catalog.active] = Exclusion.INACTIVE
    return codes, slots
