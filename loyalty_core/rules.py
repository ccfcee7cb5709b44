"""Earning rules as data, and the pure arithmetic that applies them.

Nothing here touches a database: the ledger gathers a member's state, calls these functions, and writes what
they return. That keeps the bulk importer and the HTTP API on exactly the same arithmetic, and lets the
property tests check it against a plain in-memory model.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from loyalty_core.errors import ConfigurationError
from loyalty_core.vocabulary import TXN_TYPES

REWARDS = ("cashback", "discount", "gift", "charity")
CAP_PERIODS = ("day", "month", "year")


@dataclass(frozen=True, slots=True)
class EarnRule:
    id: str
    types: frozenset[str]
    per_amount: Decimal | None = None
    points: int = 0
    fixed_points: int = 0
    categories: frozenset[str] | None = None
    min_amount: Decimal = Decimal(0)
    cap_points: int | None = None
    cap_period: str | None = None

    def matches(self, txn_type: str, amount: Decimal, category: str | None) -> bool:
        if txn_type not in self.types or amount < self.min_amount:
            return False
        return self.categories is None or (category is not None and category in self.categories)

    def base_points(self, amount: Decimal) -> int:
        if self.per_amount is not None:
            return int(amount // self.per_amount) * self.points
        return self.fixed_points


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    min_spend: Decimal
    boost: Decimal


@dataclass(frozen=True, slots=True)
class FraudLimits:
    velocity_max: int = 30
    velocity_window: dt.timedelta = dt.timedelta(hours=1)
    unusual_amount_absolute: Decimal = Decimal("5000000")
    unusual_amount_factor: Decimal = Decimal(50)
    unusual_min_history: int = 10
    rapid_redeem_window: dt.timedelta = dt.timedelta(minutes=10)
    rapid_redeem_share: Decimal = Decimal("0.8")
    rapid_redeem_min_points: int = 1000


@dataclass(frozen=True, slots=True)
class Rules:
    version: str
    currency: str
    earn: tuple[EarnRule, ...]
    tiers: tuple[Tier, ...]  # ascending by min_spend; the first is the base tier
    qualifying_types: frozenset[str]
    activities: Mapping[str, int]
    fraud: FraudLimits = field(default_factory=FraudLimits)
    lot_lifetime: dt.timedelta = dt.timedelta(days=365)
    hold_timeout: dt.timedelta = dt.timedelta(minutes=15)
    # Foreign currencies that may earn: units of ``currency`` per unit of each. A card spend in USD earns on
    # its value in the programme's currency, while the entry keeps the amount and currency paid.
    fx: Mapping[str, Decimal] = field(default_factory=dict)

    def in_home_currency(self, amount: Decimal, currency: str) -> Decimal:
        """The amount in the programme's currency (exact decimals, rounded half up to the cent)."""
        if currency == self.currency:
            return amount
        rate = self.fx.get(currency)
        if rate is None:
            raise ConfigurationError(f"rules {self.version}: no fx rate for {currency} (add it under [fx])")
        return (amount * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    @property
    def has_caps(self) -> bool:
        return any(r.cap_points is not None for r in self.earn)


def _dec(value: Any, where: str) -> Decimal:
    try:
        out = Decimal(str(value))
    except Exception as exc:
        raise ConfigurationError(f"rules: {where} is not a number: {value!r}") from exc
    if not out.is_finite() or out < 0:
        raise ConfigurationError(f"rules: {where} must be a finite non-negative number, got {value!r}")
    return out


def parse_rules(doc: Mapping[str, Any]) -> Rules:
    """Validate a rules document; every mistake names the offending key so the file can be fixed."""
    earn: list[EarnRule] = []
    seen: set[str] = set()
    for i, raw in enumerate(doc.get("earn", [])):
        where = f"earn[{i}]"
        rid = str(raw.get("id") or "")
        if not rid or rid in seen:
            raise ConfigurationError(f"rules: {where} needs a unique id")
        seen.add(rid)
        types = frozenset(raw.get("types", []))
        if not types or not types <= set(TXN_TYPES):
            raise ConfigurationError(f"rules: {where}.types must be a non-empty subset of {TXN_TYPES}")
        has_rate = "per_amount" in raw
        if has_rate == ("fixed_points" in raw):
            raise ConfigurationError(f"rules: {where} needs exactly one of per_amount or fixed_points")
        per_amount = _dec(raw["per_amount"], f"{where}.per_amount") if has_rate else None
        if per_amount is not None and per_amount == 0:
            raise ConfigurationError(f"rules: {where}.per_amount must be positive")
        cap_period = raw.get("cap_period")
        cap_points = raw.get("cap_points")
        if (cap_points is None) != (cap_period is None) or (cap_period and cap_period not in CAP_PERIODS):
            raise ConfigurationError(f"rules: {where} caps need cap_points and cap_period in {CAP_PERIODS}")
        cats = raw.get("categories")
        earn.append(
            EarnRule(
                id=rid,
                types=types,
                per_amount=per_amount,
                points=int(raw.get("points", 0)),
                fixed_points=int(raw.get("fixed_points", 0)),
                categories=frozenset(cats) if cats is not None else None,
                min_amount=_dec(raw.get("min_amount", 0), f"{where}.min_amount"),
                cap_points=int(cap_points) if cap_points is not None else None,
                cap_period=cap_period,
            )
        )
    tiers_doc = doc.get("tiers", {})
    levels = [
        Tier(str(t["name"]), _dec(t["min_spend"], f"tiers.{t['name']}.min_spend"), _dec(t["boost"], "boost"))
        for t in tiers_doc.get("levels", [{"name": "base", "min_spend": "0", "boost": "1"}])
    ]
    levels.sort(key=lambda t: t.min_spend)
    if levels[0].min_spend != 0:
        raise ConfigurationError("rules: the lowest tier must start at min_spend 0")
    f = doc.get("fraud", {})
    fraud = FraudLimits(
        velocity_max=int(f.get("velocity_max", 30)),
        velocity_window=dt.timedelta(seconds=int(f.get("velocity_window_seconds", 3600))),
        unusual_amount_absolute=_dec(
            f.get("unusual_amount_absolute", "5000000"), "fraud.unusual_amount_absolute"
        ),
        unusual_amount_factor=_dec(f.get("unusual_amount_factor", 50), "fraud.unusual_amount_factor"),
        unusual_min_history=int(f.get("unusual_min_history", 10)),
        rapid_redeem_window=dt.timedelta(seconds=int(f.get("rapid_redeem_window_seconds", 600))),
        rapid_redeem_share=_dec(f.get("rapid_redeem_share", "0.8"), "fraud.rapid_redeem_share"),
        rapid_redeem_min_points=int(f.get("rapid_redeem_min_points", 1000)),
    )
    activities = {str(k): int(v) for k, v in doc.get("activities", {}).items()}
    if any(v < 0 for v in activities.values()):
        raise ConfigurationError("rules: activity points must be non-negative")
    currency = str(doc.get("currency", "RUB")).upper()
    fx: dict[str, Decimal] = {}
    for code, rate in doc.get("fx", {}).items():
        if not (isinstance(code, str) and len(code) == 3 and code.isalpha()) or code.upper() == currency:
            raise ConfigurationError(
                f"rules: fx.{code} must be a 3-letter currency code other than {currency}"
            )
        fx[code.upper()] = _dec(rate, f"fx.{code}")
        if fx[code.upper()] == 0:
            raise ConfigurationError(f"rules: fx.{code} must be positive")
    return Rules(
        version=str(doc.get("version", "unversioned")),
        currency=currency,
        fx=fx,
        earn=tuple(earn),
        tiers=tuple(levels),
        qualifying_types=frozenset(tiers_doc.get("qualifying_types", ["purchase", "bill_payment"])),
        activities=activities,
        fraud=fraud,
        lot_lifetime=dt.timedelta(days=int(doc.get("lot_lifetime_days", 365))),
        hold_timeout=dt.timedelta(seconds=int(doc.get("hold_timeout_seconds", 900))),
    )


def tier_for(spend: Decimal, tiers: Sequence[Tier]) -> Tier:
    chosen = tiers[0]
    for t in tiers:
        if spend >= t.min_spend:
            chosen = t
    return chosen


def month_key(ts: dt.datetime | dt.date) -> str:
    return f"{ts.year:04d}-{ts.month:02d}"


def _shift(key: str, months: int) -> str:
    m = int(key[:4]) * 12 + int(key[5:7]) - 1 + months
    return f"{m // 12:04d}-{m % 12 + 1:02d}"


def tier_window(ts: dt.datetime) -> tuple[str, str]:
    """First and last month (inclusive, "YYYY-MM") whose spend counts towards the tier at ``ts``.

    The 12 complete calendar months before ``ts``'s month: the tier is reviewed as each month begins. Spend
    is kept in monthly buckets, so counting the current month would let a posting back-dated to the 5th see
    spend dated the 20th; with complete months, the tier at any instant depends only on what was dated before
    it, whatever order the postings arrive in.
    """
    last = _shift(month_key(ts), -1)
    return _shift(last, -11), last


def rolling_spend(spend_by_month: Mapping[str, Decimal], at: dt.datetime) -> Decimal:
    """Qualifying spend in the 12 complete calendar months before ``at``'s month."""
    first, last = tier_window(at)
    return sum((v for k, v in spend_by_month.items() if first <= k <= last), Decimal(0))


def add_spend(spend_by_month: dict[str, Decimal], at: dt.datetime | dt.date, amount: Decimal) -> None:
    """Book qualifying spend (negative for refunds) and forget months no tier window can reach any more."""
    key = month_key(at)
    spend_by_month[key] = spend_by_month.get(key, Decimal(0)) + amount
    oldest = _shift(max(spend_by_month), -13)
    for k in [k for k in spend_by_month if k < oldest]:
        del spend_by_month[k]


def note_posting(recent: list[int], at: dt.datetime, limits: FraudLimits) -> None:
    """Remember a posting time for the velocity check, keeping only what a later check can still count."""
    recent.append(int(at.timestamp()))
    recent.sort()
    horizon = recent[-1] - int(limits.velocity_window.total_seconds())
    del recent[: max(len(recent) - limits.velocity_max, 0)]
    while recent and recent[0] <= horizon:
        recent.pop(0)


def period_key(ts: dt.datetime, period: str) -> str:
    if period == "day":
        return ts.strftime("%Y-%m-%d")
    if period == "month":
        return ts.strftime("%Y-%m")
    return ts.strftime("%Y")


@dataclass(frozen=True, slots=True)
class OfferEffect:
    """What an active offer does to one transaction (pure view of an activation)."""

    activation_id: int
    kind: str
    multiplier: Decimal
    bonus_points: int
    threshold: Decimal | None
    categories: frozenset[str] | None
    txn_types: frozenset[str] | None
    completed: bool

    def applies(self, txn_type: str, category: str | None) -> bool:
        if self.txn_types is not None and txn_type not in self.txn_types:
            return False
        return self.categories is None or (category is not None and category in self.categories)


@dataclass(frozen=True, slots=True)
class Earning:
    points: int
    base_points: int
    multiplier: Decimal  # the personalised offer multiplier applied (1 when none)
    tier: str
    tier_boost: Decimal
    rule_points: dict[str, int]  # base points per capped rule, to book against caps
    activation_id: int | None
    completed_activation_ids: tuple[int, ...]


def floor_int(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_FLOOR))


def compute_earning(
    rules: Rules,
    *,
    txn_type: str,
    amount: Decimal,
    category: str | None,
    tier_spend: Decimal,
    offers: Iterable[OfferEffect] = (),
    cap_used: Mapping[str, int] | None = None,
) -> Earning:
    """Points for one transaction: sum of matching rules (capped), times tier boost and offer multiplier.

    Multiplier offers do not stack: the best one applies (a customer holding 2x and 3x gets 3x, not 6x).
    Bonus-point offers pay once, on the first qualifying transaction at or above their threshold; cashback
    offers complete on that same condition (the money is paid outside the points ledger).
    """
    base = 0
    rule_points: dict[str, int] = {}
    for rule in rules.earn:
        if not rule.matches(txn_type, amount, category):
            continue
        pts = rule.base_points(amount)
        if rule.cap_points is not None:
            used = (cap_used or {}).get(rule.id, 0)
            pts = max(0, min(pts, rule.cap_points - used))
            rule_points[rule.id] = pts
        base += pts
    tier = tier_for(tier_spend, rules.tiers)
    best: OfferEffect | None = None
    bonus = 0
    completed: list[int] = []
    for off in offers:
        if not off.applies(txn_type, category):
            continue
        if off.kind == "multiplier":
            if best is None or off.multiplier > best.multiplier:
                best = off
            if not off.completed:
                completed.append(off.activation_id)
        elif off.kind == "bonus_points" and not off.completed and amount >= (off.threshold or Decimal(0)):
            bonus += off.bonus_points
            completed.append(off.activation_id)
        elif off.kind == "cashback" and not off.completed and amount >= (off.threshold or Decimal(0)):
            # Cashback is paid in money by the bank, not in points; the ledger records that it was earned.
            completed.append(off.activation_id)
    multiplier = best.multiplier if best is not None else Decimal(1)
    points = floor_int(Decimal(base) * tier.boost * multiplier) + bonus
    return Earning(
        points=points,
        base_points=base,
        multiplier=multiplier,
        tier=tier.name,
        tier_boost=tier.boost,
        rule_points=rule_points,
        activation_id=best.activation_id if best is not None else None,
        completed_activation_ids=tuple(completed),
    )


def reversal_points(
    original_points: int, original_amount: Decimal, refunded_before: Decimal, refund: Decimal
) -> int:
    """Points to claw back for a (partial) refund, proportional to the cumulative refunded amount.

    Working on the cumulative amount means several partial refunds add up to exactly the original points,
    never more, whatever the rounding of each.
    """
    if original_amount <= 0:
        return original_points if refunded_before == 0 else 0
    before = math.floor(original_points * refunded_before / original_amount)
    after = math.floor(original_points * (refunded_before + refund) / original_amount)
    return after - before


def fraud_reason_for_earning(
    limits: FraudLimits,
    *,
    amount: Decimal,
    occurred_at: dt.datetime,
    recent_times: Sequence[int],
    txn_count: int,
    amount_sum: Decimal,
) -> str | None:
    """Why a posting must be held for review, or None. Thresholds come from the rules file.

    ``recent_times`` are the customer's earlier posting times in epoch seconds (see ``note_posting``).
    """
    if amount > limits.unusual_amount_absolute:
        return f"unusual_amount: {amount} above the absolute limit {limits.unusual_amount_absolute}"
    if txn_count >= limits.unusual_min_history and txn_count > 0:
        mean = amount_sum / txn_count
        if mean > 0 and amount > limits.unusual_amount_factor * mean:
            return f"unusual_amount: {amount} is over {limits.unusual_amount_factor}x this customer's mean"
    end = int(occurred_at.timestamp())
    start = end - int(limits.velocity_window.total_seconds())
    recent = sum(1 for t in recent_times if start < t <= end)
    if recent >= limits.velocity_max:
        return f"velocity: {recent} transactions within {int(limits.velocity_window.total_seconds())} s"
    return None


def fraud_reason_for_redemption(limits: FraudLimits, *, points: int, recently_earned: int) -> str | None:
    if points >= limits.rapid_redeem_min_points and recently_earned >= limits.rapid_redeem_share * points:
        return (
            f"rapid_earn_and_redeem: {recently_earned} of {points} points were earned in the last "
            f"{int(limits.rapid_redeem_window.total_seconds())} s"
        )
    return None
