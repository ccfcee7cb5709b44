"""The world the simulator draws from: regions, spending categories, channels, rhythms, offers, campaigns.

Kept apart from the generator so the numbers that make the history look like a Russian retail bank's can be
read (and argued with) in one place, without wading through array code. Every table is plain data; the only
function with randomness, ``draw_campaign``, takes its generator from the caller so a seed fixes everything.

Channels, genders, income bands and offer kinds are ``loyalty_core``'s vocabularies; categories and regions
are named as there too, and a value outside a vocabulary would land in the features' ``other`` bucket.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from loyalty_core import CHANNELS, OFFER_KINDS

PURCHASE, BILL, TRANSFER = 0, 1, 2
INCOME_BAND_EDGES = (40_000, 90_000, 200_000)  # monthly RUB: below the first is "low", ...
MEDIAN_INCOME = 55_000.0  # monthly RUB; amounts scale with income relative to it
SEGMENTS = ("persuadable", "sure_thing", "lost_cause", "sleeping_dog")


@dataclass(frozen=True, slots=True)
class Region:
    name: str
    weight: float  # share of the bank's customers
    utc_offset: int  # hours; local rhythms are shifted into UTC with it
    income_factor: float


# Russia's million-plus cities; a bank's book leans to the capitals.
REGIONS = (
    Region("Moscow", 0.25, 3, 1.6),
    Region("Saint Petersburg", 0.12, 3, 1.3),
    Region("Novosibirsk", 0.05, 7, 1.0),
    Region("Yekaterinburg", 0.055, 5, 1.05),
    Region("Kazan", 0.05, 3, 1.0),
    Region("Nizhny Novgorod", 0.045, 3, 0.9),
    Region("Chelyabinsk", 0.045, 5, 0.85),
    Region("Samara", 0.04, 4, 0.9),
    Region("Omsk", 0.04, 6, 0.85),
    Region("Rostov-on-Don", 0.045, 3, 0.9),
    Region("Ufa", 0.04, 5, 0.9),
    Region("Krasnoyarsk", 0.04, 7, 1.05),
    Region("Voronezh", 0.035, 3, 0.85),
    Region("Perm", 0.035, 5, 0.9),
    Region("Volgograd", 0.035, 3, 0.8),
)


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    txn_type: int  # PURCHASE, BILL or TRANSFER
    share: float  # purchases: mean taste (Dirichlet base); others unused
    median: float  # RUB, for a customer on MEDIAN_INCOME
    sigma: float  # log-scale spread of one amount
    income_elasticity: float  # amount ~ income ** elasticity
    minimum: float  # RUB; smaller draws are raised to it
    channels: tuple[float, float, float, float]  # base weights over CHANNELS
    away: float  # chance the transaction happens outside the home region


# Medians are typical Russian card spend in 2025 RUB; sigma gives the heavy right tail (lognormal).
CATEGORIES = (
    Category("groceries", PURCHASE, 0.32, 850, 0.75, 0.25, 30, (0.03, 0.02, 0.0, 0.95), 0.02),
    Category("restaurants", PURCHASE, 0.11, 1300, 0.7, 0.45, 50, (0.08, 0.02, 0.0, 0.90), 0.05),
    Category("online", PURCHASE, 0.15, 1900, 0.95, 0.45, 50, (0.65, 0.35, 0.0, 0.0), 0.0),
    Category("pharmacy", PURCHASE, 0.08, 650, 0.8, 0.2, 30, (0.05, 0.03, 0.0, 0.92), 0.02),
    Category("fuel", PURCHASE, 0.09, 2300, 0.35, 0.15, 300, (0.10, 0.0, 0.0, 0.90), 0.08),
    Category("clothing", PURCHASE, 0.07, 3800, 0.8, 0.5, 200, (0.15, 0.15, 0.0, 0.70), 0.05),
    Category("entertainment", PURCHASE, 0.09, 1100, 0.75, 0.4, 100, (0.40, 0.20, 0.0, 0.40), 0.05),
    Category("electronics", PURCHASE, 0.04, 8500, 1.0, 0.55, 300, (0.30, 0.30, 0.0, 0.40), 0.03),
    Category("travel", PURCHASE, 0.05, 14000, 1.0, 0.7, 500, (0.45, 0.45, 0.0, 0.10), 0.5),
    Category("utilities", BILL, 0.0, 4500, 0.35, 0.2, 100, (0.60, 0.20, 0.15, 0.05), 0.0),
    Category("mobile", BILL, 0.0, 550, 0.3, 0.1, 100, (0.75, 0.20, 0.03, 0.02), 0.0),
    Category("internet", BILL, 0.0, 700, 0.25, 0.1, 100, (0.70, 0.25, 0.03, 0.02), 0.0),
    Category("taxes", BILL, 0.0, 3500, 0.9, 0.4, 100, (0.50, 0.35, 0.15, 0.0), 0.0),
    Category("p2p", TRANSFER, 0.0, 2500, 1.1, 0.5, 100, (0.85, 0.10, 0.05, 0.0), 0.0),
)
CATEGORY_NAMES = tuple(c.name for c in CATEGORIES)
PURCHASE_CATEGORIES = tuple(i for i, c in enumerate(CATEGORIES) if c.txn_type == PURCHASE)
BILL_KINDS = tuple(CATEGORY_NAMES.index(n) for n in ("utilities", "mobile", "internet"))  # monthly bills
TAXES = CATEGORY_NAMES.index("taxes")  # property tax, paid once a year before the 1 December deadline
P2P = CATEGORY_NAMES.index("p2p")
FUEL = CATEGORY_NAMES.index("fuel")
MOBILE_PLANS = (350.0, 450.0, 550.0, 650.0, 800.0, 950.0)  # monthly RUB, paid to the kopeck every month
INTERNET_PLANS = (500.0, 600.0, 700.0, 850.0, 990.0)
WINTER_HEATING = 1.3  # utilities are higher November to March
MAX_AMOUNT_RUB = 2_000_000.0  # safely below the ledger's 5,000,000 RUB "unusual amount" hold

# Monday .. Sunday: Friday and Saturday are the busy days, Sunday the quiet one (scaled to mean 1 below).
_WEEKDAY = np.array([0.93, 0.95, 0.97, 1.0, 1.12, 1.18, 0.85])
WEEKDAY_FACTOR = _WEEKDAY / _WEEKDAY.mean()
# Local hour of day, 0..23: lunch and the evening peak for purchases, office hours for transfers, and bills
# paid in the evening. Shifted to UTC by each region's offset.
HOURS_PURCHASE = np.array(
    [
        [0.3, 0.15, 0.1, 0.08, 0.08, 0.15, 0.5, 1.2, 2.2, 3.0, 3.6, 4.2],
        [5.0, 5.2, 4.8, 4.6, 5.0, 6.0, 7.2, 7.4, 6.5, 4.8, 2.8, 1.2],
    ]
).ravel()
HOURS_TRANSFER = np.array(
    [
        [0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 0.8, 1.6, 2.5, 3.2, 3.5],
        [3.8, 3.8, 3.6, 3.5, 3.6, 3.8, 4.0, 4.0, 3.6, 2.8, 1.6, 0.6],
    ]
).ravel()
HOURS_BILL = np.array(
    [
        [0.1, 0.05, 0.02, 0.02, 0.02, 0.05, 0.2, 0.6, 1.2, 1.8, 2.2, 2.4],
        [2.4, 2.3, 2.2, 2.2, 2.3, 2.5, 2.8, 3.0, 2.8, 2.2, 1.2, 0.4],
    ]
).ravel()
# Preferred channel by age group (<30, 30-54, 55+), over CHANNELS.
CHANNEL_BY_AGE = np.array([[0.70, 0.10, 0.05, 0.15], [0.50, 0.15, 0.10, 0.25], [0.20, 0.10, 0.30, 0.40]])
# How likely an offer sent through the customer's preferred channel is seen at all.
VIEW_BY_CHANNEL = np.array([1.0, 0.85, 0.55, 0.7])
PREFERRED_CHANNEL_PULL = 2.0  # a customer's preferred channel weighs 1 + this in each category's mix


def channel_table() -> npt.NDArray[np.float64]:
    """Cumulative P(channel | category, preferred channel), shape (categories, 4, 4): inverse-CDF draws."""
    base = np.array([c.channels for c in CATEGORIES])  # (K, 4)
    pull = 1.0 + PREFERRED_CHANNEL_PULL * np.eye(len(CHANNELS))  # (pref, channel)
    weights = base[:, None, :] * pull[None, :, :]
    weights /= weights.sum(axis=2, keepdims=True)
    return np.cumsum(weights, axis=2)


@dataclass(frozen=True, slots=True)
class OfferSpec:
    """One offer of the catalogue: exactly the fields of ``loyalty_core.offers.upsert_offer``."""

    offer_id: str
    name: str
    kind: str
    duration_days: int
    cost: Decimal  # RUB one completion costs the bank (extra points at 1 RUB each, or the cashback paid)
    value: Decimal  # RUB of margin the bank expects per completion
    multiplier: Decimal = Decimal(1)
    bonus_points: int = 0
    threshold: Decimal | None = None
    categories: tuple[str, ...] | None = None
    txn_types: tuple[str, ...] | None = None
    channels: tuple[str, ...] | None = None  # who may be sent it: customers preferring one of these
    min_tier: str | None = None

    @property
    def kind_index(self) -> int:
        return OFFER_KINDS.index(self.kind)

    def completes_at(self) -> Decimal | None:
        """The single-transaction amount that completes it (bonus points and cashback), else None."""
        return self.threshold if self.kind in ("bonus_points", "cashback") else None


# Validity periods are whole weeks: a window of whole weeks sees every weekday equally often, which keeps the
# truth's "probability of completing" free of a weekday bias.
CATALOGUE = (
    OfferSpec(
        "MULT2_GROCERIES",
        "Double points on groceries",
        "multiplier",
        14,
        Decimal(60),
        Decimal(150),
        multiplier=Decimal(2),
        categories=("groceries",),
        txn_types=("purchase",),
    ),
    OfferSpec(
        "MULT3_RESTAURANTS",
        "Triple points in restaurants",
        "multiplier",
        14,
        Decimal(90),
        Decimal(220),
        multiplier=Decimal(3),
        categories=("restaurants",),
        txn_types=("purchase",),
    ),
    OfferSpec(
        "MULT2_FUEL",
        "Double points on fuel",
        "multiplier",
        14,
        Decimal(50),
        Decimal(130),
        multiplier=Decimal(2),
        categories=("fuel",),
        txn_types=("purchase",),
        channels=("app", "pos"),
    ),
    OfferSpec(
        "MULT5_TRAVEL",
        "Five times the points on travel",
        "multiplier",
        28,
        Decimal(600),
        Decimal(1500),
        multiplier=Decimal(5),
        categories=("travel",),
        txn_types=("purchase",),
        channels=("app", "web"),
    ),
    OfferSpec(
        "MULT2_BILLS",
        "Double points on bills paid in the app",
        "multiplier",
        28,
        Decimal(80),
        Decimal(200),
        multiplier=Decimal(2),
        categories=("utilities", "mobile", "internet"),
        txn_types=("bill_payment",),
        channels=("app",),
    ),
    OfferSpec(
        "BONUS500_ONLINE5K",
        "500 points for an online purchase of 5,000 RUB or more",
        "bonus_points",
        14,
        Decimal(500),
        Decimal(1200),
        bonus_points=500,
        threshold=Decimal(5000),
        categories=("online", "electronics"),
        txn_types=("purchase",),
        channels=("app", "web"),
    ),
    OfferSpec(
        "BONUS300_ANY3K",
        "300 points for any purchase of 3,000 RUB or more",
        "bonus_points",
        7,
        Decimal(300),
        Decimal(650),
        bonus_points=300,
        threshold=Decimal(3000),
        txn_types=("purchase",),
    ),
    OfferSpec(
        "BONUS200_P2P1K",
        "200 points for a transfer of 1,000 RUB or more",
        "bonus_points",
        7,
        Decimal(200),
        Decimal(350),
        bonus_points=200,
        threshold=Decimal(1000),
        categories=("p2p",),
        txn_types=("transfer",),
        channels=("app", "web", "branch"),
    ),
    OfferSpec(
        "CASHBACK300_PHARMACY2K",
        "300 RUB back on 2,000 RUB or more at pharmacies",
        "cashback",
        14,
        Decimal(300),
        Decimal(600),
        threshold=Decimal(2000),
        categories=("pharmacy",),
        txn_types=("purchase",),
    ),
    OfferSpec(
        "CASHBACK1000_CLOTHING10K",
        "1,000 RUB back on 10,000 RUB or more on clothing",
        "cashback",
        21,
        Decimal(1000),
        Decimal(2600),
        threshold=Decimal(10000),
        categories=("clothing",),
        txn_types=("purchase",),
    ),
    OfferSpec(
        "INFO_APP_FEATURES",
        "What is new in the app",
        "informational",
        7,
        Decimal(0),
        Decimal(0),
        channels=("app", "web"),
    ),
    OfferSpec(
        "INFO_DEPOSIT_RATES", "Higher deposit rates this month", "informational", 14, Decimal(0), Decimal(0)
    ),
)


@dataclass(frozen=True, slots=True)
class Campaign:
    """One historical campaign: which offers it ran and with what probability each channel group got them.

    ``probabilities[ch, j]`` is the chance that a customer preferring channel ``ch`` was assigned arm ``j``
    (arm 0 is the no-offer control group; arm j > 0 is offer ``arms[j]``). These are the probabilities the
    assignment really used, so the decision log can carry them for off-policy evaluation.
    """

    campaign_id: str
    day: int  # days after the start of the history
    arms: tuple[int, ...]  # catalogue index per arm, -1 for the control group
    base: tuple[float, ...]  # the arm weights before channel eligibility
    probabilities: npt.NDArray[np.float64]  # (len(CHANNELS), len(arms))

    @property
    def policy(self) -> str:
        return f"campaign:{self.campaign_id}"


CAMPAIGN_EVERY_DAYS = 30
MADE_AT_SECONDS = 6 * 3600  # decisions are made at 06:00 UTC (09:00 in Moscow)


def campaign_days(rng: np.random.Generator, days: int) -> list[int]:
    """Start days of the campaigns: every ~30 days (a few days' jitter), while a day of history is left."""
    out: list[int] = []
    day = int(rng.integers(3, 10))
    while day <= days - 2:
        out.append(day)
        day += CAMPAIGN_EVERY_DAYS + int(rng.integers(-3, 4))
    return out


def draw_campaign(rng: np.random.Generator, number: int, day: int) -> Campaign:
    """A campaign of 4 to all offers with unequal weights, a 15-35 % control group, renormalised per channel.

    An offer limited to some channels is never given to customers preferring another: their share goes to
    the other arms, so the same arm has different probabilities in different channel groups.
    """
    n_offers = int(rng.integers(4, len(CATALOGUE) + 1))
    chosen = np.sort(rng.choice(len(CATALOGUE), size=n_offers, replace=False))
    control = float(rng.uniform(0.15, 0.35))
    weights = rng.dirichlet(np.full(n_offers, 2.0)) * (1.0 - control)
    base = np.concatenate([[control], weights])
    eligible = np.ones((len(CHANNELS), n_offers + 1), dtype=bool)
    for j, k in enumerate(chosen, start=1):
        channels = CATALOGUE[k].channels
        if channels is not None:
            eligible[:, j] = [ch in channels for ch in CHANNELS]
    probs = base[None, :] * eligible
    probs /= probs.sum(axis=1, keepdims=True)
    return Campaign(
        campaign_id=f"CMP{number:02d}",
        day=day,
        arms=(-1, *(int(k) for k in chosen)),
        base=tuple(float(b) for b in base),
        probabilities=probs,
    )
