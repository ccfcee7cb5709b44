"""Reason codes: the few features that pushed a customer's score up the most, said the way a marketer talks.

LightGBM's ``pred_contrib`` splits each raw score (log-odds) exactly into one contribution per feature plus
a bias (TreeSHAP). The features with the largest contributions towards the score are "why this customer";
the wording comes from where the customer's value sits against the training median: a churn score raised
by ``spend_trend`` reads "spent less in the last 30 days than before" when the customer's trend is below
the median, not a bare column name.

``PHRASES`` holds the hand-written wording (feature -> (when above the median, when below)),
``NEUTRAL_PHRASES`` one phrase for unordered categories; any other feature gets a generic phrase built
from its name (``txn_amount_mean_30d`` -> "average transaction amount in the last 30 days is higher than
usual").
Add a line to ``PHRASES`` when a new feature shows up in reason codes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# feature -> (phrase when the customer's value is above the reference, phrase when below); names are those
# of pipelines/catalogue.py (docs/features.md) and of models.offers
PHRASES: dict[str, tuple[str, str]] = {
    # recency, frequency, value
    "days_since_last_txn": ("has not transacted for a while", "transacted recently"),
    "recency_gap_ratio": ("is overdue for their usual next transaction", "transacts at their usual rhythm"),
    "mean_gap_days_365d": ("usually goes long between transactions", "usually transacts at short intervals"),
    "txn_count_7d": ("transacted often in the last week", "transacted rarely in the last week"),
    "txn_count_30d": ("transacted often in the last 30 days", "transacted rarely in the last 30 days"),
    "txn_count_90d": ("transacted often in the last 90 days", "transacted rarely in the last 90 days"),
    "txn_count_365d": ("transacted often over the last year", "transacted rarely over the last year"),
    "txn_amount_30d": ("spent a lot in the last 30 days", "spent little in the last 30 days"),
    "txn_amount_90d": ("spent a lot in the last 90 days", "spent little in the last 90 days"),
    "txn_amount_365d": ("spent a lot over the last year", "spent little over the last year"),
    "active_days_30d": ("was active on many days this month", "was active on few days this month"),
    "active_days_90d": ("was active on many days lately", "was active on few days lately"),
    "active_months_12m": ("was active in most months of the year", "was active in few months of the year"),
    "spend_trend_30d": (
        "spent more in the last 30 days than before",
        "spent less in the last 30 days than before",
    ),
    "spend_trend_90d": (
        "spent more in the last 90 days than before",
        "spent less in the last 90 days than before",
    ),
    "txn_trend_30d": ("transacts more often than before", "transacts less often than before"),
    "bill_months_12m": ("pays bills through the bank most months", "seldom pays bills through the bank"),
    "bill_payment_share_365d": ("pays many bills through the bank", "pays few bills through the bank"),
    "categories_365d": ("buys across many categories", "buys in few categories"),
    "channel_app_share_365d": ("mostly uses the app", "rarely uses the app"),
    "tenure_days": ("has been a member for a long time", "joined the programme recently"),
    "age_years": ("is older than most customers", "is younger than most customers"),
    "income": ("earns more than most customers", "earns less than most customers"),
    "income_band": ("earns more than most customers", "earns less than most customers"),
    # points and tiers
    "points_balance": ("holds a large points balance", "holds few points"),
    "points_earned_90d": ("earned many points lately", "earned few points lately"),
    "points_expiring_30d": ("has points expiring within 30 days", "has few points about to expire"),
    "points_expiring_90d": ("has points expiring within 90 days", "has few points about to expire"),
    "points_expired_365d": ("lost points to expiry this year", "lost few points to expiry"),
    "redemptions_365d": ("redeems points often", "rarely redeems points"),
    "redemption_rate_365d": ("spends most of the points earned", "spends few of the points earned"),
    "days_since_last_redemption": ("has not redeemed points for a while", "redeemed points recently"),
    "tier": ("holds a high tier", "holds a low tier"),
    "spend_to_next_tier": ("is far from the next tier", "is close to the next tier"),
    # offer history
    "offers_sent_90d": ("received many offers lately", "received few offers lately"),
    "offer_view_rate": ("looks at most offers sent", "ignores most offers sent"),
    "offer_completion_rate": ("usually completes the offers sent", "seldom completes the offers sent"),
    "days_since_last_offer": ("has not had an offer for a while", "had an offer recently"),
    "offers_active": ("has offers active right now", "has no offer active right now"),
    # offer attributes (models.offers)
    "offer_multiplier": ("the offer multiplies points generously", "the offer's multiplier is small"),
    "offer_bonus_points": ("the offer pays many bonus points", "the offer pays few bonus points"),
    "offer_threshold": ("the offer needs a large purchase", "the offer needs only a small purchase"),
    "offer_duration_days": ("the offer runs for a long time", "the offer runs for a short time"),
    "offer_any_category": ("the offer counts any purchase", "the offer is limited to some categories"),
    "offer_kind_multiplier": ("it is a points-multiplier offer", "it is not a points-multiplier offer"),
    "offer_kind_bonus_points": ("it is a bonus-points offer", "it is not a bonus-points offer"),
    "offer_kind_cashback": ("it is a cashback offer", "it is not a cashback offer"),
    "offer_kind_informational": ("it is an informational message", "it is not an informational message"),
}
# integer-coded categories without an order: "above the median" means nothing, so one phrase either way
NEUTRAL_PHRASES: dict[str, str] = {
    "region": "where the customer lives",
    "gender": "the customer's gender",
    "preferred_channel": "the customer's preferred channel",
}

_WINDOW = re.compile(r"^(\d+)([dwmy])$")
_UNITS = {"d": "days", "w": "weeks", "m": "months", "y": "years"}
_WORDS = {
    "txn": "transaction",
    "txns": "transactions",
    "category": "",
    "cnt": "number of",
    "count": "number of",
    "n": "number of",
    "num": "number of",
    "amt": "amount",
    "avg": "average",
    "mean": "average",
    "pct": "share of",
    "share": "share of",
    "qty": "quantity",
    "std": "variability of",
    "days": "days",
    "since": "since",
}
_LEADING = {"number of", "share of", "average", "variability of"}


@dataclass(frozen=True, slots=True)
class Reason:
    feature: str
    phrase: str
    contribution: float  # to the raw score (log-odds) of this row
    value: float | None  # the customer's value (None when missing)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def humanize(feature: str) -> str:
    """``txn_count_90d`` -> "number of transactions in the last 90 days"; unknown words are kept as is."""
    tokens = [t for t in re.split(r"[_\W]+", feature.lower()) if t]
    window = ""
    words: list[str] = []
    for token in tokens:
        m = _WINDOW.match(token)
        if m:
            n, unit = m.groups()
            window = f" in the last {n} {_UNITS[unit] if n != '1' else _UNITS[unit][:-1]}"
            continue
        words.append(_WORDS.get(token, token))
    leading = [w for w in words if w in _LEADING]
    rest = [w for w in words if w and w not in _LEADING]
    if "number of" in leading and rest and rest[0] == "transaction":
        rest[0] = "transactions"
    text = " ".join([*leading, *rest]) or feature
    return text + window


def describe(
    feature: str,
    value: float | None,
    reference: float | None,
    phrases: Mapping[str, tuple[str, str]] = PHRASES,
) -> str:
    """One phrase for ``feature`` at ``value``; direction taken against ``reference`` (training median)."""
    if feature in NEUTRAL_PHRASES:
        return NEUTRAL_PHRASES[feature]
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    if missing:
        return f"no {humanize(feature)} on record"
    assert value is not None
    if reference is None or (isinstance(reference, float) and math.isnan(reference)):
        reference = 0.0
    binary = value in (0.0, 1.0) and reference in (0.0, 1.0)
    if value > reference or (binary and value == 1.0):
        above = True
    elif value < reference or binary:
        above = False
    else:
        return f"{humanize(feature)} is at a typical level"
    if feature in phrases:
        return phrases[feature][0 if above else 1]
    if binary:
        return f"has {humanize(feature)}" if above else f"does not have {humanize(feature)}"
    return f"{humanize(feature)} is {'higher' if above else 'lower'} than usual"


def explain(
    contributions: np.ndarray,
    matrix: np.ndarray,
    features: Sequence[str],
    reference: Mapping[str, float] | None = None,
    *,
    k: int = 3,
    phrases: Mapping[str, tuple[str, str]] = PHRASES,
    towards: str = "up",
) -> list[list[Reason]]:
    """The top ``k`` reasons per row.

    ``contributions`` is LightGBM's ``pred_contrib`` output (n x (features + 1), the last column the bias);
    ``towards="up"`` keeps only features that raised the score (why this customer is at risk / likely to
    respond), ``"down"`` only those that lowered it, ``"both"`` ranks by absolute size.
    """
    contributions = np.asarray(contributions, dtype=np.float64)
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    if contributions.ndim == 1:
        contributions = contributions.reshape(1, -1)
    n_features = len(features)
    if contributions.shape[1] != n_features + 1 or matrix.shape[1] != n_features:
        raise ValueError(
            f"contributions {contributions.shape} and matrix {matrix.shape} do not fit {n_features} features"
        )
    if towards not in ("up", "down", "both"):
        raise ValueError(f"towards must be 'up', 'down' or 'both', got {towards!r}")
    per_feature = contributions[:, :n_features]
    if towards == "up":
        key = np.where(per_feature > 0, per_feature, -np.inf)
    elif towards == "down":
        key = np.where(per_feature < 0, -per_feature, -np.inf)
    else:
        key = np.abs(per_feature)
    k = max(0, min(k, n_features))
    order = np.argsort(-key, axis=1, kind="stable")[:, :k]
    ref = reference or {}
    out: list[list[Reason]] = []
    for i in range(per_feature.shape[0]):
        reasons: list[Reason] = []
        for j in order[i]:
            if not np.isfinite(key[i, j]) or key[i, j] == 0.0:
                break
            name = features[j]
            raw = float(matrix[i, j])
            value = None if math.isnan(raw) else raw
            reasons.append(
                Reason(name, describe(name, value, ref.get(name), phrases), float(per_feature[i, j]), value)
            )
        out.append(reasons)
    return out
