"""Decision-policy latency: one customer per request, and the vectorised batch paths.

    python benchmarks/policy.py [--offers 12] [--customers 200000] [--repeat 5]

Single-customer figures are the best of ``--repeat`` timing runs (the minimum is the least disturbed by
other processes), per call, for ``rank_for_customer`` (eligibility + expected value + exploration + the
result objects) on a catalogue of ``--offers`` offers with a customer holding one activation and three recent
contacts. Batch figures time one call on ``--customers`` customers. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
import timeit
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from models import (
    GREEDY,
    Contact,
    CustomerState,
    EpsilonGreedy,
    Exploration,
    FrequencyCaps,
    OfferCatalog,
    ThompsonSampling,
    allocate_campaign,
    allocate_multipliers,
    contact_counts,
    eligibility_matrix,
    expected_value,
    rank_for_customer,
)

NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def catalogue(n: int) -> OfferCatalog:
    rows = [
        {
            "offer_id": f"OFFER{j:02d}",
            "value": 200.0 + 50 * j,
            "cost": 40.0 + 5 * j,
            "channels": ["app", "web"] if j % 4 == 1 else None,
            "min_tier": "silver" if j % 5 == 4 else None,
        }
        for j in range(n)
    ]
    return OfferCatalog.from_records(rows)


def per_call(fn: Callable[[], Any], repeat: int, target_seconds: float = 0.3) -> float:
    number = max(1, int(target_seconds / max(timeit.timeit(fn, number=3) / 3, 1e-7)))
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def once(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--offers", type=int, default=12)
    ap.add_argument("--customers", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    cat = catalogue(args.offers)
    p = rng.uniform(0.05, 0.6, len(cat))
    u = np.where(rng.random(len(cat)) < 0.8, p * rng.uniform(0.0, 0.4, len(cat)), np.nan)
    reasons = [[{"feature": "recency_days", "contribution": -0.3}] for _ in cat.offer_ids]
    state = CustomerState(
        tier="silver",
        active_offers=frozenset({cat.offer_ids[0]}),
        contacts=tuple(
            Contact(NOW - dt.timedelta(days=d), cat.offer_ids[d % len(cat)], "app") for d in (2, 9, 40)
        ),
    )
    caps = FrequencyCaps(per_customer=6, per_channel=4)
    rows: list[tuple[str, str]] = []

    explorations: list[tuple[str, Exploration]] = [
        ("greedy", GREEDY),
        ("epsilon-greedy 0.1", EpsilonGreedy(0.1)),
        ("Thompson, Gaussian, 1000 draws", ThompsonSampling(draws=1000)),
        ("Thompson, Gaussian, 200 draws", ThompsonSampling(draws=200)),
        ("Thompson, Beta, 1000 draws", ThompsonSampling(draws=1000, posterior="beta")),
    ]
    for k in (1, 3):
        for name, ex in explorations:

            def call(ex: Exploration = ex, k: int = k) -> Any:
                return rank_for_customer(
                    cat,
                    state,
                    p,
                    uplift=u,
                    now=NOW,
                    channel="app",
                    caps=caps,
                    k=k,
                    exploration=ex,
                    rng=rng,
                    reasons=reasons,
                )

            rows.append(
                (
                    f"rank one customer, {len(cat)} offers, k={k}, {name}",
                    f"{per_call(call, args.repeat) * 1e6:,.1f} µs",
                )
            )

    n = args.customers
    ids = pd.Index([f"C{i:07d}" for i in range(n)])
    pm = rng.uniform(0.0, 0.6, (n, len(cat)))
    um = pm * rng.uniform(-0.1, 0.4, (n, len(cat)))
    contacts = pd.DataFrame(
        {
            "customer_id": ids[rng.integers(0, n, 2 * n)],
            "offer_id": np.asarray(cat.offer_ids)[rng.integers(0, len(cat), 2 * n)],
            "sent_at": NOW - pd.to_timedelta(rng.uniform(0, 60, 2 * n), unit="D"),
            "channel": rng.choice(["app", "web", "pos"], 2 * n),
        }
    )
    tiers = cat.tier_ranks(rng.choice(["base", "silver", "gold"], n))

    def batch() -> None:
        counts = contact_counts(contacts, ids, cat, now=NOW, window=caps.window, channel="app")
        codes, _ = eligibility_matrix(cat, tier_rank=tiers, counts=counts, channel="app", caps=caps)
        ev, _ = expected_value(pm, cat.value, cat.cost, um)
        np.where(codes == 0, ev, -np.inf).argmax(axis=1)

    rows.append(
        (f"batch: caps + eligibility + EV + best offer, {n:,} customers", f"{once(batch) * 1e3:,.0f} ms")
    )

    def campaign() -> None:
        allocate_campaign(ids, pm[:, 0], value=400, cost=60, uplift=um[:, 0], budget=5e5)

    rows.append((f"campaign allocation, {n:,} customers", f"{once(campaign) * 1e3:,.0f} ms"))
    churn, value, base = rng.beta(2, 5, n), rng.lognormal(8, 1, n), rng.gamma(2, 150, n)
    rows.append(
        (
            f"multiplier allocation, {n:,} customers",
            f"{once(lambda: allocate_multipliers(churn, value, base, budget=1e6)) * 1e3:,.0f} ms",
        )
    )
    print("| measure | time |\n| --- | ---: |")
    for name, t in rows:
        print(f"| {name} | {t} |")


if __name__ == "__main__":
    main()
