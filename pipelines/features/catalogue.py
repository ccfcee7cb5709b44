"""The feature catalogue as data: every column ``compute_features`` returns, with its meaning and window.

Declared here, not discovered from the code, so that it can be printed (``loyalty features --list``), turned
into ``docs/features.md`` (``catalogue_markdown``; a test keeps the file in step) and versioned: the
``feature_version`` hash changes whenever a name, type or vocabulary changes, and the online table stores
it beside each vector so a reader never mixes vectors of two catalogues. The conventions every feature
follows are in ``CONVENTIONS`` (printed at the top of the docs).

Pure: the tier vocabulary comes from the earning rules in force, so the catalogue is a function of the
tier names (``build_catalogue``) and nothing here reads the rules file; ``pipelines.features.config`` gives
the catalogue and version of the rules actually used. Only what does not depend on the rules is a constant
(``FEATURE_NAMES``: the tier names are a vocabulary, never a column name).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import loyalty_core
from loyalty_core import OFFER_FUNNEL, OFFER_KINDS, OTHER, TXN_TYPES

WINDOWS = (7, 30, 90, 365)
# The feature vocabularies: loyalty_core's, plus the catch-all code where a value may be none of them.
CATEGORIES = (*loyalty_core.CATEGORIES, OTHER)  # OTHER: any other category, or none given
CHANNELS = (*loyalty_core.CHANNELS, OTHER)  # OTHER includes none given
GENDERS = loyalty_core.GENDERS
INCOME_BANDS = loyalty_core.INCOME_BANDS
REGIONS = (*loyalty_core.REGIONS, OTHER)
KEYS = ("customer_id", "as_of")
CONVENTIONS = (
    "The cutoff is an instant (`--as-of DATE` means that date's midnight, UTC); a feature sees only facts "
    "dated strictly before it, and the population is every customer who joined, or has any fact, before it.",
    "A window of N days is `[cutoff - N days, cutoff)`. Amounts are float64 in the programme's home currency "
    "(foreign-currency spend converted at the rules' fx rates, rounded to the cent). Counts and points are "
    "int64.",
    "Ratios and averages with nothing to divide by are NaN (LightGBM treats NaN as missing).",
    "Categorical features are int64 codes: the position of the value in the vocabulary listed with the "
    "feature, -1 when unknown; when the vocabulary ends with `other`, a value not in it gets that last code.",
    "Static attributes (age, gender, region, income) are the customer record as it is now: the bank keeps "
    "no history of them.",
    "Points expiring soon are reconstructed (lots do not keep their history): spending before the cutoff "
    "is taken as first-in first-out over the lots, which is exact except after a refund, which takes back "
    "its own transaction's lot first, and before an expiry run that has not happened yet.",
)


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    meaning: str
    window: str  # "7d", "365d", "12 x 30d", "all" (everything before the cutoff), "at cutoff", "static"
    dtype: str  # "int64" | "float64"
    vocabulary: tuple[str, ...] | None = None  # categorical: the value of code i is vocabulary[i]

    @property
    def categorical(self) -> bool:
        return self.vocabulary is not None


def _f(name: str, meaning: str, window: str, dtype: str = "float64") -> Feature:
    return Feature(name, meaning, window, dtype)


def _cat(name: str, meaning: str, window: str, vocabulary: tuple[str, ...]) -> Feature:
    return Feature(name, meaning, window, "int64", vocabulary)


def _activity() -> list[Feature]:
    out: list[Feature] = []
    for w in WINDOWS:
        out += [
            _f(f"txn_count_{w}d", "posted transactions (any type)", f"{w}d", "int64"),
            _f(f"txn_amount_{w}d", "sum of transaction amounts", f"{w}d"),
        ]
    out += [
        _f("txn_amount_mean_30d", "mean transaction amount (NaN without transactions)", "30d"),
        _f("txn_amount_mean_365d", "mean transaction amount (NaN without transactions)", "365d"),
        _f("txn_amount_max_365d", "largest transaction amount (NaN without transactions)", "365d"),
        _f("txn_amount_std_365d", "standard deviation of amounts (population; NaN without)", "365d"),
        _f(
            "txn_points_365d", "points the transactions earned (after tier boost and offers)", "365d", "int64"
        ),
        _f("days_since_last_txn", "days from the last transaction to the cutoff (recency)", "all"),
        _f("days_since_first_txn", "days from the first transaction to the cutoff", "all"),
        _f("mean_gap_days_365d", "mean days between consecutive transactions (NaN below 2)", "365d"),
        _f("recency_gap_ratio", "days_since_last_txn / mean_gap_days_365d: > 1 is overdue", "365d"),
        _f("active_days_30d", "distinct UTC days with a transaction", "30d", "int64"),
        _f("active_days_90d", "distinct UTC days with a transaction", "90d", "int64"),
        _f("active_months_12m", "30-day periods (of the last 12) with a transaction", "12 x 30d", "int64"),
        _f(
            "spend_trend_30d",
            "log1p(spend of the last 30 days) - log1p(mean 30-day spend of the 90 days before them)",
            "30d vs 31-120d",
        ),
        _f(
            "spend_trend_90d",
            "log1p(spend of the last 90 days) - log1p(spend of the 90 before)",
            "90d vs 91-180d",
        ),
        _f(
            "txn_trend_30d",
            "log1p(transactions of the last 30 days) - log1p(mean 30-day count of the 90 days before)",
            "30d vs 31-120d",
        ),
        _f("weekend_share_365d", "share of transactions on Saturday or Sunday (UTC)", "365d"),
    ]
    return out


def _mix() -> list[Feature]:
    out: list[Feature] = []
    for t in TXN_TYPES:
        out += [
            _f(f"{t}_count_90d", f"{t} transactions", "90d", "int64"),
            _f(f"{t}_amount_90d", f"sum of {t} amounts", "90d"),
            _f(f"{t}_share_365d", f"share of transactions that are {t} (NaN without transactions)", "365d"),
        ]
    out += [
        _f(f"category_{c}_share_365d", f"share of spend in category {c} (NaN without spend)", "365d")
        for c in CATEGORIES
    ]
    out += [
        _f("categories_365d", "distinct categories with spend (unlisted ones count as one)", "365d", "int64"),
        _f("category_entropy_365d", "Shannon entropy (nats) of the category spend shares", "365d"),
    ]
    out += [
        _f(f"channel_{c}_share_365d", f"share of transactions through channel {c}", "365d") for c in CHANNELS
    ]
    return out


def _regularity() -> list[Feature]:
    return [
        _f(
            "salary_day_365d",
            "spend-weighted circular mean day of month of purchases (1-31; NaN without)",
            "365d",
        ),
        _f(
            "salary_day_strength_365d",
            "how much purchase spend gathers around one day of the month (0 spread .. 1 one day)",
            "365d",
        ),
        _f(
            "bill_day_regularity_365d",
            "how much bill payments fall on the same day of the month (0 .. 1; NaN without)",
            "365d",
        ),
        _f("bill_months_12m", "30-day periods (of the last 12) with a bill payment", "12 x 30d", "int64"),
    ]


def _customer() -> list[Feature]:
    return [
        _f("tenure_days", "days since joining (the customer record, else the first ledger fact)", "all"),
        _f("age_years", "cutoff year minus birth year (NaN when unknown)", "static"),
        _f("income", "income as recorded on the customer (NaN when unknown)", "static"),
        _cat("gender", "gender", "static", GENDERS),
        _cat("region", "region", "static", REGIONS),
        _cat("income_band", "income band (ordinal)", "static", INCOME_BANDS),
        _cat("preferred_channel", "preferred channel on the customer record", "static", CHANNELS),
    ]


def _points() -> list[Feature]:
    return [
        _f(
            "points_balance",
            "points on the balance (points-account lines before the cutoff)",
            "at cutoff",
            "int64",
        ),
        _f("points_debt", "clawed-back points still owed", "at cutoff", "int64"),
        _f("points_earned_30d", "points credited to the balance", "30d", "int64"),
        _f("points_earned_90d", "points credited to the balance", "90d", "int64"),
        _f("points_earned_365d", "points credited to the balance", "365d", "int64"),
        _f("redemptions_90d", "redemptions and captured holds", "90d", "int64"),
        _f("redemptions_365d", "redemptions and captured holds", "365d", "int64"),
        _f("points_redeemed_90d", "points spent on rewards", "90d", "int64"),
        _f("points_redeemed_365d", "points spent on rewards", "365d", "int64"),
        _f("points_redeemed_total", "points spent on rewards, ever", "all", "int64"),
        _f("days_since_last_redemption", "days from the last redemption to the cutoff (NaN if none)", "all"),
        _f("redemption_rate_365d", "points redeemed / points earned (NaN when nothing earned)", "365d"),
        _f("points_expired_365d", "points lost to expiry", "365d", "int64"),
        _f("points_reversed_365d", "points clawed back from the balance by refunds", "365d", "int64"),
        _f(
            "activities_365d",
            "rewarded non-transaction activities (social, referral, survey)",
            "365d",
            "int64",
        ),
        _f("activity_points_365d", "points from those activities", "365d", "int64"),
        _f(
            "points_expiring_30d",
            "balance points whose lot expires within 30 days after the cutoff (FIFO reconstruction)",
            "next 30d",
            "int64",
        ),
        _f("points_expiring_90d", "as points_expiring_30d, within 90 days", "next 90d", "int64"),
    ]


def _tier(tiers: tuple[str, ...]) -> list[Feature]:
    return [
        _cat(
            "tier",
            "tier from rolling qualifying spend (ordinal, rules' tier order)",
            "current + 11 months",
            tiers,
        ),
        _f("tier_spend_12m", "qualifying spend of the tier window, net of refunds", "current + 11 months"),
        _f("spend_to_next_tier", "qualifying spend missing for the next tier (NaN at the top)", "at cutoff"),
        _f("refunds_365d", "refunds (reversals) of transactions", "365d", "int64"),
        _f("refund_amount_365d", "refunded amount", "365d"),
    ]


def _offers() -> list[Feature]:
    out = [_f(f"offers_{e}", f"offer events '{e}'", "all", "int64") for e in OFFER_FUNNEL]
    out += [
        _f(f"offers_{e}_{k}", f"offer events '{e}' for {k} offers", "all", "int64")
        for e in OFFER_FUNNEL
        for k in OFFER_KINDS
    ]
    out += [
        _f("offers_sent_30d", "offers sent", "30d", "int64"),
        _f("offers_sent_90d", "offers sent", "90d", "int64"),
        _f("offer_view_rate", "offers viewed / offers sent (NaN when none sent)", "all"),
        _f("offer_completion_rate", "offers completed / offers sent (NaN when none sent)", "all"),
    ]
    out += [
        _f(f"offer_completion_rate_{k}", f"{k} offers completed / sent (NaN when none sent)", "all")
        for k in OFFER_KINDS
    ]
    out += [
        _f("days_since_last_offer", "days from the last offer sent to the cutoff (NaN if none)", "all"),
        _f("days_since_last_offer_viewed", "days from the last offer viewed to the cutoff", "all"),
        _f("days_since_last_offer_completed", "days from the last offer completed to the cutoff", "all"),
        _f("offers_active", "ledger activations in force at the cutoff", "at cutoff", "int64"),
        _f("activations_365d", "ledger activations", "365d", "int64"),
        _f("activation_completions_365d", "ledger activations completed", "365d", "int64"),
    ]
    return out


def build_catalogue(tiers: tuple[str, ...]) -> tuple[Feature, ...]:
    """Every feature in output order; ``tiers`` is the rules' tier names, lowest first (the tier codes)."""
    features = (
        *_activity(),
        *_mix(),
        *_regularity(),
        *_customer(),
        *_points(),
        *_tier(tiers),
        *_offers(),
    )
    names = [f.name for f in features]
    assert len(names) == len(set(names)), "duplicate feature names"
    return features


FEATURE_NAMES = tuple(f.name for f in build_catalogue(()))


def feature_version(catalogue: tuple[Feature, ...]) -> str:
    """A short stable hash of names, types and vocabularies: vectors of two versions never mix."""
    text = "\n".join(f"{f.name}|{f.dtype}|{','.join(f.vocabulary or ())}" for f in catalogue)
    return "f-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def render_markdown(catalogue: tuple[Feature, ...]) -> str:
    """``docs/features.md``: the conventions, then the catalogue as a Markdown table."""
    lines = [
        "# Feature catalogue",
        "",
        "Generated from `pipelines/features/catalogue.py` by "
        "`loyalty features --list --markdown > docs/features.md`;",
        "a test fails when this file and the catalogue differ. Built by `loyalty features --as-of DATE`",
        "(`pipelines.features.compute_features`).",
        "",
        *[f"- {c}" for c in CONVENTIONS],
        "",
        f"Keys: `{KEYS[0]}` (string) and `{KEYS[1]}` (the cutoff, UTC timestamp). Feature version "
        f"`{feature_version(catalogue)}`, {len(catalogue)} features.",
        "",
        "| feature | meaning | window | type |",
        "| --- | --- | --- | --- |",
    ]
    for f in catalogue:
        kind = f.dtype
        if f.vocabulary is not None:
            codes = ", ".join(f"{i}={v}" for i, v in enumerate(f.vocabulary))
            kind = f"category ({codes}; -1 unknown)"
        lines.append(f"| `{f.name}` | {f.meaning} | {f.window} | {kind} |")
    return "\n".join(lines) + "\n"
