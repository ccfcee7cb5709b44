"""The programme's vocabularies, defined once: the ledger checks against them and the features code by them.

Two copies of a vocabulary drift (the simulator named four channels and two genders while the feature
catalogue coded five and three), and a categorical feature's codes are positions in its vocabulary, so the
order here is part of the feature version: append, never reorder. ``OTHER`` is the feature catalogue's
catch-all word, not a member of any vocabulary: a value that is none of the named ones (or none at all)
codes as ``OTHER``, which is why ``CHANNELS``, ``CATEGORIES`` and ``REGIONS`` never contain it.
"""

from __future__ import annotations

from typing import Final

TXN_TYPES: Final = ("purchase", "bill_payment", "transfer")
OFFER_KINDS: Final = ("multiplier", "bonus_points", "cashback", "informational")
OFFER_FUNNEL: Final = ("sent", "viewed", "activated", "completed")
# The funnel plus what the service records about a ranking it answered.
OFFER_EVENT_NAMES: Final = (*OFFER_FUNNEL, "shown", "accepted")
CHANNELS: Final = ("app", "web", "branch", "pos")
GENDERS: Final = ("F", "M", "O")
INCOME_BANDS: Final = ("low", "middle", "upper_middle", "high")
CATEGORIES: Final = (
    "groceries",
    "fuel",
    "travel",
    "restaurants",
    "online",
    "electronics",
    "pharmacy",
    "clothing",
    "entertainment",
    "utilities",
    "mobile",
    "internet",
    "taxes",
    "p2p",
)
REGIONS: Final = (
    "Moscow",
    "Saint Petersburg",
    "Novosibirsk",
    "Yekaterinburg",
    "Kazan",
    "Nizhny Novgorod",
    "Chelyabinsk",
    "Samara",
    "Omsk",
    "Rostov-on-Don",
    "Ufa",
    "Krasnoyarsk",
    "Voronezh",
    "Perm",
    "Volgograd",
)
OTHER: Final = "other"
