"""Customers per minute of ``loyalty score``'s core: feature vectors -> churn + offers (+ uplift) + policy.

    python benchmarks/batch_scoring.py [--customers 1000000] [--db var/bench-sim.db] [--threads 0]

What is timed is ``models.jobs.score_matrix`` chunk by chunk (as ``score_all`` runs it) plus the
whole-base multiplier allocation: churn inputs (with the BG/NBD columns) and the churn champion, eligibility
(tier, caps, preferred channel), the offer model's input rows for the eligible (customer, offer) pairs and the
offer model, the two uplift models on the same rows, expected values and the top 3. Reading the ledger,
building features and writing the file are not (they are the feature job's and the disk's).

The models are the real jobs' (``train_churn``, ``train_offers`` with uplift; not registered) on a simulated
bank (``--sim-customers`` x ``--sim-days``, simulated and ingested into ``--db`` unless it exists); the
customers are that bank's feature vectors as of its last day, drawn with replacement up to ``--customers``
(so every vector is a realistic one, including its eligibility). Prints a markdown table per stage and
whether the target of 5 million customers a minute is met.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loyalty_core import DEFAULT_RULES, load_rules, make_engine, migrate  # noqa: E402
from models import (  # noqa: E402
    MultiplierPolicy,
    Registration,
    ScoringModels,
    allocate_multipliers,
    customer_value,
    ledger_span,
    read_catalogue,
    score_matrix,
    train_churn,
    train_offers,
)
from pipelines import (  # noqa: E402
    FEATURE_NAMES,
    FeatureConfig,
    SimConfig,
    compute_features,
    extract,
    ingest_history,
    simulate,
)

TARGET = 5_000_000


def prepare_db(path: Path, customers: int, days: int, seed: int) -> None:
    rules = load_rules(DEFAULT_RULES)
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp:
        start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=days + 2)).date()
        simulate(SimConfig(customers=customers, days=days, seed=seed, start=start), Path(tmp) / "sim")
        t = time.perf_counter()
        ingest_history(engine, Path(tmp) / "sim", rules=rules)
        print(
            f"simulated and ingested {customers} x {days} days in {time.perf_counter() - t:.0f} s", flush=True
        )
    engine.dispose()


def _trees(scorer: Any) -> str:
    """A churn champion may be BG/NBD (a formula, no trees) or a stack (whose trees are its LightGBM part)."""
    booster = getattr(scorer, "booster", None)
    return f"{booster.num_trees()} trees" if booster is not None else type(scorer).__name__


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--db", type=Path, default=ROOT / "var" / "bench-batch-scoring.db")
    ap.add_argument("--sim-customers", type=int, default=1500)
    ap.add_argument("--sim-days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--chunk", type=int, default=20_000)
    ap.add_argument("--threads", type=int, default=0, help="LightGBM threads (0 = all cores)")
    ap.add_argument(
        "--engine",
        choices=("compiled", "lightgbm"),
        default="compiled",
        help="score through lleaves-compiled trees (as loyalty score does) or LightGBM's own predict",
    )
    ap.add_argument("--repeat", type=int, default=2, help="timed passes (the best is reported)")
    args = ap.parse_args()

    if not args.db.exists():
        args.db.parent.mkdir(parents=True, exist_ok=True)
        prepare_db(args.db, args.sim_customers, args.sim_days, args.seed)
    rules = load_rules(DEFAULT_RULES)
    engine = make_engine(f"sqlite:///{args.db}")
    t = time.perf_counter()
    churn = train_churn(engine, rules=rules, registration=Registration(register=False))
    offers = train_offers(engine, rules=rules, registration=Registration(register=False))
    print(f"trained the models in {time.perf_counter() - t:.0f} s", flush=True)
    assert churn.result is not None
    assert offers.result is not None
    uplift = offers.uplift.scorers if offers.uplift is not None else None
    catalogue = read_catalogue(engine)
    as_of = ledger_span(engine).end
    frames = extract(engine, rules=rules, until=as_of.to_pydatetime())
    features = compute_features(frames, as_of, FeatureConfig.from_rules(rules))
    base = np.ascontiguousarray(features[list(FEATURE_NAMES)].to_numpy(dtype=np.float64, na_value=np.nan))
    rng = np.random.default_rng(args.seed)
    customers = base[rng.integers(0, len(base), args.customers)]
    churn_scorer = churn.result.scorer(num_threads=args.threads)
    offer_scorer = offers.result.scorer(num_threads=args.threads)
    if uplift is not None:
        for s in (uplift.treated, uplift.control):
            s.num_threads = args.threads

    results = {}
    for label, with_uplift in (("propensity only", False), ("propensity + uplift", True)):
        if with_uplift and uplift is None:
            continue
        began = time.perf_counter()
        models = ScoringModels.build(
            churn_scorer,
            offer_scorer,
            catalogue,
            uplift=uplift if with_uplift else None,
            compile=args.engine == "compiled",
        )
        engine_note = (
            f"trees compiled by lleaves (in {time.perf_counter() - began:.1f} s, when the models load)"
            if models.compiled
            else "LightGBM's predict"
        )
        score_matrix(models, customers[: args.chunk])  # warm-up
        best: tuple[float, dict[str, float], int] | None = None
        for _ in range(args.repeat):
            timings: dict[str, float] = {}
            pairs = 0
            start = time.perf_counter()
            churn_all = np.empty(len(customers))
            for lo in range(0, len(customers), args.chunk):
                hi = min(lo + args.chunk, len(customers))
                s = score_matrix(models, customers[lo:hi], timings=timings)
                churn_all[lo:hi] = s.churn
                pairs += int(np.isfinite(s.propensity).sum())
            t0 = time.perf_counter()
            value, points = customer_value(customers, FEATURE_NAMES, churn_all, 0.01)
            allocate_multipliers(churn_all, value, points, policy=MultiplierPolicy())
            timings["multipliers"] = time.perf_counter() - t0
            total = time.perf_counter() - start
            if best is None or total < best[0]:
                best = (total, timings, pairs)
        assert best is not None
        results[label] = best
        total, timings, pairs = best
        rate = len(customers) / total * 60
        print(
            f"\n### {label}: {len(customers):,} customers, {models.offer_count} offers, {pairs:,} eligible "
            f"pairs ({pairs / len(customers):.1f} per customer), threads {args.threads or 'all'}, "
            f"{engine_note}\n"
        )
        print("| stage | seconds | share |")
        print("| --- | ---: | ---: |")
        for name, sec in timings.items():
            print(f"| {name} | {sec:.2f} | {sec / total:.0%} |")
        print(f"| **total** | **{total:.2f}** | |")
        verdict = "meets" if rate >= TARGET else "MISSES"
        load = os.getloadavg()[0]
        print(
            f"\n{rate:,.0f} customers/minute: {verdict} the target of {TARGET:,}/minute "
            f"(load average {load:.1f} on {os.cpu_count()} cores: other processes share them)"
        )
        print(
            f"models: churn {_trees(churn_scorer)} x {len(churn_scorer.features)} inputs, "
            f"offers {offer_scorer.booster.num_trees()} trees x {len(offer_scorer.features)} inputs"
            + (
                f", uplift {uplift.treated.booster.num_trees()} + {uplift.control.booster.num_trees()} trees"
                if with_uplift and uplift is not None
                else ""
            )
        )
    engine.dispose()


if __name__ == "__main__":
    main()
