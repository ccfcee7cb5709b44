"""The decision policy: which offers a customer may get, what each is worth, which to show, how sure we were.

Everything here is a pure function of numbers the caller gathered (model scores, the catalogue, the customer's
tier, activations and recent contacts); the service and the batch scorer do the I/O. Two shapes of the same
logic:

- one customer per request (``eligibility_one`` + ``rank_offers``, or ``rank_for_customer``): plain Python
  over the catalogue's ~10 offers (a numpy call costs more than the whole loop at that size), no DataFrame,
  so a ranking costs 15-20 microseconds (``benchmarks/policy.py``);
- many customers for a campaign or a batch score (``contact_counts``, ``eligibility_matrix``,
  ``expected_value`` on ``(customers, offers)`` matrices, ``allocate_campaign``, ``allocate_multipliers``).

Both paths return the same exclusion codes (a test checks it on random inputs), so a campaign never targets a
customer the online path would refuse, and vice versa.

Expected incremental value of sending offer ``a`` to customer ``x`` (RUB; the bank pays ``cost`` on every
completion, and earns ``value`` only on the completions the offer caused)::

    EV = uplift(x, a) * value_a - P(complete | treated)(x, a) * cost_a

Without an uplift estimate we fall back to ``P(complete | treated) * (value_a - cost_a)``, which credits the
offer with completions that would have happened anyway, so it overstates offers popular with "sure things";
every EV carries a flag saying which formula produced it.

Exploration is what makes the log useful: every shown offer is stored with the probability the policy had of
showing it, so any other policy can be evaluated on that log (``models.ope``) before it goes live.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal

import numpy as np
import pandas as pd

from loyalty_core import InvalidInput

DEFAULT_TIERS: tuple[str, ...] = ("base", "silver", "gold")  # as in loyalty_core/default_rules.toml
SOURCE_UPLIFT = "uplift"
SOURCE_PROPENSITY = "propensity"


# --- the catalogue -----------------------------------------------------------------------------------------


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


# --- eligibility -------------------------------------------------------------------------------------------


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


# --- expected value ----------------------------------------------------------------------------------------


def expected_value(
    p_treated: np.ndarray,
    value: np.ndarray | float,
    cost: np.ndarray | float,
    uplift: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Expected incremental value (RUB) and whether the uplift formula produced it (else the fallback).

    ``p_treated`` and ``uplift`` are ``(..., offers)``; ``value`` and ``cost`` are per offer and broadcast.
    ``uplift`` NaN (or None) means no estimate for that pair: the propensity fallback is used there.
    """
    p = np.asarray(p_treated, dtype=np.float64)
    # min/max instead of elementwise masks: this runs on every request, and NaN fails both comparisons.
    if p.size and not (p.min() >= 0.0 and p.max() <= 1.0):
        raise InvalidInput("P(complete | treated) must be probabilities in [0, 1]", field="propensity")
    if uplift is None:
        return p * (value - cost), np.zeros(p.shape, dtype=bool)
    u = np.asarray(uplift, dtype=np.float64)
    if u.shape != p.shape:
        raise InvalidInput("uplift must have the shape of the propensities", field="uplift")
    has = ~np.isnan(u)
    if (np.abs(u) > 1.0).any():  # NaN compares False: missing estimates pass
        raise InvalidInput("uplift must be a difference of probabilities, in [-1, 1]", field="uplift")
    # NaN uplift makes NaN in the first branch, which np.where does not pick.
    ev = np.where(has, u * value - p * cost, p * (value - cost))
    return ev, has


# --- ranking with exploration ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EpsilonGreedy:
    """With probability ``1 - epsilon`` the top-k by expected value, else k candidates drawn uniformly.

    The probability that offer ``i`` is in the slate is exact:
    ``(1 - epsilon) * [i in top-k] + epsilon * k / n`` for ``n`` candidates; with ``k = 1`` this is the
    textbook epsilon-greedy and the probabilities of the candidates sum to 1 (to ``k`` for a slate).
    ``epsilon = 0`` is the greedy policy.
    """

    epsilon: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 <= self.epsilon <= 1.0:
            raise InvalidInput("epsilon must be in [0, 1]", field="epsilon")

    @property
    def name(self) -> str:
        return "greedy" if self.epsilon == 0 else f"epsilon_greedy:{self.epsilon:g}"


@dataclass(frozen=True, slots=True)
class ThompsonSampling:
    """Rank by one draw from a posterior on each offer's completion probability.

    The posterior is centred on the model's ``P(complete | treated)`` ``p`` with ``strength`` ``s``
    pseudo-observations behind it: ``Beta(p * s, (1 - p) * s)`` (mean ``p``), or by default its Gaussian
    approximation with the same mean and variance ``p (1 - p) / (s + 1)``, clipped to [0, 1], which is four
    times cheaper to draw (a request draws ``draws + 1`` values per candidate). Offers the model knows little
    about (small ``strength``, e.g. the number of logged sends of that offer) get wider posteriors and are
    explored more. The control probability ``p - uplift`` stays at the model's value, so a draw moves
    treated completion and uplift together.

    The probability of an offer being in the slate has no closed form: it is ESTIMATED by Monte Carlo over
    ``draws`` further posterior draws plus the draw actually used (so a shown offer never gets 0); its
    standard error is about ``sqrt(q (1 - q) / draws)`` for a true probability ``q``.
    """

    strength: float | Sequence[float] = 100.0
    draws: int = 1000
    posterior: Literal["gaussian", "beta"] = "gaussian"

    def __post_init__(self) -> None:
        s = np.asarray(self.strength, dtype=np.float64)
        if not (np.isfinite(s).all() and (s > 0).all()):
            raise InvalidInput("Thompson-sampling strength must be positive", field="strength")
        if self.draws < 1:
            raise InvalidInput("Thompson sampling needs at least one Monte Carlo draw", field="draws")
        if self.posterior not in ("gaussian", "beta"):
            raise InvalidInput("posterior must be 'gaussian' or 'beta'", field="posterior")

    @property
    def name(self) -> str:
        return f"thompson:{self.posterior}"


Exploration = EpsilonGreedy | ThompsonSampling
GREEDY = EpsilonGreedy(0.0)


@dataclass(frozen=True, slots=True)
class RankedOffer:
    offer_id: str
    rank: int  # 1 = first shown
    score: float  # the model's P(complete | treated)
    expected_value: float  # RUB, see the module docstring
    probability: float  # the probability the policy had of putting this offer in the slate
    source: str  # "uplift" or "propensity": which EV formula was used
    reasons: Any = None  # passed through from the scorer (e.g. top feature contributions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "offer_id": self.offer_id,
            "rank": self.rank,
            "score": self.score,
            "expected_value": self.expected_value,
            "probability": self.probability,
            "source": self.source,
            "reasons": self.reasons,
        }


@dataclass(frozen=True, slots=True)
class Ranking:
    offers: tuple[RankedOffer, ...]
    policy: str
    probability_method: str  # "exact" or "monte_carlo:<draws>"
    candidates: int  # offers the exploration chose among
    # Every candidate's probability of being in the slate (they sum to the slate's size), shown or not.
    probabilities: dict[str, float] = field(default_factory=dict)


_DEFAULT_RNG = np.random.default_rng()  # for callers that pass none (a fresh generator costs ~10 µs)


def _floats(x: np.ndarray | Sequence[float | None], n: int, name: str) -> list[float]:
    out = x.tolist() if isinstance(x, np.ndarray) else [math.nan if v is None else float(v) for v in x]
    if len(out) != n:
        raise InvalidInput(f"{name} must have one entry per catalogue offer ({n})", field=name)
    return out


def rank_offers(
    catalog: OfferCatalog,
    propensity: np.ndarray | Sequence[float],
    *,
    uplift: np.ndarray | Sequence[float | None] | None = None,
    eligible: np.ndarray | Sequence[bool] | None = None,
    k: int = 1,
    exploration: Exploration = GREEDY,
    rng: np.random.Generator | None = None,
    reasons: Sequence[Any] | None = None,
    min_expected_value: float | None = 0.0,
) -> Ranking:
    """Choose up to ``k`` offers for one customer, with the probability of each being chosen.

    Arrays are aligned with ``catalog.offer_ids``; ``uplift`` NaN or None means no estimate (the EV falls
    back to the propensity formula, as in ``expected_value``). Candidates are the eligible offers whose
    expected value exceeds ``min_expected_value`` (None: every eligible offer): by default an offer the
    model expects to lose money on is never shown, not even to explore. Ties rank in catalogue order.
    ``rng`` makes exploration reproducible (tests); the service passes one generator per worker.

    Plain Python over the catalogue rather than numpy: for ~10 offers each numpy call costs more than the
    whole loop (this path is timed by ``benchmarks/policy.py``); ``expected_value`` is the batch twin, and a
    test checks that both give the same numbers.
    """
    if k < 0:
        raise InvalidInput("k must be >= 0", field="k")
    m = len(catalog)
    p = _floats(propensity, m, "propensity")
    u = _floats(uplift, m, "uplift") if uplift is not None else None
    ok = list(eligible) if eligible is not None else None
    if ok is not None and len(ok) != m:
        raise InvalidInput(f"eligible must have one entry per catalogue offer ({m})", field="eligible")
    values, costs = catalog.value_list, catalog.cost_list
    ev: list[float] = []
    has: list[bool] = []
    cand: list[int] = []
    for j in range(m):
        pj = p[j]
        if not 0.0 <= pj <= 1.0:  # NaN fails too
            raise InvalidInput(
                f"propensity of offer {catalog.offer_ids[j]!r} is not in [0, 1]", field="propensity"
            )
        uj = u[j] if u is not None else math.nan
        if uj == uj:  # not NaN
            if not -1.0 <= uj <= 1.0:
                raise InvalidInput(
                    f"uplift of offer {catalog.offer_ids[j]!r} is not in [-1, 1]", field="uplift"
                )
            e = uj * values[j] - pj * costs[j]
            has.append(True)
        else:
            e = pj * (values[j] - costs[j])
            has.append(False)
        ev.append(e)
        if (ok is None or ok[j]) and (min_expected_value is None or e > min_expected_value):
            cand.append(j)
    n = len(cand)
    kk = min(k, n)
    if kk == 0:
        method = "exact" if isinstance(exploration, EpsilonGreedy) else f"monte_carlo:{exploration.draws}"
        return Ranking((), exploration.name, method, n)
    rng = rng if rng is not None else _DEFAULT_RNG
    if isinstance(exploration, EpsilonGreedy):
        order = sorted(cand, key=lambda j: -ev[j])  # stable: ties stay in catalogue order
        eps = exploration.epsilon
        prob = dict.fromkeys(cand, eps * kk / n)
        for j in order[:kk]:
            prob[j] += 1.0 - eps
        if eps > 0.0 and rng.random() < eps:
            picked = rng.choice(n, size=kk, replace=False).tolist()
            chosen = sorted((cand[i] for i in picked), key=lambda j: (-ev[j], j))
        else:
            chosen = order[:kk]
        method = "exact"
    else:
        chosen, prob = _thompson(exploration, p, u, catalog, cand, kk, rng)
        method = f"monte_carlo:{exploration.draws}"
    ids = catalog.offer_ids
    out = tuple(
        RankedOffer(
            offer_id=ids[j],
            rank=r,
            score=p[j],
            expected_value=ev[j],
            probability=prob[j],
            source=SOURCE_UPLIFT if has[j] else SOURCE_PROPENSITY,
            reasons=None if reasons is None else reasons[j],
        )
        for r, j in enumerate(chosen, start=1)
    )
    return Ranking(out, exploration.name, method, n, {ids[j]: prob[j] for j in cand})


def _thompson(
    ts: ThompsonSampling,
    p_all: list[float],
    u_all: list[float] | None,
    catalog: OfferCatalog,
    cand: list[int],
    k: int,
    rng: np.random.Generator,
) -> tuple[list[int], dict[int, float]]:
    """Slate from draw 0 (by sampled EV), inclusion probabilities from draws 0..``draws`` (Monte Carlo)."""
    idx = np.asarray(cand)
    p = np.asarray(p_all)[idx]
    s = np.broadcast_to(np.asarray(ts.strength, dtype=np.float64), (len(catalog),))[idx]
    pc = np.clip(p, 1e-6, 1.0 - 1e-6)
    shape = (ts.draws + 1, len(cand))
    if ts.posterior == "beta":
        draws = rng.beta(pc * s, (1.0 - pc) * s, size=shape)
    else:
        sd = np.sqrt(pc * (1.0 - pc) / (s + 1.0))
        draws = np.clip(p + sd * rng.standard_normal(shape), 0.0, 1.0)
    value = catalog.value[idx]
    cost = catalog.cost[idx]
    if u_all is None:
        sampled = draws * (value - cost)
    else:
        u = np.asarray(u_all)[idx]
        has = ~np.isnan(u)
        control = np.where(has, p - np.where(has, u, 0.0), 0.0)
        sampled = np.where(has, (draws - control) * value - draws * cost, draws * (value - cost))
    if k == 1:
        top = np.argmax(sampled, axis=1)
        counts = np.bincount(top, minlength=len(cand))
        first = top[:1]
    else:
        tops = np.argsort(-sampled, axis=1, kind="stable")[:, :k]
        counts = np.bincount(tops.ravel(), minlength=len(cand))
        first = tops[0]
    prob = (counts / (ts.draws + 1)).tolist()
    return [cand[i] for i in first.tolist()], dict(zip(cand, prob, strict=True))


def rank_for_customer(
    catalog: OfferCatalog,
    state: CustomerState,
    propensity: np.ndarray | Sequence[float],
    *,
    now: dt.datetime,
    uplift: np.ndarray | Sequence[float] | None = None,
    channel: str | None = None,
    caps: FrequencyCaps = FrequencyCaps(),
    k: int = 1,
    exploration: Exploration = GREEDY,
    rng: np.random.Generator | None = None,
    reasons: Sequence[Any] | None = None,
    min_expected_value: float | None = 0.0,
) -> Ranking:
    """The request path: eligibility, then ``rank_offers`` on what is left, within the caps' room."""
    codes, room = eligibility_one(catalog, state, now=now, channel=channel, caps=caps)
    return rank_offers(
        catalog,
        propensity,
        uplift=uplift,
        eligible=[c == Exclusion.ELIGIBLE for c in codes],
        k=min(k, room),
        exploration=exploration,
        rng=rng,
        reasons=reasons,
        min_expected_value=min_expected_value,
    )


# --- the decision log row ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One decision as the service stores it in ``decisions`` (see ``loyalty_core.schema.Decision``).

    ``offer_id``/``probability`` of the row are the first offer of the slate and its probability; an empty
    slate is a decision too (``offer_id`` None, probability 1: nothing else could have happened given the
    eligibility), so "no offer" outcomes stay in the log that off-policy evaluation reads.
    """

    decision_id: str
    customer_id: str
    made_at: dt.datetime
    policy: str
    offers: tuple[RankedOffer, ...]
    probability_method: str = "exact"
    channel: str | None = None
    model_versions: Mapping[str, str] = field(default_factory=dict)
    served: bool = True

    def __post_init__(self) -> None:
        _check_utc(self.made_at, "made_at")
        if not self.decision_id or len(self.decision_id) > 64:
            raise InvalidInput("decision_id must be 1 to 64 characters", field="decision_id")
        if len(self.policy) > 64:
            raise InvalidInput("policy name must be at most 64 characters", field="policy")

    @classmethod
    def from_ranking(
        cls,
        ranking: Ranking,
        *,
        customer_id: str,
        made_at: dt.datetime,
        channel: str | None = None,
        model_versions: Mapping[str, str] | None = None,
        decision_id: str | None = None,
        policy: str | None = None,
        served: bool = True,
    ) -> DecisionRecord:
        return cls(
            decision_id=decision_id or uuid.uuid4().hex,
            customer_id=customer_id,
            made_at=made_at,
            policy=policy or ranking.policy,
            offers=ranking.offers,
            probability_method=ranking.probability_method,
            channel=channel,
            model_versions=dict(model_versions or {}),
            served=served,
        )

    def to_row(self) -> dict[str, Any]:
        """The ``decisions`` row; ``model_versions`` also records how the probabilities were computed."""
        first = self.offers[0] if self.offers else None
        return {
            "id": self.decision_id,
            "customer_id": self.customer_id,
            "made_at": self.made_at,
            "policy": self.policy,
            "offer_id": first.offer_id if first else None,
            "probability": first.probability if first else 1.0,
            "served": self.served,
            "channel": self.channel,
            "offers": [o.to_dict() for o in self.offers],
            "model_versions": {**self.model_versions, "probability_method": self.probability_method},
        }


# --- campaigns: one offer, many customers, a budget --------------------------------------------------------


def allocate_campaign(
    customer_ids: Sequence[str] | pd.Index,
    p_complete: np.ndarray,
    *,
    value: float,
    cost: float,
    uplift: np.ndarray | None = None,
    eligible: np.ndarray | None = None,
    budget: float | None = None,
    limit: int | None = None,
    budget_cost: float | None = None,
    rank_by: Literal["value", "value_per_cost"] = "value",
) -> pd.DataFrame:
    """Customers to send one offer to, best first, within a budget on expected cost and/or a head count.

    Eligible customers with positive expected value are ranked by it (``rank_by="value_per_cost"`` ranks by
    value per unit of expected cost, the better order when the budget binds and costs differ a lot) and taken
    in that order while the cumulative expected cost ``p_complete * budget_cost`` stays within ``budget``;
    the first customer who would overspend ends the list (so the list is a prefix of the ranking and the
    budget is never exceeded). ``budget_cost`` is what one completion costs in the budget's unit: the offer's
    money ``cost`` by default, its bonus points for a points budget.

    Returns ``rank, customer_id, p_complete, expected_value, expected_cost, cumulative_cost, source``.
    """
    ids = pd.Index(customer_ids)
    p = np.asarray(p_complete, dtype=np.float64)
    if p.shape != (len(ids),):
        raise InvalidInput("p_complete must have one entry per customer", field="p_complete")
    if budget is not None and budget < 0:
        raise InvalidInput("budget must be >= 0", field="budget")
    if limit is not None and limit < 0:
        raise InvalidInput("limit must be >= 0", field="limit")
    u = None if uplift is None else np.asarray(uplift, dtype=np.float64)
    ev, has = expected_value(p, float(value), float(cost), u)
    unit = float(cost if budget_cost is None else budget_cost)
    if unit < 0:
        raise InvalidInput("budget_cost must be >= 0", field="budget_cost")
    exp_cost = p * unit
    keep = ev > 0
    if eligible is not None:
        keep &= np.asarray(eligible, dtype=bool)
    idx = np.flatnonzero(keep)
    if rank_by == "value":
        key = ev[idx]
    elif rank_by == "value_per_cost":
        with np.errstate(divide="ignore", invalid="ignore"):
            key = np.where(exp_cost[idx] > 0, ev[idx] / exp_cost[idx], np.inf)
    else:
        raise InvalidInput("rank_by must be 'value' or 'value_per_cost'", field="rank_by")
    # Best first; ties by the higher EV, then by the caller's order.
    idx = idx[np.lexsort((-ev[idx], -key))]
    cum = np.cumsum(exp_cost[idx])
    n = len(idx)
    if budget is not None:
        n = int(np.searchsorted(cum, budget * (1 + 1e-12), side="right"))
    if limit is not None:
        n = min(n, limit)
    idx = idx[:n]
    return pd.DataFrame(
        {
            "rank": np.arange(1, n + 1),
            "customer_id": ids[idx].astype(str),
            "p_complete": p[idx],
            "expected_value": ev[idx],
            "expected_cost": exp_cost[idx],
            "cumulative_cost": cum[:n],
            "source": np.where(has[idx], SOURCE_UPLIFT, SOURCE_PROPENSITY),
        }
    )


# --- bonus multipliers -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MultiplierPolicy:
    """The economics of a bonus multiplier on a customer's earnings for one period.

    A customer expected to earn ``b`` points in the period at 1x earns ``(m - 1) * b`` extra points at
    multiplier ``m`` (``b`` is already an expectation: a customer likely to leave earns little, so costs
    little); each extra point costs the bank ``point_value`` RUB (what a redeemed point costs, times the
    share of points ever redeemed). The multiplier lowers the customer's churn probability ``c`` by the
    relative amount ``effect[m]``, so it keeps ``c * effect[m] * V`` RUB of the customer's value ``V`` (e.g.
    their expected margin over a year, from the CLV model). Hence the money is best spent on customers who
    are both likely to leave and worth keeping, per point they would earn.

    ``effect`` is an assumption, the same for every customer, until a multiplier experiment measures it
    (defaults: 0, 8, 14, 22 % of the churn risk averted at 1, 1.5, 2, 3x; concave, each step buys less).
    """

    levels: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0)
    effect: tuple[float, ...] = (0.0, 0.08, 0.14, 0.22)
    point_value: float = 1.0  # RUB per point

    def __post_init__(self) -> None:
        lv = np.asarray(self.levels, dtype=np.float64)
        if len(lv) < 1 or lv[0] != 1.0 or (np.diff(lv) <= 0).any():
            raise InvalidInput("multiplier levels must start at 1 and increase", field="levels")
        if len(self.effect) != len(self.levels):
            raise InvalidInput("one retention effect per multiplier level", field="effect")
        if not all(0.0 <= e <= 1.0 for e in self.effect):
            raise InvalidInput("retention effects are fractions of the churn risk, in [0, 1]", field="effect")
        if self.point_value < 0:
            raise InvalidInput("point_value must be >= 0", field="point_value")


@dataclass(frozen=True, slots=True)
class MultiplierAllocation:
    multiplier: np.ndarray  # (n,) one of the policy's levels
    extra_points: np.ndarray  # (n,) expected extra points at that level
    retained_value: np.ndarray  # (n,) expected RUB of customer value kept by it
    threshold: float  # retained RUB per extra point a step must beat (the budget's shadow price)
    spent: float  # expected extra points in all
    budget: float | None


def _multiplier_inputs(
    policy: MultiplierPolicy, churn: np.ndarray, value: np.ndarray, base_points: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(churn, dtype=np.float64)
    v = np.asarray(value, dtype=np.float64)
    b = np.asarray(base_points, dtype=np.float64)
    if not (c.shape == v.shape == b.shape and c.ndim == 1):
        raise InvalidInput("churn, value and base_points must be 1-d arrays of one length", field="churn")
    if not ((c >= 0) & (c <= 1)).all():
        raise InvalidInput("churn must be probabilities in [0, 1]", field="churn")
    if not (np.isfinite(v).all() and np.isfinite(b).all()) or (b < 0).any():
        raise InvalidInput("value must be finite and base_points finite and >= 0", field="base_points")
    levels = np.asarray(policy.levels)
    effect = np.asarray(policy.effect)
    gain = (c * np.maximum(v, 0.0))[:, None] * effect[None, :]  # RUB kept at each level
    extra = b[:, None] * (levels - 1.0)[None, :]  # extra points at each level
    return gain, extra


def _hull_steps(gain: np.ndarray, extra: np.ndarray) -> tuple[np.ndarray, ...]:
    """Steps along each customer's upper concave hull of (extra points, RUB kept), from level 0 upwards.

    Each step has a lower ratio than the previous one of the same customer, so any threshold on the ratio
    (and any prefix of all steps sorted by ratio) takes a prefix of each customer's steps.
    Returns (customer, step number, to-level, d_extra, ratio) arrays.
    """
    n, levels = gain.shape
    rows = np.arange(n)
    cur = np.zeros(n, dtype=np.int64)
    alive = np.ones(n, dtype=bool)
    out: list[tuple[np.ndarray, ...]] = []
    later = np.arange(levels)[None, :]
    for step in range(levels - 1):
        dg = gain - gain[rows, cur][:, None]
        dk = extra - extra[rows, cur][:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(dk > 0, dg / dk, np.inf)
        slope = np.where((later > cur[:, None]) & (dg > 0), slope, -np.inf)
        nxt = np.argmax(slope, axis=1)  # nearest level on ties: finer steps fit budgets better
        best = slope[rows, nxt]
        ok = alive & (best > -np.inf)
        if not ok.any():
            break
        who = rows[ok]
        out.append((who, np.full(len(who), step), nxt[ok], dk[ok, nxt[ok]], best[ok]))
        cur = np.where(ok, nxt, cur)
        alive = ok
    if not out:
        empty_i = np.empty(0, dtype=np.int64)
        return empty_i, empty_i, empty_i, np.empty(0), np.empty(0)
    return tuple(np.concatenate(parts) for parts in zip(*out, strict=True))


def allocate_multipliers(
    churn: np.ndarray,
    value: np.ndarray,
    base_points: np.ndarray,
    *,
    policy: MultiplierPolicy = MultiplierPolicy(),
    budget: float | None = None,
) -> MultiplierAllocation:
    """Multipliers for a batch of customers, spending at most ``budget`` expected extra points.

    Greedy on marginal economics: every upgrade step of every customer (1 -> 1.5 -> 2 -> 3, along the concave
    hull so dominated levels are skipped) is worth ``ratio`` = RUB of customer value kept per extra point.
    Steps are taken best ratio first while the expected extra points fit the budget and the ratio beats
    ``point_value`` (a step that keeps less than it costs is never taken, budget or not). Taking hull steps
    by decreasing ratio is the exact solution of the problem's linear relaxation (a multiple-choice
    knapsack), so the allocation is optimal for the points it spends and at most one step short of the best
    use of the whole budget.

    The returned ``threshold`` is the budget's shadow price: the ratio of the first step the budget refused
    (``point_value`` when the budget did not bind). ``multiplier_for`` applies it to one customer at request
    time, so online choices follow the batch's budget as long as the customers look like the batch.
    """
    gain, extra = _multiplier_inputs(policy, churn, value, base_points)
    n = gain.shape[0]
    who, step, to, dk, ratio = _hull_steps(gain, extra)
    profitable = ratio > policy.point_value
    who, step, to, dk, ratio = (
        who[profitable],
        step[profitable],
        to[profitable],
        dk[profitable],
        ratio[profitable],
    )
    order = np.lexsort((step, who, -ratio))  # best ratio first; a customer's steps in order on ties
    who, to, dk, ratio = who[order], to[order], dk[order], ratio[order]
    cum = np.cumsum(dk)
    take = len(cum)
    threshold = policy.point_value
    if budget is not None:
        if budget < 0:
            raise InvalidInput("budget must be >= 0", field="budget")
        take = int(np.searchsorted(cum, budget * (1 + 1e-12), side="right"))
        if take < len(cum):
            threshold = float(ratio[take])
    level = np.zeros(n, dtype=np.int64)
    np.maximum.at(level, who[:take], to[:take])
    rows = np.arange(n)
    levels = np.asarray(policy.levels)
    chosen_extra = extra[rows, level]
    return MultiplierAllocation(
        multiplier=levels[level],
        extra_points=chosen_extra,
        retained_value=gain[rows, level],
        threshold=threshold,
        spent=float(chosen_extra.sum()),
        budget=budget,
    )


def multiplier_for(
    churn: float,
    value: float,
    base_points: float,
    *,
    threshold: float,
    policy: MultiplierPolicy = MultiplierPolicy(),
) -> float:
    """One customer's multiplier at request time: climb the hull while a step's ratio beats ``threshold``.

    ``threshold`` comes from the last ``allocate_multipliers`` run (its shadow price), never below
    ``point_value``. For a customer of that batch this gives at most the batch's level (equal unless the
    customer's step tied with the budget's last one), so online grants do not outspend the batch plan.
    """
    gain, extra = _multiplier_inputs(
        policy, np.asarray([churn]), np.asarray([value]), np.asarray([base_points])
    )
    _, _, to, _, ratio = _hull_steps(gain, extra)
    bar = max(threshold, policy.point_value)
    level = 0
    for t, r in zip(to, ratio, strict=True):  # in step order, ratios decreasing
        if r <= bar:
            break
        level = int(t)
    return float(policy.levels[level])
