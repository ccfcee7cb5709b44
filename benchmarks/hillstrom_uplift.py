"""Qini / AUUC / uplift at 30 % on the Hillstrom e-mail experiment, for the README's table.

For each e-mail arm against the no-e-mail control and each outcome, over several random 50/50 splits:
the two-model (T-) learner's uplift, a plain response model (P(outcome | treated, x): what a propensity model
would rank by) and random targeting, all scored on the held-out half. Prints mean and standard deviation.

    python benchmarks/hillstrom_uplift.py [--data ../shared/data/hillstrom/hillstrom.csv] [--splits 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from models import TwoModelUplift, auuc, average_effect, qini_coefficient, uplift_at
from pipelines import OUTCOMES, read_hillstrom, uplift_frame

DEFAULT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "hillstrom" / "hillstrom.csv"


def evaluate(frame: pd.DataFrame, outcome: str, seed: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    train = rng.random(len(frame)) < 0.5
    features = frame.drop(columns=list(OUTCOMES))
    y = frame[outcome].to_numpy()
    model = TwoModelUplift(n_estimators=150, num_leaves=7, min_child_samples=200, random_state=seed)
    model.fit(features[train], y[train])
    test = features[~train]
    scores = {
        "two-model uplift": model.predict_uplift(test),
        "response model": model.predict_treated(test),
        "random": rng.random(len(test)),
    }
    rows = []
    for name, score in scores.items():
        args = (y[~train], score, test["treated"].to_numpy())
        rows.append(
            {
                "model": name,
                "qini": qini_coefficient(*args),
                "auuc": auuc(*args),
                "uplift@30%": uplift_at(*args, fraction=0.3),
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--splits", type=int, default=5)
    args = parser.parse_args()
    raw = read_hillstrom(args.data)
    results = []
    for arm in ("womens", "mens"):
        frame = uplift_frame(raw, arm)
        for outcome in OUTCOMES:
            ate = average_effect(frame[outcome], frame["treated"], frame["probability"])
            for seed in range(args.splits):
                results.extend(
                    {"arm": arm, "outcome": outcome, "ate": ate, **row}
                    for row in evaluate(frame, outcome, seed)
                )
            print(f"{arm}/{outcome} done", file=sys.stderr)
    table = pd.DataFrame(results)
    summary = table.groupby(["arm", "outcome", "model"], sort=False).agg(
        ate=("ate", "first"),
        qini=("qini", "mean"),
        qini_sd=("qini", "std"),
        auuc=("auuc", "mean"),
        uplift_30=("uplift@30%", "mean"),
        uplift_30_sd=("uplift@30%", "std"),
    )
    with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 160):
        print(
            f"Hillstrom, {args.splits} random 50/50 splits (mean, sd over splits), scored on held-out halves"
        )
        print(summary.reset_index().to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
