"""Tables of the ledger (SQLAlchemy 2 typed declarative).

Why this shape:
- ``entries`` is the journal, the audit trail and the idempotency store at once: one immutable row per
  operation (earning, reversal, redemption, hold, expiry, activity...), unique on ``(kind, ext_id)`` where
  ``ext_id`` is the caller's id, carrying a hash of the request and the first answer so that a replay returns
  exactly that answer. Database triggers refuse UPDATE and DELETE on it and on ``lines``.
- ``lines`` are the double-entry legs of an entry; they sum to zero per entry. The member's ``points`` account
  is the spendable balance; ``debt`` carries clawbacks that could not be taken (it is negative when owed).
- ``lots`` give points an expiry date; ``members.balance`` is kept equal to the sum of the member's lines and
  of their lots' ``remaining`` in the same transaction as every write.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Money = Numeric(18, 2)
Rate = Numeric(10, 4)
# SQLite has no BIGINT autoincrement; it needs INTEGER PRIMARY KEY for the rowid alias.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset, so put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger; use a UTC-aware datetime")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Member(Base):
    __tablename__ = "members"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    debt: Mapped[int] = mapped_column(BigInteger, default=0)
    # Running statistics of posted transaction amounts, for the unusual-amount check.
    txn_count: Mapped[int] = mapped_column(Integer, default=0)
    amount_sum: Mapped[Decimal] = mapped_column(Numeric(20, 2), default=Decimal(0))
    # Hot state read and written by every posting, kept on the row that is locked anyway, so a posting needs
    # no further reads: qualifying spend per month ("YYYY-MM" -> decimal string, the last 14 months) for the
    # tier, recent posting times (epoch seconds, within the velocity window) for the velocity check, and the
    # latest expiry of the member's activations (no offer lookup when it is past).
    spend: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    recent: Mapped[list[int]] = mapped_column(JSON, default=list)
    offers_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Entry(Base):
    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("kind", "ext_id", name="uq_entries_kind_ext_id"),
        Index("ix_entries_member_effective", "member_id", "effective_at"),
        Index("ix_entries_parent", "parent_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    ext_id: Mapped[str] = mapped_column(String(128))
    member_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # posted | held
    effective_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(32))
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    parent_id: Mapped[int | None] = mapped_column(BigInteger)
    # Transaction facts (kind == "earn"); kept on the entry because features and reversals need them.
    txn_type: Mapped[str | None] = mapped_column(String(16))
    amount: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    category: Mapped[str | None] = mapped_column(String(32))
    channel: Mapped[str | None] = mapped_column(String(16))
    multiplier: Mapped[Decimal | None] = mapped_column(Rate)
    tier: Mapped[str | None] = mapped_column(String(16))
    rules_version: Mapped[str | None] = mapped_column(String(32))
    activation_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Line(Base):
    __tablename__ = "lines"
    __table_args__ = (Index("ix_lines_member_account_effective", "member_id", "account", "effective_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id"), index=True)
    account: Mapped[str] = mapped_column(
        String(16)
    )  # points | debt | programme | redeemed | expired | reversed
    member_id: Mapped[str | None] = mapped_column(String(64))
    points: Mapped[int] = mapped_column(BigInteger)
    effective_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Lot(Base):
    __tablename__ = "lots"
    __table_args__ = (
        Index("ix_lots_member_expires", "member_id", "expires_at"),
        Index("ix_lots_expires", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    member_id: Mapped[str] = mapped_column(String(64))
    entry_id: Mapped[int] = mapped_column(BigInteger, index=True)
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    earned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class RuleUsage(Base):
    """Points earned under a capped rule per member and period, so caps hold across requests."""

    __tablename__ = "rule_usage"

    member_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    points: Mapped[int] = mapped_column(BigInteger)


class Offer(Base):
    __tablename__ = "offers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # multiplier | bonus_points | cashback | informational
    multiplier: Mapped[Decimal] = mapped_column(Rate, default=Decimal(1))
    bonus_points: Mapped[int] = mapped_column(Integer, default=0)
    threshold: Mapped[Decimal | None] = mapped_column(Money)
    categories: Mapped[list[str] | None] = mapped_column(JSON)
    txn_types: Mapped[list[str] | None] = mapped_column(JSON)
    channels: Mapped[list[str] | None] = mapped_column(JSON)
    duration_days: Mapped[int] = mapped_column(Integer)
    cost: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    value: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    min_tier: Mapped[str | None] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # What the source said about the offer beyond our columns (e.g. Starbucks' offer_type, difficulty,
    # reward), kept so that models can use it as offer attributes.
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Activation(Base):
    __tablename__ = "activations"
    __table_args__ = (
        Index("ix_activations_member_expires", "member_id", "expires_at"),
        UniqueConstraint("ext_id", name="uq_activations_ext_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ext_id: Mapped[str] = mapped_column(String(160))
    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.id"))
    member_id: Mapped[str] = mapped_column(String(64))
    decision_id: Mapped[str | None] = mapped_column(String(64))
    activated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Hold(Base):
    """A reservation of points: active until captured, voided, or timed out.

    ``kind`` is ``till`` for a till's two-phase spend (it times out at ``expires_at``) or ``review`` for a
    redemption the fraud checks held (id ``redemption:<redemption_id>``, no timeout: ``expires_at`` is NULL
    until an admin releases or rejects it).
    """

    __tablename__ = "holds"
    __table_args__ = (Index("ix_holds_member_status", "member_id", "status"),)

    id: Mapped[str] = mapped_column(String(160), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="till", server_default="till")
    member_id: Mapped[str] = mapped_column(String(64))
    points: Mapped[int] = mapped_column(BigInteger)
    reward: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # active | captured | voided
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    settled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Customer(Base):
    """What the bank knows about a customer apart from their ledger: the model's static attributes.

    Members (ledger accounts) are created by the first posting; a customer row comes from an import or the
    simulator and may exist without a member and vice versa. Age is kept as a birth year so it stays right as
    time passes; unknowns are NULL, never a sentinel.
    """

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))  # simulator | starbucks | import
    joined_on: Mapped[dt.date | None] = mapped_column(Date)
    birth_year: Mapped[int | None] = mapped_column(Integer)
    gender: Mapped[str | None] = mapped_column(String(8))
    region: Mapped[str | None] = mapped_column(String(64))
    income: Mapped[Decimal | None] = mapped_column(Money)
    income_band: Mapped[str | None] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(16))  # preferred channel
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Decision(Base):
    """One choice made for one customer, with the probability it had of being made (off-policy evaluation).

    Historical random campaigns are decisions too (``policy = "campaign:<id>"``; a control-group customer
    has ``offer_id`` NULL), so training, uplift and policy evaluation read one log. ``offers`` keeps the
    whole ranked slate with scores and probabilities; ``served`` is false for a shadow policy's choices.
    A ranking also keeps its context, so other policies can be evaluated on it: ``k`` (the slate size asked
    for), ``candidates`` (``{offer_id: [probability of being chosen, model score]}`` of every candidate,
    shown or not) and, for a shadow's choice, ``shadow_of`` (the served decision it ranked beside).
    ``model_versions`` holds only what produced the decision (model versions, ``probability_method``).
    """

    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_customer_made", "customer_id", "made_at"),
        Index("ix_decisions_policy_made", "policy", "made_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    made_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    policy: Mapped[str] = mapped_column(String(64))
    offer_id: Mapped[str | None] = mapped_column(String(64))
    probability: Mapped[float] = mapped_column(Double)
    served: Mapped[bool] = mapped_column(Boolean, default=True)
    channel: Mapped[str | None] = mapped_column(String(16))
    offers: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    model_versions: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    k: Mapped[int | None] = mapped_column(Integer)
    candidates: Mapped[dict[str, list[float]] | None] = mapped_column(JSON)
    shadow_of: Mapped[str | None] = mapped_column(String(64))


class OfferEvent(Base):
    """The funnel of an offer for a customer: sent, viewed, activated, completed (plus feedback events).

    ``ext_id`` makes imports and feedback idempotent. ``value`` is what a completion paid (e.g. a Starbucks
    reward, in the offer's currency), when the source says.
    """

    __tablename__ = "offer_events"
    __table_args__ = (
        UniqueConstraint("ext_id", name="uq_offer_events_ext_id"),
        Index("ix_offer_events_customer_at", "customer_id", "occurred_at"),
        Index("ix_offer_events_offer_at", "offer_id", "occurred_at"),
        Index("ix_offer_events_decision", "decision_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ext_id: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[str] = mapped_column(String(64))
    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.id"))
    event: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    channel: Mapped[str | None] = mapped_column(String(16))
    decision_id: Mapped[str | None] = mapped_column(String(64))
    value: Mapped[Decimal | None] = mapped_column(Money)


class OnlineFeature(Base):
    """The latest feature snapshot of each customer, for the service to read by customer id.

    ``vector`` is the feature vector in the catalogue's order of ``feature_version``, packed as little-endian
    float64 (``numpy.ndarray.tobytes``): one row is a few hundred bytes and decodes without parsing, so
    the service loads every customer into one matrix at start and on refresh. ``written_at`` changes with
    every refresh, so a reader learns from one indexed ``max()`` whether it must re-read.
    """

    __tablename__ = "online_features"
    __table_args__ = (Index("ix_online_features_written_at", "written_at"),)

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    as_of: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    feature_version: Mapped[str] = mapped_column(String(32))
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    written_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


metadata = Base.metadata

# Core tables, for executemany statements (the ORM would switch them to its per-primary-key bulk mode).
MEMBERS = cast(Table, Member.__table__)
ENTRIES = cast(Table, Entry.__table__)
LINES = cast(Table, Line.__table__)
LOTS = cast(Table, Lot.__table__)
ACTIVATIONS = cast(Table, Activation.__table__)
OFFER_EVENTS = cast(Table, OfferEvent.__table__)
