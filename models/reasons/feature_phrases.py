"""What each customer feature of the catalogue reads as in a reason code: data, no computation.

feature -> (phrase when the customer's value is above the reference, phrase when below). The reference is the
training median, so every phrase compares the customer with most customers (or with their own past): it is
true for anyone on that side of the median, whatever the score, and never claims more ("has already left")
than the value says. Names are those of pipelines/features/catalogue.py (docs/features.md); the per-category,
per-channel and per-kind ones are built from ``models.reasons.words`` in ``models.reasons.phrases``.
"""

FEATURE_PHRASES: dict[str, tuple[str, str]] = {
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
}
