"""Bodies of the offers routes: the catalogue and activations."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from loyalty_core import BONUS_POINTS_MAX, DURATION_DAYS_MAX
from serving.api.schemas.fields import (
    MAX_LIST,
    Amount,
    Category,
    Channel,
    CustomerId,
    DecisionId,
    Money,
    Multiplier,
    OfferName,
    Strict,
    Tier,
    TxnType,
)


class ActivationBody(Strict):
    customer_id: CustomerId
    decision_id: DecisionId | None = Field(
        default=None,
        description="The decision (ranking or campaign) that proposed the offer to this customer; it must "
        "exist, be served, belong to the customer and include the offer.",
    )


class OfferBody(Strict):
    name: OfferName | None = None
    kind: Literal["multiplier", "bonus_points", "cashback", "informational"]
    multiplier: Multiplier = Decimal(1)
    bonus_points: Annotated[int, Field(strict=True, ge=0, le=BONUS_POINTS_MAX)] = 0
    threshold: Amount | None = None
    categories: Annotated[list[Category], Field(max_length=MAX_LIST)] | None = None
    txn_types: Annotated[list[TxnType], Field(max_length=MAX_LIST)] | None = None
    channels: Annotated[list[Channel], Field(max_length=MAX_LIST)] | None = None
    duration_days: Annotated[int, Field(strict=True, ge=1, le=DURATION_DAYS_MAX)]
    cost: Money = Decimal(0)
    value: Money = Decimal(0)
    min_tier: Tier | None = Field(
        default=None, description="One of the rules file's tiers (base, silver, gold...); null: open to all."
    )
    active: Annotated[bool, Field(strict=True)] = True


class ActivationOut(BaseModel):
    activation_id: int
    offer_id: str
    customer_id: str
    decision_id: str | None
    kind: str
    multiplier: float
    activated_at: dt.datetime
    expires_at: dt.datetime
    completed_at: dt.datetime | None


class OfferOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    offer_id: str = Field(validation_alias="id")
    name: str
    kind: str
    multiplier: Decimal
    bonus_points: int
    threshold: Decimal | None
    categories: list[str] | None
    txn_types: list[str] | None
    channels: list[str] | None
    duration_days: int
    cost: Decimal
    value: Decimal
    min_tier: str | None
    active: bool
