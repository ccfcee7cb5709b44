"""Reason codes: the few features that moved a customer's score the most, said the way a marketer talks.

LightGBM's ``pred_contrib`` splits each raw score (log-odds) exactly into one contribution per feature plus
a bias (TreeSHAP). The features with the largest contributions towards the score are "why this customer",
chosen by the direction and size of the contribution: only those that pushed the way asked, by at least
``MIN_CONTRIBUTION``. The wording comes from which side of the training median the customer's value sits
on: a churn score raised by ``spend_trend_30d`` reads "spent less in the last 30 days than in the months
before" when the trend is below the median. Every phrase compares the customer with most customers (or with
their own past), so it is true of anyone on that side of the median whatever the score: no phrase claims
more than the value says ("has already left" for a probability of 1 %).

``PHRASES`` holds the wording (input -> (above the median, below)) of every input a model may read (the
feature catalogue, the BG/NBD and customer x offer columns of ``models.assemble``, the offer attributes);
``FLAGS`` the yes/no inputs, ``MISSING_PHRASES`` what a missing value means, ``NEUTRAL_PHRASES`` one phrase
for unordered categories. An input without a phrase (a new feature) still reads as words built from its
name, and ``tests/models/test_reasons.py`` fails until it has one. ``docs/reason_phrases.md`` shows them all
(``python -m models.reasons``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# feature -> (phrase when the customer's value is above the reference, phrase when below). The reference is
# the training median, so every phrase compares the customer with most customers (or with their own past):
# it is true for anyone on that side of the median, whatever the score, and never claims more ("has already
# left") than the value says. Names are those of pipelines/catalogue.py (docs/features.md), of the model
# inputs built in models.assemble and of the offer attributes of models.offers; docs/reason_phrases.md shows
# them all (tests/models/test_reasons.py keeps it current).
PHRASES: dict[str, tuple[str, str]] = {
    # recency, frequency, value
    "days_since_last_txn": (
        "has gone longer without a transaction than most customers",
        "transacted more recently than most customers",
    ),
    "days_since_first_txn": (
        "has banked with us longer than most customers",
        "started transacting with us more recently than most customers",
    ),
    "recency_gap_ratio": (
        "is overdue for their usual next transaction",
        "is keeping to their usual rhythm of transactions",
    ),
    "mean_gap_days_365d": (
        "usually leaves longer gaps between transactions than most customers",
        "usually transacts at shorter intervals than most customers",
    ),
    "txn_count_7d": (
        "transacted more often last week than most customers",
        "transacted less often last week than most customers",
    ),
    "txn_count_30d": (
        "transacted more often in the last 30 days than most customers",
        "transacted less often in the last 30 days than most customers",
    ),
    "txn_count_90d": (
        "transacted more often in the last 90 days than most customers",
        "transacted less often in the last 90 days than most customers",
    ),
    "txn_count_365d": (
        "transacted more often over the last year than most customers",
        "transacted less often over the last year than most customers",
    ),
    "txn_amount_7d": ("spent more last week than most customers", "spent less last week than most customers"),
    "txn_amount_30d": (
        "spent more in the last 30 days than most customers",
        "spent less in the last 30 days than most customers",
    ),
    "txn_amount_90d": (
        "spent more in the last 90 days than most customers",
        "spent less in the last 90 days than most customers",
    ),
    "txn_amount_365d": (
        "spent more over the last year than most customers",
        "spent less over the last year than most customers",
    ),
    "txn_amount_mean_30d": (
        "made larger transactions in the last 30 days than most customers",
        "made smaller transactions in the last 30 days than most customers",
    ),
    "txn_amount_mean_365d": (
        "makes larger transactions than most customers",
        "makes smaller transactions than most customers",
    ),
    "txn_amount_max_365d": (
        "made a larger single transaction this year than most customers",
        "made no large single transaction this year",
    ),
    "txn_amount_std_365d": (
        "has transaction amounts that vary more than most customers'",
        "has transaction amounts that vary less than most customers'",
    ),
    "txn_points_365d": (
        "earned more points from transactions this year than most customers",
        "earned fewer points from transactions this year than most customers",
    ),
    "active_days_30d": (
        "was active on more days this month than most customers",
        "was active on fewer days this month than most customers",
    ),
    "active_days_90d": (
        "was active on more days in the last 90 days than most customers",
        "was active on fewer days in the last 90 days than most customers",
    ),
    "active_months_12m": (
        "was active in more months of the year than most customers",
        "was active in fewer months of the year than most customers",
    ),
    "spend_trend_30d": (
        "spent more in the last 30 days than in the months before",
        "spent less in the last 30 days than in the months before",
    ),
    "spend_trend_90d": (
        "spent more in the last 90 days than in the 90 days before",
        "spent less in the last 90 days than in the 90 days before",
    ),
    "txn_trend_30d": (
        "transacted more often in the last 30 days than in the months before",
        "transacted less often in the last 30 days than in the months before",
    ),
    "weekend_share_365d": (
        "does more of their banking at weekends than most customers",
        "does less of their banking at weekends than most customers",
    ),
    # transaction types
    "purchase_count_90d": (
        "made more card purchases in the last 90 days than most customers",
        "made fewer card purchases in the last 90 days than most customers",
    ),
    "purchase_amount_90d": (
        "spent more on purchases in the last 90 days than most customers",
        "spent less on purchases in the last 90 days than most customers",
    ),
    "purchase_share_365d": (
        "uses the bank for purchases more than most customers",
        "uses the bank for purchases less than most customers",
    ),
    "bill_payment_count_90d": (
        "paid more bills through the bank in the last 90 days than most customers",
        "paid fewer bills through the bank in the last 90 days than most customers",
    ),
    "bill_payment_amount_90d": (
        "paid larger bills through the bank in the last 90 days than most customers",
        "paid smaller bills through the bank in the last 90 days than most customers",
    ),
    "bill_payment_share_365d": (
        "uses the bank for bill payments more than most customers",
        "uses the bank for bill payments less than most customers",
    ),
    "transfer_count_90d": (
        "made more transfers in the last 90 days than most customers",
        "made fewer transfers in the last 90 days than most customers",
    ),
    "transfer_amount_90d": (
        "transferred more money in the last 90 days than most customers",
        "transferred less money in the last 90 days than most customers",
    ),
    "transfer_share_365d": (
        "uses the bank for transfers more than most customers",
        "uses the bank for transfers less than most customers",
    ),
    # categories and channels (the per-category and per-channel shares are built below)
    "categories_365d": (
        "spends across more categories than most customers",
        "spends in fewer categories than most customers",
    ),
    "category_entropy_365d": (
        "spreads their spending over categories more evenly than most customers",
        "concentrates their spending in fewer categories than most customers",
    ),
    # rhythms of the month
    "salary_day_365d": (
        "does most of their spending later in the month than most customers",
        "does most of their spending earlier in the month than most customers",
    ),
    "salary_day_strength_365d": (
        "spends mostly around one day of the month, like a payday",
        "spreads their spending over the month",
    ),
    "bill_day_regularity_365d": (
        "pays their bills on the same day each month",
        "pays their bills on varying days of the month",
    ),
    "bill_months_12m": (
        "paid bills through the bank in more months than most customers",
        "paid bills through the bank in fewer months than most customers",
    ),
    # the customer record
    "tenure_days": (
        "has been a member longer than most customers",
        "joined the programme more recently than most customers",
    ),
    "age_years": ("is older than most customers", "is younger than most customers"),
    "income": ("earns more than most customers", "earns less than most customers"),
    "income_band": (
        "is in a higher income band than most customers",
        "is in a lower income band than most customers",
    ),
    # points and tiers
    "points_balance": ("holds more points than most customers", "holds fewer points than most customers"),
    "points_debt": (
        "owes points from refunded purchases",
        "owes fewer points from refunded purchases than most customers",
    ),
    "points_earned_30d": (
        "earned more points in the last 30 days than most customers",
        "earned fewer points in the last 30 days than most customers",
    ),
    "points_earned_90d": (
        "earned more points in the last 90 days than most customers",
        "earned fewer points in the last 90 days than most customers",
    ),
    "points_earned_365d": (
        "earned more points over the last year than most customers",
        "earned fewer points over the last year than most customers",
    ),
    "redemptions_90d": (
        "redeemed points more often in the last 90 days than most customers",
        "redeemed points less often in the last 90 days than most customers",
    ),
    "redemptions_365d": (
        "redeemed points more often this year than most customers",
        "redeemed points less often this year than most customers",
    ),
    "points_redeemed_90d": (
        "spent more points on rewards in the last 90 days than most customers",
        "spent fewer points on rewards in the last 90 days than most customers",
    ),
    "points_redeemed_365d": (
        "spent more points on rewards this year than most customers",
        "spent fewer points on rewards this year than most customers",
    ),
    "points_redeemed_total": (
        "has spent more points on rewards than most customers",
        "has spent fewer points on rewards than most customers",
    ),
    "redemption_rate_365d": (
        "spends a larger share of the points they earn than most customers",
        "spends a smaller share of the points they earn than most customers",
    ),
    "days_since_last_redemption": (
        "has gone longer without redeeming points than most customers",
        "redeemed points more recently than most customers",
    ),
    "points_expired_365d": (
        "lost more points to expiry this year than most customers",
        "lost fewer points to expiry this year than most customers",
    ),
    "points_reversed_365d": (
        "had more points taken back for refunds this year than most customers",
        "had fewer points taken back for refunds this year than most customers",
    ),
    "activities_365d": (
        "took part in more rewarded activities (surveys, referrals) than most customers",
        "took part in fewer rewarded activities (surveys, referrals) than most customers",
    ),
    "activity_points_365d": (
        "earned more points from activities than most customers",
        "earned fewer points from activities than most customers",
    ),
    "points_expiring_30d": (
        "has more points expiring within 30 days than most customers",
        "has fewer points expiring within 30 days than most customers",
    ),
    "points_expiring_90d": (
        "has more points expiring within 90 days than most customers",
        "has fewer points expiring within 90 days than most customers",
    ),
    "tier": ("holds a higher tier than most customers", "holds a lower tier than most customers"),
    "tier_spend_12m": (
        "spent more towards their tier this year than most customers",
        "spent less towards their tier this year than most customers",
    ),
    "spend_to_next_tier": (
        "is further from the next tier than most customers",
        "is closer to the next tier than most customers",
    ),
    "refunds_365d": (
        "had more purchases refunded this year than most customers",
        "had fewer purchases refunded this year than most customers",
    ),
    "refund_amount_365d": (
        "had more money refunded this year than most customers",
        "had less money refunded this year than most customers",
    ),
    # offer history (the per-kind counts and rates are built below)
    "offers_sent": (
        "has received more offers than most customers",
        "has received fewer offers than most customers",
    ),
    "offers_viewed": (
        "has looked at more offers than most customers",
        "has looked at fewer offers than most customers",
    ),
    "offers_activated": (
        "has activated more offers than most customers",
        "has activated fewer offers than most customers",
    ),
    "offers_completed": (
        "has completed more offers than most customers",
        "has completed fewer offers than most customers",
    ),
    "offers_sent_30d": (
        "received more offers in the last 30 days than most customers",
        "received fewer offers in the last 30 days than most customers",
    ),
    "offers_sent_90d": (
        "received more offers in the last 90 days than most customers",
        "received fewer offers in the last 90 days than most customers",
    ),
    "offer_view_rate": (
        "looks at a larger share of their offers than most customers",
        "looks at a smaller share of their offers than most customers",
    ),
    "offer_completion_rate": (
        "completes a larger share of their offers than most customers",
        "completes a smaller share of their offers than most customers",
    ),
    "days_since_last_offer": (
        "has gone longer without an offer than most customers",
        "received an offer more recently than most customers",
    ),
    "days_since_last_offer_viewed": (
        "has gone longer without looking at an offer than most customers",
        "looked at an offer more recently than most customers",
    ),
    "days_since_last_offer_completed": (
        "has gone longer without completing an offer than most customers",
        "completed an offer more recently than most customers",
    ),
    "offers_active": (
        "has more offers active right now than most customers",
        "has fewer offers active right now than most customers",
    ),
    "activations_365d": (
        "activated more offers this year than most customers",
        "activated fewer offers this year than most customers",
    ),
    "activation_completions_365d": (
        "completed more activated offers this year than most customers",
        "completed fewer activated offers this year than most customers",
    ),
    # the churn model's BG/NBD columns (models.assemble)
    "bgnbd_p_alive": (
        "buys more regularly, for their history, than most customers",
        "buys less regularly, for their history, than most customers",
    ),
    "bgnbd_expected_txns": (
        "is expected to transact more often in the coming months than most customers",
        "is expected to transact less often in the coming months than most customers",
    ),
    "bgnbd_p_no_txn": (
        "is less likely to keep transacting, by their buying rhythm, than most customers",
        "is more likely to keep transacting, by their buying rhythm, than most customers",
    ),
    # a customer and an offer (models.assemble)
    "pair_category_share": (
        "spends more in the offer's categories than most customers",
        "spends less in the offer's categories than most customers",
    ),
    "pair_type_share": (
        "makes more of the offer's kind of transaction than most customers",
        "makes less of the offer's kind of transaction than most customers",
    ),
    "pair_channel_share": (
        "uses the offer's channels more than most customers",
        "uses the offer's channels less than most customers",
    ),
    "pair_preferred_channel": (
        "the offer comes through their preferred channel",
        "the offer does not come through their preferred channel",
    ),
    "pair_p_over_threshold": (
        "often makes a purchase as large as the offer asks",
        "seldom makes a purchase as large as the offer asks",
    ),
    "pair_expected_matches": (
        "is likely to make several purchases that complete the offer",
        "is unlikely to make many purchases that complete the offer",
    ),
    "pair_p_any_match": (
        "is more likely than most customers to make a purchase that completes the offer",
        "is less likely than most customers to make a purchase that completes the offer",
    ),
    "pair_expected_spend_ratio": (
        "usually spends more than the offer asks within its validity",
        "usually spends less than the offer asks within its validity",
    ),
    "pair_threshold_to_mean": (
        "the offer asks for more than their usual transaction",
        "the offer asks for less than their usual transaction",
    ),
    "pair_kind_sent": (
        "has received more offers of this kind than most customers",
        "has received fewer offers of this kind than most customers",
    ),
    "pair_kind_viewed": (
        "has looked at more offers of this kind than most customers",
        "has looked at fewer offers of this kind than most customers",
    ),
    "pair_kind_completed": (
        "has completed more offers of this kind than most customers",
        "has completed fewer offers of this kind than most customers",
    ),
    "pair_kind_view_rate": (
        "looks at offers of this kind more often than most customers",
        "looks at offers of this kind less often than most customers",
    ),
    "pair_kind_completion_rate": (
        "completes offers of this kind more often than most customers",
        "completes offers of this kind less often than most customers",
    ),
    # the offer itself (models.offers; the per-category, type and channel flags are built below)
    "offer_multiplier": (
        "the offer multiplies points more than most offers",
        "the offer multiplies points less than most offers",
    ),
    "offer_bonus_points": (
        "the offer pays more bonus points than most offers",
        "the offer pays fewer bonus points than most offers",
    ),
    "offer_threshold": (
        "the offer asks for a larger purchase than most offers",
        "the offer asks for a smaller purchase than most offers",
    ),
    "offer_duration_days": (
        "the offer runs longer than most offers",
        "the offer runs for a shorter time than most offers",
    ),
    "offer_cost": (
        "the offer costs the bank more than most offers",
        "the offer costs the bank less than most offers",
    ),
    "offer_value": (
        "the offer is worth more to the bank than most offers",
        "the offer is worth less to the bank than most offers",
    ),
    "offer_min_tier": ("the offer is for higher tiers only", "the offer is open to lower tiers"),
    "offer_any_category": (
        "the offer counts a purchase in any category",
        "the offer counts purchases in some categories only",
    ),
    "offer_kind_multiplier": ("it is a points-multiplier offer", "it is not a points-multiplier offer"),
    "offer_kind_bonus_points": ("it is a bonus-points offer", "it is not a bonus-points offer"),
    "offer_kind_cashback": ("it is a cashback offer", "it is not a cashback offer"),
    "offer_kind_informational": ("it is an informational message", "it is not an informational message"),
}
# How categories, channels, transaction types and offer kinds read in a sentence.
CATEGORY_WORDS: dict[str, str] = {
    "groceries": "grocery shopping",
    "fuel": "fuel",
    "travel": "travel",
    "restaurants": "restaurant bills",
    "online": "online shopping",
    "electronics": "electronics",
    "pharmacy": "pharmacy purchases",
    "clothing": "clothing",
    "entertainment": "entertainment",
    "utilities": "utility bills",
    "mobile": "mobile phone bills",
    "internet": "internet bills",
    "taxes": "tax payments",
    "p2p": "payments to other people",
    "other": "other things",
}
CHANNEL_WORDS: dict[str, str] = {
    "app": "the mobile app",
    "web": "online banking",
    "branch": "a branch",
    "pos": "card terminals in shops",
    "other": "other channels",
}
TXN_TYPE_WORDS: dict[str, str] = {
    "purchase": "purchases",
    "bill_payment": "bill payments",
    "transfer": "transfers",
}
KIND_WORDS: dict[str, str] = {
    "multiplier": "points-multiplier",
    "bonus_points": "bonus-points",
    "cashback": "cashback",
    "informational": "informational",
}
EVENT_WORDS: dict[str, tuple[str, str]] = {  # offers_<event>_<kind>: (verb, its object)
    "sent": ("has received", "offers"),
    "viewed": ("has looked at", "offers"),
    "activated": ("has activated", "offers"),
    "completed": ("has completed", "offers"),
}
for _word, _label in CATEGORY_WORDS.items():
    PHRASES[f"category_{_word}_share_365d"] = (
        f"spends a larger share of their money on {_label} than most customers",
        f"spends a smaller share of their money on {_label} than most customers",
    )
    if _word != "other":
        PHRASES[f"offer_category_{_word}"] = (
            f"the offer counts {_label}",
            f"the offer does not count {_label}",
        )
for _word, _label in CHANNEL_WORDS.items():
    PHRASES[f"channel_{_word}_share_365d"] = (
        f"uses {_label} more than most customers",
        f"uses {_label} less than most customers",
    )
    if _word != "other":
        PHRASES[f"offer_channel_{_word}"] = (
            f"the offer is sent through {_label}",
            f"the offer is not sent through {_label}",
        )
for _word, _label in TXN_TYPE_WORDS.items():
    PHRASES[f"offer_txn_type_{_word}"] = (f"the offer counts {_label}", f"the offer does not count {_label}")
for _kind, _label in KIND_WORDS.items():
    for _event, (_verb, _object) in EVENT_WORDS.items():
        PHRASES[f"offers_{_event}_{_kind}"] = (
            f"{_verb} more {_label} {_object} than most customers",
            f"{_verb} fewer {_label} {_object} than most customers",
        )
    PHRASES[f"offer_completion_rate_{_kind}"] = (
        f"completes a larger share of their {_label} offers than most customers",
        f"completes a smaller share of their {_label} offers than most customers",
    )
PHRASES["offer_txn_type_any"] = (
    "the offer counts any kind of transaction",
    "the offer counts some kinds of transaction only",
)
PHRASES["offer_channel_any"] = (
    "the offer is sent through any channel",
    "the offer is sent through some channels only",
)
# Yes/no inputs: 1 reads as the first phrase, 0 as the second, whatever most customers or offers have.
FLAGS = frozenset(
    name
    for name in PHRASES
    if name.startswith(("offer_kind_", "offer_category_", "offer_channel_", "offer_txn_type_"))
) | {"offer_any_category", "pair_preferred_channel"}
# What a missing value (NaN) means, for the inputs that can be missing; any other reads MISSING_DEFAULT.
MISSING_PHRASES: dict[str, str] = {
    "days_since_last_txn": "has no transaction on record",
    "days_since_first_txn": "has no transaction on record",
    "mean_gap_days_365d": "made fewer than two transactions this year",
    "recency_gap_ratio": "made fewer than two transactions this year",
    "txn_amount_mean_30d": "made no transaction in the last 30 days",
    "txn_amount_mean_365d": "made no transaction this year",
    "txn_amount_max_365d": "made no transaction this year",
    "txn_amount_std_365d": "made no transaction this year",
    "spend_trend_30d": "has too little history to compare their recent spending with",
    "spend_trend_90d": "has too little history to compare their recent spending with",
    "txn_trend_30d": "has too little history to compare their recent activity with",
    "weekend_share_365d": "made no transaction this year",
    "purchase_share_365d": "made no transaction this year",
    "bill_payment_share_365d": "made no transaction this year",
    "transfer_share_365d": "made no transaction this year",
    "category_entropy_365d": "spent nothing this year",
    "salary_day_365d": "made no purchase this year",
    "salary_day_strength_365d": "made no purchase this year",
    "bill_day_regularity_365d": "paid no bill through the bank this year",
    "age_years": "has no date of birth on record",
    "income": "has no income on record",
    "income_band": "has no income on record",
    "spend_to_next_tier": "already holds the top tier",
    "redemption_rate_365d": "earned no points this year",
    "days_since_last_redemption": "has never redeemed points",
    "offer_view_rate": "has not been sent an offer yet",
    "offer_completion_rate": "has not been sent an offer yet",
    "days_since_last_offer": "has not been sent an offer yet",
    "days_since_last_offer_viewed": "has never looked at an offer",
    "days_since_last_offer_completed": "has never completed an offer",
    "bgnbd_p_alive": "has too little buying history for a rhythm",
    "bgnbd_expected_txns": "has too little buying history for a rhythm",
    "bgnbd_p_no_txn": "has too little buying history for a rhythm",
    "pair_p_over_threshold": "has no transactions to compare with the offer's threshold",
    "pair_threshold_to_mean": "has no transactions to compare with the offer's threshold",
    "pair_kind_view_rate": "has not been sent an offer of this kind yet",
    "pair_kind_completion_rate": "has not been sent an offer of this kind yet",
    "offer_duration_days": "the offer has no fixed duration",
    **{f"category_{w}_share_365d": "spent nothing this year" for w in CATEGORY_WORDS},
    **{f"channel_{w}_share_365d": "made no transaction this year" for w in CHANNEL_WORDS},
    **{
        f"offer_completion_rate_{k}": f"has not been sent {'an' if w[0] in 'aeiou' else 'a'} {w} offer yet"
        for k, w in KIND_WORDS.items()
    },
}
for _name in PHRASES:  # an offer's missing term, or a pair column without the customer's history
    if _name.startswith("offer_") and _name not in MISSING_PHRASES:  # the customer's offer_*_rate are in
        MISSING_PHRASES[_name] = "the offer's terms do not say"
    elif _name.startswith("pair_") and _name not in MISSING_PHRASES:
        MISSING_PHRASES[_name] = "has too little history to compare with the offer"
MISSING_DEFAULT = "has no data in the latest feature snapshot"
# integer-coded categories without an order: "above the median" means nothing, so one phrase either way
NEUTRAL_PHRASES: dict[str, str] = {
    "region": "the region they live in",
    "gender": "their gender",
    "preferred_channel": "the channel they prefer",
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


MIN_CONTRIBUTION = 0.05  # log-odds: a feature moving the odds by less than about 5 % is not a reason


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
) -> str | None:
    """One phrase for ``feature`` at ``value``, by which side of ``reference`` (the training median) it is on;
    None when it sits at the reference: "as most customers" explains no score.

    Yes/no inputs (``FLAGS``) read 1 as the first phrase and 0 as the second, whatever the median.
    """
    if feature in NEUTRAL_PHRASES:
        return NEUTRAL_PHRASES[feature]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if feature in MISSING_PHRASES:
            return MISSING_PHRASES[feature]
        return MISSING_DEFAULT if feature in phrases else f"{humanize(feature)}: not on record"
    if reference is None or (isinstance(reference, float) and math.isnan(reference)):
        reference = 0.0
    if feature in FLAGS:
        above = value >= 0.5
    elif value != reference:
        above = value > reference
    else:
        return None
    if feature in phrases:
        return phrases[feature][0 if above else 1]
    return f"{humanize(feature)}: {'higher' if above else 'lower'} than for most customers"


def explain(
    contributions: np.ndarray,
    matrix: np.ndarray,
    features: Sequence[str],
    reference: Mapping[str, float] | None = None,
    *,
    k: int = 3,
    phrases: Mapping[str, tuple[str, str]] = PHRASES,
    towards: str = "up",
    min_contribution: float = MIN_CONTRIBUTION,
) -> list[list[Reason]]:
    """The top ``k`` reasons per row, chosen by the direction and size of their contributions.

    ``contributions`` is LightGBM's ``pred_contrib`` output (n x (features + 1), the last column the bias);
    ``towards="up"`` keeps only features that raised the score (why this customer is at risk / likely to
    respond), ``"down"`` only those that lowered it, ``"both"`` ranks by absolute size. A contribution
    smaller than ``min_contribution`` (log-odds) is no reason: it moves the score by less than a few per cent,
    and a customer with a low score would otherwise be given the faint reasons of a high one. A feature at
    the reference (the median) has no phrase and gives its place to the next one.
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
    ranked = np.argsort(-key, axis=1, kind="stable")
    ref = reference or {}
    out: list[list[Reason]] = []
    for i in range(per_feature.shape[0]):
        reasons: list[Reason] = []
        for j in ranked[i]:
            if len(reasons) == k:
                break
            if not np.isfinite(key[i, j]) or key[i, j] < min_contribution or key[i, j] == 0.0:
                break
            name = features[j]
            raw = float(matrix[i, j])
            value = None if math.isnan(raw) else raw
            phrase = describe(name, value, ref.get(name), phrases)
            if phrase is not None:
                reasons.append(Reason(name, phrase, float(per_feature[i, j]), value))
        out.append(reasons)
    return out


def model_input_names() -> list[str]:
    """Every input a registered model may read: the feature catalogue, the churn model's BG/NBD columns, the
    customer x offer columns and the offer attributes (free-text ``offer_attr_*`` columns aside)."""
    import pandas as pd

    from models.assemble import BGNBD_COLUMNS, PAIR_COLUMNS
    from models.offers import offer_attributes
    from pipelines import FEATURE_NAMES

    one_offer = pd.DataFrame({"offer_id": ["o"], "kind": ["cashback"]})
    attributes = [c for c in offer_attributes(one_offer).columns if c != "offer_id"]
    return [*FEATURE_NAMES, *BGNBD_COLUMNS, *PAIR_COLUMNS, *attributes]


def reason_phrases_markdown(names: Sequence[str] | None = None) -> str:
    """Every input's phrases, both directions and missing, as the Markdown of ``docs/reason_phrases.md``:
    the one page a reviewer reads to check what marketing will see."""
    lines = [
        "# Reason phrases",
        "",
        "What a reason code says for each model input (`models/reasons.py`), generated by",
        "`python -m models.reasons > docs/reason_phrases.md`; `tests/models/test_reasons.py` checks it",
        "is current. A reason is a feature whose contribution moved the score the way asked (up: why at",
        f"risk, or why likely to respond) by at least {MIN_CONTRIBUTION} in log-odds; its phrase says on",
        "which side of the training median the customer's value is (yes/no inputs: 1 or 0), or that it is",
        "missing. A value at the median gives no reason.",
        "",
        "| input | higher than the median (yes) | lower than the median (no) | missing |",
        "| --- | --- | --- | --- |",
    ]
    for name in names if names is not None else model_input_names():
        if name in NEUTRAL_PHRASES:
            above = below = NEUTRAL_PHRASES[name]
        elif name in FLAGS:
            above, below = describe(name, 1.0, 0.0) or "", describe(name, 0.0, 1.0) or ""
        else:
            above, below = describe(name, 2.0, 1.0) or "", describe(name, 0.0, 1.0) or ""
        missing = describe(name, None, 1.0) or ""
        lines.append(f"| `{name}` | {above} | {below} | {missing} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(reason_phrases_markdown())
