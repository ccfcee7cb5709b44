"""Scorer throughput: batch rows per second and microseconds per single row, for ``models.scorer.Scorer``.

    python benchmarks/scoring.py [--rows 1000000] [--features 40] [--trees 100,300,1000] [--threads 2]

Scoring cost grows with the number of trees, which early stopping decides per training run, so the scorer
is measured at several model sizes. One LightGBM booster (31 leaves, ``--features`` numeric columns, 5 %
missing values) is grown on a synthetic frame for the largest size, cut to each size, and given an isotonic
calibrator fitted on held-out rows, as ``BoostedClassifier`` does. For each size, on fresh random rows:

- batch: ``Scorer.predict_proba`` on a ``--rows`` x features float64 matrix, ``--threads`` LightGBM
  threads, best of two (and a float32 copy of the same matrix);
- one row: ``Scorer.predict_one`` on ``--single`` different rows (median and 99th percentile);
- for comparison: one row through a one-row DataFrame (what a naive service does), and the reason codes
  of one row (``Scorer.explain``, TreeSHAP through ``pred_contrib``).

The target for ``loyalty score`` is 5 million customers per minute on 2 cores (83,333 rows/s). Prints a
markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import lightgbm as lgb
import numpy as np
import pandas as pd

from models import Scorer, fit_calibrator

TARGET_ROWS_PER_SECOND = 5_000_000 / 60


def synthetic(rows: int, n_features: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    weights = np.linspace(-1, 1, n_features) / np.sqrt(n_features)
    x = rng.normal(size=(rows, n_features))
    z = x @ weights + 0.8 * np.sin(2 * x[:, 0]) * x[:, 1] + 0.5 * (x[:, 2] > 1) - 0.3
    y = (rng.random(rows) < 1 / (1 + np.exp(-2 * z))).astype(np.int8)
    x[rng.random(x.shape) < 0.05] = np.nan
    return x, y


def timed_ns(fn: Callable[[np.ndarray], object], rows: np.ndarray) -> list[int]:
    out = []
    for row in rows:
        t0 = time.perf_counter_ns()
        fn(row)
        out.append(time.perf_counter_ns() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="batch size for the throughput run")
    parser.add_argument("--features", type=int, default=40)
    parser.add_argument("--trees", default="100,300,1000", help="model sizes to measure (comma-separated)")
    parser.add_argument("--threads", type=int, default=2, help="LightGBM threads for batch scoring")
    parser.add_argument("--single", type=int, default=20_000, help="single-row calls to time")
    parser.add_argument("--explain", type=int, default=300, help="single-row reason-code calls to time")
    parser.add_argument("--train-rows", type=int, default=50_000)
    args = parser.parse_args()
    sizes = sorted(int(t) for t in args.trees.split(","))

    rng = np.random.default_rng(0)
    x_train, y_train = synthetic(args.train_rows, args.features, rng)
    x_cal, y_cal = synthetic(args.train_rows // 4, args.features, rng)
    features = [f"f{i:02d}" for i in range(args.features)]
    params = {
        "objective": "binary",
        "num_leaves": 31,
        "learning_rate": 0.05,
        "min_child_samples": 20,
        "num_threads": args.threads,
        "verbose": -1,
    }
    started = time.perf_counter()
    full = lgb.train(params, lgb.Dataset(x_train, y_train, feature_name=features), num_boost_round=sizes[-1])
    fit_seconds = time.perf_counter() - started

    matrix, _ = synthetic(args.rows, args.features, rng)
    as32 = matrix.astype(np.float32)
    single_rows = matrix[: args.single]
    columns = list(features)

    print(
        f"{args.features} features, 31 leaves per tree, isotonic calibration; {args.threads} LightGBM "
        f"threads for batch scoring, 1 for single rows; booster grown in {fit_seconds:.0f} s\n"
    )
    print(
        "| trees | batch float64 (rows/s) | batch float32 (rows/s) | million rows/min | one row "
        "`predict_one` (us, median / p99) | one row via DataFrame (us) | reason codes, one row (us) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in sizes:
        booster = lgb.Booster(model_str=full.model_to_string(num_iteration=size))
        margin = np.asarray(booster.predict(x_cal, raw_score=True), dtype=np.float64)
        scorer = Scorer(
            booster, fit_calibrator(margin, y_cal, "isotonic"), features, num_threads=args.threads
        )
        scorer.predict_proba(matrix[:10_000])  # warm-up

        def batch_seconds(m: np.ndarray, scorer: Scorer = scorer) -> float:
            best = float("inf")
            for _ in range(2):
                t0 = time.perf_counter()
                scorer.predict_proba(m)
                best = min(best, time.perf_counter() - t0)
            return best

        rows_per_s64 = args.rows / batch_seconds(matrix)
        rows_per_s32 = args.rows / batch_seconds(as32)
        timed_ns(scorer.predict_one, single_rows[:200])  # warm-up
        one = timed_ns(scorer.predict_one, single_rows)

        def via_frame(row: np.ndarray, scorer: Scorer = scorer) -> object:
            frame = pd.DataFrame([row], columns=columns)
            return scorer.calibrator.apply(np.asarray(scorer.booster.predict(frame, raw_score=True)))

        frame_calls = timed_ns(via_frame, single_rows[:2000])
        explain_calls = timed_ns(
            lambda row, s=scorer: s.explain(row.reshape(1, -1), k=3), single_rows[: args.explain]
        )
        print(
            f"| {size} | {rows_per_s64:,.0f} | {rows_per_s32:,.0f} | {rows_per_s64 * 60 / 1e6:.1f} | "
            f"{statistics.median(one) / 1000:.1f} / {np.percentile(one, 99) / 1000:.1f} | "
            f"{statistics.median(frame_calls) / 1000:.0f} | {statistics.median(explain_calls) / 1000:,.0f} |"
        )
    print(f"\ntarget: {TARGET_ROWS_PER_SECOND:,.0f} rows/s (5 million customers per minute)")


if __name__ == "__main__":
    main()
