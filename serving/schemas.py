"""Request and response bodies of the HTTP API, apart from the tables.

Requests are strict on purpose: a bank's core system that sends ``"amount": true`` or a naive timestamp has
a bug, and guessing what it meant would put wrong points in the ledger. So extra fields, booleans for numbers,
numeric strings for point counts, NaN/infinity, more than two decimals and timestamps without an offset are
all refused with 422 naming the field. The ledger validates again (it also serves the bulk importer); these
models exist so that the refusal happens before a request costs a database round trip, and so that the
OpenAPI document tells callers the rules.

Every limit comes from ``loyalty_core.bounds``, which reads it from the table the field lands in: a field
that allowed more than its column would be a 500 on PostgreSQL. Every string refuses control characters
(PostgreSQL text cannot hold NUL); amounts follow one strict grammar (``bounds.parse_decimal``).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from loyalty_core import (
    AMOUNT_PATTERN,
    AMOUNT_PLACES,
    BONUS_POINTS_MAX,
    CATEGORY_LEN,
    CHANNEL_LEN,
    CURRENCY_LEN,
    CUSTOMER_ID_LEN,
    DECISION_ID_LEN,
    DURATION_DAYS_MAX,
    EXT_ID_LEN,
    LABEL_LEN,
    MULTIPLIER_MAX,
    MULTIPLIER_PATTERN,
    MULTIPLIER_PLACES,
    NO_CONTROL_PATTERN,
    OFFER_ID_LEN,
    OFFER_NAME_LEN,
    TIER_LEN,
    id_problem,
    parse_decimal,
    text_problem,
)
from loyalty_core import MAX_AMOUNT as bounds_MAX_AMOUNT
from loyalty_core import MAX_POINTS as bounds_MAX_POINTS

MAX_AMOUNT = bounds_MAX_AMOUNT
MAX_POINTS = bounds_MAX_POINTS
MAX_LIST = 100  # categories, channels... of one offer: a catalogue entry, not a data dump


def _storable(value: str) -> str:
    if (problem := text_problem(value)) is not None:
        raise ValueError(problem)
    return value


def _id_checker(max_length: int) -> AfterValidator:
    """The ledger's ``check_id`` rule (printable, not blank), so the API refuses what the ledger would."""

    def check(value: str) -> str:
        if (problem := id_problem(value, max_length)) is not None:
            raise ValueError(problem)
        return value

    return AfterValidator(check)


def _length(max_length: int, min_length: int = 1) -> StringConstraints:
    return StringConstraints(strict=True, min_length=min_length, max_length=max_length)


# Shown in the OpenAPI document; the validators say it in words ("must not contain control characters").
_NO_CONTROL = Field(json_schema_extra={"pattern": NO_CONTROL_PATTERN})
_STORABLE = AfterValidator(_storable)


def _decimal(places: int, pattern: str) -> Any:
    def parse(value: Any) -> Any:
        return parse_decimal(value, pattern=pattern, places=places)

    return parse


def _decimal_schema(pattern: str, **number: Any) -> dict[str, Any]:
    return {"anyOf": [{"type": "number", **number}, {"type": "string", "pattern": pattern}]}


CustomerId = Annotated[str, _length(CUSTOMER_ID_LEN), _id_checker(CUSTOMER_ID_LEN), _NO_CONTROL]
OfferId = Annotated[str, _length(OFFER_ID_LEN), _id_checker(OFFER_ID_LEN), _NO_CONTROL]
DecisionId = Annotated[str, _length(DECISION_ID_LEN), _id_checker(DECISION_ID_LEN), _NO_CONTROL]
# The caller's idempotency ids: transactions, redemptions, reversals, holds, activities.
ExtId = Annotated[str, _length(EXT_ID_LEN), _id_checker(EXT_ID_LEN), _NO_CONTROL]
_AMOUNT_DOC = (
    "In the currency's units, at most 2 decimals: a JSON number, or a string of ASCII digits with an "
    "optional point and one or two decimals (no sign, exponent, separator or space)."
)
Amount = Annotated[
    Decimal,
    BeforeValidator(_decimal(AMOUNT_PLACES, AMOUNT_PATTERN)),
    Field(gt=0, le=MAX_AMOUNT, decimal_places=AMOUNT_PLACES, allow_inf_nan=False),
    WithJsonSchema(
        {
            **_decimal_schema(AMOUNT_PATTERN, exclusiveMinimum=0, maximum=int(MAX_AMOUNT)),
            "description": _AMOUNT_DOC,
            "examples": ["1500.00"],
        }
    ),
]
# Money that may be zero: an offer's cost and value, a campaign's budget.
Money = Annotated[
    Decimal,
    BeforeValidator(_decimal(AMOUNT_PLACES, AMOUNT_PATTERN)),
    Field(ge=0, le=MAX_AMOUNT, decimal_places=AMOUNT_PLACES, allow_inf_nan=False),
    WithJsonSchema(
        {
            **_decimal_schema(AMOUNT_PATTERN, minimum=0, maximum=int(MAX_AMOUNT)),
            "description": _AMOUNT_DOC,
        }
    ),
]
Multiplier = Annotated[
    Decimal,
    BeforeValidator(_decimal(MULTIPLIER_PLACES, MULTIPLIER_PATTERN)),
    Field(ge=1, le=MULTIPLIER_MAX, decimal_places=MULTIPLIER_PLACES, allow_inf_nan=False),
    WithJsonSchema(_decimal_schema(MULTIPLIER_PATTERN, minimum=1, maximum=int(MULTIPLIER_MAX))),
]
Points = Annotated[int, Field(strict=True, gt=0, le=MAX_POINTS, description="Whole points.")]
TxnType = Literal["purchase", "bill_payment", "transfer"]
Reward = Literal["cashback", "discount", "gift", "charity"]
Label = Annotated[str, _length(LABEL_LEN), _STORABLE, _NO_CONTROL]
Category = Annotated[str, _length(CATEGORY_LEN), _STORABLE, _NO_CONTROL]
Tier = Annotated[str, _length(TIER_LEN), _STORABLE, _NO_CONTROL]
OfferName = Annotated[str, _length(OFFER_NAME_LEN, 0), _STORABLE, _NO_CONTROL]


def _iso_text(value: Any) -> Any:
    """Refuse numbers where a timestamp is due: pydantic would read ``0.5`` as seconds after 1970."""
    if isinstance(value, int | float | Decimal) or (isinstance(value, str) and not _ISO_START.match(value)):
        raise ValueError("must be an ISO 8601 timestamp with an offset, e.g. 2024-05-01T10:00:00+03:00")
    return value


_ISO_START = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _representable(value: dt.datetime) -> dt.datetime:
    """Refuse instants the ledger cannot hold: ``0001-01-01T00:00+00:01`` has no UTC date at all."""
    try:
        utc = value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("is out of the representable range of timestamps") from None
    if utc.year < 1970:
        raise ValueError("must not be before 1970-01-01T00:00:00Z")
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_representable)]
Channel = Annotated[str, _length(CHANNEL_LEN), _STORABLE, _NO_CONTROL]
Currency = Annotated[str, StringConstraints(strict=True, max_length=CURRENCY_LEN, pattern=r"^[A-Za-z]{3}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class ReviewOut(BaseModel):
    transaction_id: str
    customer_id: str
    status: Literal["released", "rejected"]
    points: int
    balance: int


class RedemptionReviewOut(BaseModel):
    redemption_id: str
    customer_id: str
    status: Literal["released", "rejected"]
    points: int = Field(description="The redemption's points: spent on release, freed on rejection.")
    balance: int


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
    models: dict[str, Any]


# --- decisions and feedback ---------------------------------------------------------------------------------


class FeedbackBody(Strict):
    decision_id: DecisionId
    offer_id: OfferId
    event: Literal["shown", "viewed", "accepted", "completed"]


class FeedbackOut(BaseModel):
    decision_id: str
    offer_id: str
    customer_id: str
    event: str
    recorded_at: dt.datetime = Field(description="When this event was first recorded (a replay keeps it).")
    replayed: bool


# --- scoring and decisions ----------------------------------------------------------------------------------

MAX_SCORE_BATCH = 1000
MAX_SLATE = 10
MAX_CAMPAIGN = 100_000
Probability = Annotated[float, Field(ge=0, le=1)]


class ScoreBody(Strict):
    customer_ids: list[CustomerId] = Field(
        min_length=1,
        max_length=MAX_SCORE_BATCH,
        description=f"1 to {MAX_SCORE_BATCH} customers, scored in one model call; answers keep this order.",
    )


class OfferPropensityOut(BaseModel):
    offer_id: str
    propensity: Probability = Field(description="P(the customer completes the offer if it is sent).")
    uplift: float | None = Field(
        default=None,
        description="How much sending it raises that probability (uplift model); null without an estimate.",
    )


class CustomerScoreOut(BaseModel):
    customer_id: str
    churn_probability: Probability
    bonus_multiplier: float = Field(description="The earning multiplier the budget's shadow price grants.")
    offers: list[OfferPropensityOut] = Field(description="Every active offer, most likely first.")
    known: bool = Field(
        description="False for a customer without a row in the online features (a new member): scored "
        "from an all-missing vector, i.e. like an average newcomer."
    )
    features_as_of: dt.datetime | None = None


class ScoreOut(BaseModel):
    scores: list[CustomerScoreOut]
    model_versions: dict[str, str]


class RankBody(Strict):
    customer_id: CustomerId
    k: Annotated[int, Field(strict=True, ge=1, le=MAX_SLATE)] = Field(
        default=1, description="Offers wanted; fewer come back when fewer are eligible or the caps are near."
    )
    channel: Channel | None = Field(default=None, description="Where the offers will be shown (app, web...).")


class ReasonOut(BaseModel):
    feature: str
    phrase: str
    contribution: float = Field(description="The feature's share of the score, in log-odds (TreeSHAP).")
    value: float | None


class RankedOfferOut(BaseModel):
    offer_id: str
    rank: int
    score: Probability = Field(description="P(completion | offer sent), the offer model's calibrated score.")
    expected_value: float = Field(
        description="Expected incremental value in RUB: uplift x value - p x cost, or p x (value - cost) "
        "where no uplift estimate exists (see source)."
    )
    probability: Probability = Field(description="The chance the policy had of choosing this offer.")
    source: Literal["uplift", "propensity"]
    reasons: list[ReasonOut] = Field(description="Features that raised this offer's score the most.")


class RankOut(BaseModel):
    decision_id: str = Field(description="Send it back with feedback and activations of these offers.")
    customer_id: str
    policy: str
    offers: list[RankedOfferOut]
    model_versions: dict[str, str]
    known: bool
    features_as_of: dt.datetime | None = None


class CampaignBody(Strict):
    offer_id: OfferId
    budget: Money | None = Field(
        default=None, description="Most expected cost (RUB, completions x the offer's cost) to spend."
    )
    limit: Annotated[int, Field(strict=True, ge=1, le=MAX_CAMPAIGN)] = Field(
        default=1000, description="Most customers to target."
    )
    channel: Channel | None = Field(default=None, description="The campaign's channel (for the caps).")
    rank_by: Literal["value", "value_per_cost"] = "value"


class CampaignCustomerOut(BaseModel):
    rank: int
    customer_id: str
    decision_id: str
    p_complete: Probability
    expected_value: float
    expected_cost: float
    cumulative_cost: float
    source: Literal["uplift", "propensity"]


class CampaignOut(BaseModel):
    campaign_id: str = Field(description="Also the decisions' policy, as campaign:<campaign_id>.")
    offer_id: str
    customers: list[CampaignCustomerOut]
    considered: int = Field(description="Customers in the online features.")
    eligible: int = Field(
        description="Of those, customers the offer may be sent to (caps, tier, activations)."
    )
    expected_value: float = Field(description="Sum over the targeted customers, RUB.")
    expected_cost: float
    model_versions: dict[str, str]


class SlotStatusOut(BaseModel):
    status: Literal["ok", "degraded", "absent"] = Field(
        description="absent: an optional model that does not exist."
    )
    version: str | None
    loaded_at: dt.datetime | None
    error: str | None


class ReloadOut(BaseModel):
    status: Literal["ok", "degraded"]
    models: dict[str, SlotStatusOut]


class EstimateOut(BaseModel):
    value: float = Field(description="Estimated mean reward per decision (RUB) had the challenger served.")
    se: float
    ci95: tuple[float, float]
    n: int
    ess: float = Field(description="Effective sample size of the importance weights.")
    clipped: int
    max_weight: float


class ShadowOut(BaseModel):
    champion: str = Field(description="The served policy.")
    challenger: str | None = Field(description="The shadow policy (null when shadow mode is off).")
    decisions: int = Field(description="Served decisions with a shadow decision beside them.")
    agreement_rate: float | None = Field(description="Share of them where both chose the same first offer.")
    completed: int = Field(description="Of those, decisions whose first offer was completed.")
    logged_value: float | None = Field(
        description="Mean reward per decision the champion actually got (RUB)."
    )
    estimates: dict[str, EstimateOut] = Field(
        description="Off-policy estimates of the challenger's mean reward per decision (ips, snips, dr)."
    )
    note: str | None = None
