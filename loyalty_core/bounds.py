"""Every field's bounds in one place, read from the tables, so no check can allow more than a column holds.

PostgreSQL is the strictest backend we run on: ``VARCHAR(n)`` refuses what SQLite would store, ``INTEGER``
stops at 2^31 - 1, and ``text`` cannot hold NUL. A limit typed twice (once in the HTTP schema, once in the
ledger's checks, once in the table) drifts, and the drift surfaces as a 500 on PostgreSQL only. So the HTTP
schemas (``serving/api/schemas/``) and the ledger's checks (``validation.check_*``, ``offers.upsert_offer``)
take their limits from here, and here takes them from ``loyalty_core/schema.py``: widening a column widens
the API, narrowing it narrows the API, with nothing else to edit. ``tests/serving/api/schemas/test_bounds.py``
walks every route's OpenAPI schema against the columns its fields land in.

The grammar of amounts lives here too, for the same reason: one answer to "is ``1_000`` an amount?" (no).
"""

from __future__ import annotations

import math
import numbers
import re
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Integer, Numeric, String
from sqlalchemy.orm import InstrumentedAttribute

from loyalty_core.schema import Activation, Decision, Entry, Hold, Member, Offer


def column_type(attr: InstrumentedAttribute[Any]) -> Any:
    """The SQL type of a mapped column, as the migrations create it."""
    return attr.property.columns[0].type


def column_length(attr: InstrumentedAttribute[Any]) -> int:
    """Characters a ``String(n)`` column holds."""
    sql_type = column_type(attr)
    if not isinstance(sql_type, String) or sql_type.length is None:
        raise TypeError(f"{attr} is not a bounded string column")
    return int(sql_type.length)


def column_max(attr: InstrumentedAttribute[Any]) -> int | Decimal:
    """The largest value a numeric column holds on PostgreSQL (SQLite holds more; PostgreSQL refuses)."""
    sql_type = column_type(attr)
    if isinstance(sql_type, BigInteger):
        return 2**63 - 1
    if isinstance(sql_type, Integer):
        return 2**31 - 1
    if isinstance(sql_type, Numeric) and sql_type.precision is not None:
        scale = sql_type.scale or 0
        return Decimal(10) ** (sql_type.precision - scale) - Decimal(10) ** -scale
    raise TypeError(f"{attr} is not a bounded numeric column")


# --- strings ------------------------------------------------------------------------------------------------
CUSTOMER_ID_LEN = column_length(Member.id)
OFFER_ID_LEN = column_length(Offer.id)
DECISION_ID_LEN = column_length(Decision.id)
# The caller's idempotency ids (transactions, redemptions, reversals, holds, activities) are entry ext_ids.
EXT_ID_LEN = min(column_length(Entry.ext_id), column_length(Hold.id))
CATEGORY_LEN = column_length(Entry.category)
CHANNEL_LEN = column_length(Entry.channel)
CURRENCY_LEN = column_length(Entry.currency)
TIER_LEN = column_length(Offer.min_tier)
OFFER_NAME_LEN = column_length(Offer.name)
# Activity kinds land in the entry's JSON detail, but they are names of the rules file like categories.
LABEL_LEN = CATEGORY_LEN
ACTIVATION_EXT_ID_LEN = column_length(Activation.ext_id)

# C0 and C1 control characters (NUL among them: PostgreSQL text cannot hold it) and lone UTF-16 surrogates
# (a JSON "\ud800" decodes to one; it has no UTF-8 form, so the driver cannot send it).
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# The same rule for the OpenAPI document (JSON Schema regexes cannot name surrogates; pydantic refuses them).
NO_CONTROL_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text on every backend, or None when it can."""
    if _FORBIDDEN.search(value) is not None:
        return "must not contain control characters (such as NUL) or lone surrogates"
    return None


def id_problem(value: str, max_len: int) -> str | None:
    """Why ``value`` is not an id: ids are printable, not blank, and fit their column."""
    if not value.strip():
        return "must be a non-empty string"
    if len(value) > max_len:
        return f"is longer than {max_len} characters"
    if not value.isprintable():
        return "contains control or invisible characters"
    return None


# --- numbers ------------------------------------------------------------------------------------------------
MAX_POINTS = 10**12  # any single operation beyond it is a caller's bug; BIGINT columns hold far more
MAX_AMOUNT = Decimal(10) ** 12  # in the currency's units; Money columns hold 10^16
AMOUNT_PLACES = 2
BONUS_POINTS_MAX = min(MAX_POINTS, int(column_max(Offer.bonus_points)))
DURATION_DAYS_MAX = min(366, int(column_max(Offer.duration_days)))
MULTIPLIER_MAX = min(Decimal(10), Decimal(column_max(Offer.multiplier)))
MULTIPLIER_PLACES = 4

# An amount written as text: ASCII digits, an optional point and one or two decimals, nothing around them.
# ``Decimal()`` alone would take "1_000", " 10 ", "1e3", full-width (U+FF11) and Arabic-Indic (U+0661) digits.
AMOUNT_DIGITS = len(str(int(MAX_AMOUNT)))


def decimal_text_pattern(digits: int, places: int) -> str:
    """The grammar of a non-negative decimal written as text, for ``parse_decimal`` and the OpenAPI."""
    return rf"^[0-9]{{1,{digits}}}(\.[0-9]{{1,{places}}})?$"


AMOUNT_PATTERN = decimal_text_pattern(AMOUNT_DIGITS, AMOUNT_PLACES)
MULTIPLIER_PATTERN = decimal_text_pattern(len(str(int(MULTIPLIER_MAX))), MULTIPLIER_PLACES)
_PATTERNS: dict[str, re.Pattern[str]] = {}


def parse_decimal(value: object, *, pattern: str, places: int) -> Decimal:
    """A decimal as the exact value the caller wrote; ValueError says what is wrong with it.

    Text must follow ``pattern`` (see ``decimal_text_pattern``). A number is taken at its exact value: a
    ``Decimal`` as is (the API parses JSON numbers to ``Decimal``, so ``10.005`` arrives as written, not as
    the nearest float); a float (bulk imports) by its shortest repr, which is what the program that produced
    it printed. More than ``places`` decimal places is an error, never a rounding. The sign and the range
    are the caller's to check.
    """
    if isinstance(value, bool):
        raise ValueError("must be a number or a decimal string, not a boolean")
    if isinstance(value, str):
        compiled = _PATTERNS.get(pattern) or _PATTERNS.setdefault(pattern, re.compile(pattern, re.ASCII))
        if compiled.fullmatch(value) is None:  # not ``match``: its ``$`` admits a trailing newline
            raise ValueError(
                f"must be a decimal string of ASCII digits with at most {places} decimals and nothing "
                "around them, e.g. 1500.00"
            )
        return Decimal(value)
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, numbers.Integral):  # numpy's integers too (importers read frames)
        number = Decimal(int(value))
    elif isinstance(value, numbers.Real):
        real = float(value)
        number = Decimal(repr(real)) if math.isfinite(real) else Decimal(real)
    else:
        raise ValueError("must be a number or a decimal string")
    if not number.is_finite():
        raise ValueError("must be finite")
    if decimal_places(number) > places:
        raise ValueError(f"has more than {places} decimal places")
    return number


def parse_money(value: object) -> Decimal:
    """An amount in the currency's units: ``parse_decimal`` with ``AMOUNT_PATTERN``, 2 places."""
    return parse_decimal(value, pattern=AMOUNT_PATTERN, places=AMOUNT_PLACES)


def decimal_places(value: Decimal) -> int:
    """Decimal places of a finite value's exact value (``10.050`` has 2), without a context's rounding."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int), "finite values only"
    if not any(digits):
        return 0
    end = len(digits)
    while exponent < 0 and digits[end - 1] == 0:  # trailing zeros after the point do not change the value
        end -= 1
        exponent += 1
    return max(0, -exponent)
