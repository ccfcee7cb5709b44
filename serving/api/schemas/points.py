"""Bodies of the points routes: postings, reversals, redemptions, activities, holds, balances."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from serving.api.schemas.fields import (
    Amount,
    Category,
    Channel,
    Currency,
    CustomerId,
    ExtId,
    Label,
    Points,
    Reward,
    Strict,
    Timestamp,
    TxnType,
)
from serving.api.schemas.offers import ActivationOut

# --- requests -----------------------------------------------------------------------------------------------


class TransactionBody(Strict):
    transaction_id: ExtId
    customer_id: CustomerId
    type: TxnType
    amount: Amount
    occurred_at: Timestamp = Field(description="ISO 8601 with an offset, e.g. 2024-05-01T10:00:00+03:00.")
    category: Category | None = None
    channel: Channel | None = None
    currency: Currency | None = None


class ReversalBody(Strict):
    reversal_id: ExtId
    amount: Amount | None = Field(default=None, description="Refunded amount; omit for a full reversal.")


class RedemptionBody(Strict):
    redemption_id: ExtId
    customer_id: CustomerId
    points: Points
    reward: Reward


class ActivityBody(Strict):
    activity_id: ExtId
    customer_id: CustomerId
    kind: Label = Field(description="One of the rules file's activities (social, referral, survey...).")


class HoldBody(Strict):
    hold_id: ExtId
    customer_id: CustomerId
    points: Points
    reward: Reward
    timeout_seconds: Annotated[int, Field(strict=True, ge=1, le=86400)] | None = Field(
        default=None, description="Default: the rules file's hold timeout."
    )


# --- responses ----------------------------------------------------------------------------------------------


class PostingOut(BaseModel):
    transaction_id: str
    customer_id: str
    points: int = Field(description="Points credited; 0 while the posting is held.")
    multiplier: float
    balance: int
    status: Literal["posted", "held"]
    tier: str
    reason: str | None = Field(default=None, description="Why a held posting awaits review.")


class ReversalOut(BaseModel):
    reversal_id: str
    transaction_id: str
    customer_id: str
    amount: Decimal
    points_reversed: int
    balance: int
    debt: int = Field(
        description="Points clawed back that the balance could not cover; later earnings settle it."
    )


class RedemptionOut(BaseModel):
    redemption_id: str
    customer_id: str
    points: int
    reward: str
    status: Literal["posted", "held"]
    balance: int
    reason: str | None = None


class ActivityOut(BaseModel):
    activity_id: str
    customer_id: str
    kind: str
    points: int
    balance: int


class HoldOut(BaseModel):
    hold_id: str
    customer_id: str
    points: int
    status: Literal["active", "captured", "voided"]
    balance: int
    available: int | None = Field(default=None, description="Spendable points left after this hold.")
    expires_at: dt.datetime | None = None
    reason: Literal["timeout"] | None = Field(
        default=None, description="Why a hold was voided without a till's void: it timed out."
    )


class ExpiringOut(BaseModel):
    points: int
    expires_at: dt.datetime


class CustomerOut(BaseModel):
    customer_id: str
    balance: int
    available: int = Field(description="Balance minus active holds and lots past their expiry.")
    held: int
    debt: int
    tier: str
    expiring: list[ExpiringOut]
    active_offers: list[ActivationOut]
    member_since: dt.datetime


class BalanceOut(BaseModel):
    customer_id: str
    as_of: dt.datetime
    balance: int
    debt: int
