"""Every phrase a reason code may use, by model input: the written ones, those built from the vocabularies,
what a missing value means, and which inputs are yes/no flags or unordered categories.

``PHRASES`` holds the wording (input -> (above the median, below)) of every input a model may read (the
feature catalogue, the BG/NBD and customer x offer columns of ``models.inputs``, the offer attributes);
``FLAGS`` the yes/no inputs, ``MISSING_PHRASES`` what a missing value means, ``NEUTRAL_PHRASES`` one phrase
for unordered categories. ``docs/reason_phrases.md`` shows them all (``tests/models/reasons`` keeps it
current).
"""

from models.reasons.feature_phrases import FEATURE_PHRASES
from models.reasons.input_phrases import INPUT_PHRASES
from models.reasons.words import CATEGORY_WORDS, CHANNEL_WORDS, EVENT_WORDS, KIND_WORDS, TXN_TYPE_WORDS

PHRASES: dict[str, tuple[str, str]] = {**FEATURE_PHRASES, **INPUT_PHRASES}
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
