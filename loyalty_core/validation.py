"""The ledger's own checks of the ids, amounts and points a caller gives it.

The ledger checks whoever calls (the API, the importers, a notebook): the API's schemas apply the same
bounds (``bounds``), but the ledger does not rely on them.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from loyalty_core import bounds
from loyalty_core.errors import InvalidInput
from loyalty_core.rules import REWARDS

MAX_AMOUNT = bounds.MAX_AMOUNT  # 10^12 in the currency's units: anything larger is a caller's bug
MAX_ID_LEN = bounds.CUSTOMER_ID_LEN
# How far ahead of our clock a caller's timestamp may be (its clock runs fast) before it is refused.
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
CENT = Decimal("0.01")


def check_id(value: object, name: str, max_len: int = MAX_ID_LEN) -> str:
    """The ledger's own check of an id (it also serves the importers); the API's schemas apply the same."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a non-empty string", field=name)
    if (problem := bounds.id_problem(value, max_len)) is not None:
        raise InvalidInput(f"{name} {problem}", field=name)
    return value


def check_amount(value: object, name: str = "amount") -> Decimal:
    """A positive amount of at most 2 decimals, in the grammar of ``bounds.parse_money`` (no rounding)."""
    try:
        amount = bounds.parse_money(value)
    except ValueError as exc:
        raise InvalidInput(f"{name} {exc}", field=name) from None
    if amount <= 0:
        raise InvalidInput(f"{name} must be positive, got {amount}", field=name)
    if amount > MAX_AMOUNT:
        raise InvalidInput(f"{name} {amount} is beyond any plausible transaction", field=name)
    return amount.quantize(CENT)


def check_points(points: object, name: str = "points") -> int:
    if isinstance(points, bool) or not isinstance(points, int):
        raise InvalidInput(f"{name} must be a whole number", field=name)
    if points <= 0 or points > bounds.MAX_POINTS:
        raise InvalidInput(f"{name} must be between 1 and {bounds.MAX_POINTS}, got {points}", field=name)
    return points


def check_reward(reward: str) -> str:
    if reward not in REWARDS:
        raise InvalidInput(f"reward must be one of {', '.join(REWARDS)}, got {reward!r}", field="reward")
    return reward
