"""The field types every request and response body is built from, apart from the tables.

Requests are strict on purpose: a bank's core system that sends ``"amount": true`` or a naive timestamp has
a bug, and guessing what it meant would put wrong points in the ledger. So extra fields, booleans for numbers,
numeric strings for point counts, NaN/infinity, more than two decimals and timestamps without an offset are
all refused with 422 naming the field. The ledger validates again (it also serves the bulk importer); these
models exist so that the refusal happens before a request costs a database round trip, and so that the
OpenAPI document tells callers the rules.

Every limit comes from ``loyalty_core.bounds``, which reads it from the table the field lands in: a field
that allowed more than its column would be a 500 on PostgreSQL. Every string refuses control characters
(PostgreSQL text cannot hold NUL); amounts follow one strict grammar (``loyalty_core.parse_decimal``).
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
    CATEGORY_LEN,
    CHANNEL_LEN,
    CURRENCY_LEN,
    CUSTOMER_ID_LEN,
    DECISION_ID_LEN,
    EXT_ID_LEN,
    LABEL_LEN,
    MAX_AMOUNT,
    MAX_POINTS,
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


# One probability, as every answer of the models and the policy gives it.
Probability = Annotated[float, Field(ge=0, le=1)]
