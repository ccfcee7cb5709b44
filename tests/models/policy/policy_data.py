"""Small hand-made inputs shared by the policy's tests: a seven-offer catalogue and scores for it."""

from __future__ import annotations

import datetime as dt

import numpy as np

from models.policy import Exclusion, OfferCatalog

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def catalogue() -> OfferCatalog:
    """Offers that trip one rule each: O_INACTIVE, O_WEB (web only), O_GOLD (gold tier), plus open ones."""
    rows = [
        {"offer_id": "O_OPEN1", "value": 300, "cost": 50},
        {"offer_id": "O_OPEN2", "value": 200, "cost": 20},
        {"offer_id": "O_INACTIVE", "value": 300, "cost": 10, "active": False},
        {"offer_id": "O_WEB", "value": 300, "cost": 10, "channels": ["web"]},
        {"offer_id": "O_GOLD", "value": 500, "cost": 10, "min_tier": "gold"},
        {"offer_id": "O_SILVER", "value": 250, "cost": 40, "min_tier": "silver", "channels": ["app", "web"]},
        {"offer_id": "O_TYPO", "value": 100, "cost": 5, "min_tier": "platinum"},
    ]
    return OfferCatalog.from_records(rows)


def codes_by_offer(cat: OfferCatalog, codes: list[int]) -> dict[str, Exclusion]:
    return {oid: Exclusion(c) for oid, c in zip(cat.offer_ids, codes, strict=True)}


def scores(cat: OfferCatalog) -> tuple[np.ndarray, np.ndarray]:
    p = np.array([0.30, 0.50, 0.90, 0.40, 0.20, 0.25, 0.60])
    u = np.array([0.10, 0.05, 0.50, np.nan, 0.08, 0.02, 0.20])
    return p, u
