"""What the model inputs built beside the feature catalogue read as in a reason code: data, no computation.

The churn model's BG/NBD columns (``models.inputs.churn``), the customer x offer pair columns
(``models.inputs.offer_pairs``) and the offer attributes (``models.inputs.offer_attributes``; the
per-category, type and channel flags are built from ``models.reasons.words`` in ``models.reasons.phrases``).
Same shape as ``FEATURE_PHRASES``: input -> (above the median or yes, below or no).
"""

INPUT_PHRASES: dict[str, tuple[str, str]] = {
    # the churn model's BG/NBD columns (models.inputs.churn)
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
    # a customer and an offer (models.inputs.offer_pairs)
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
    # the offer itself (models.inputs.offer_attributes; the per-category, type and channel flags are
    # built in models.reasons.phrases)
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
