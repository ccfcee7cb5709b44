"""Qini / AUUC / uplift at 30 % on the Hillstrom e-mail experiment: our uplift learners, the platform's
choice among them, and the peer libraries, on the same splits.

For each e-mail arm against the no-e-mail control and each outcome, over random 50/50 splits (seeds 0..4
by default): every candidate learner of ``models.estimators`` (S, T, X, DR, response ranking), the
**platform** model (``UpliftSelector`` with the uplift job's ``[uplift] candidates`` and ``folds``, run on
the split's training half only: what the job would register) and random targeting, all scored on the
held-out half. When importable, the peers run beside them on the same halves with the same LightGBM base
learner: causalml's S/T/X learners and scikit-uplift's SoloModel with treatment interactions, TwoModels
and ClassTransformation (``pip install -e '.[bench]'`` in a separate environment). Qini is reported x 1e3.

    python benchmarks/hillstrom_uplift.py [--data ../shared/data/hillstrom/hillstrom.csv] [--splits 5]
        [--outcomes visit conversion] [--arms womens mens] [--no-peers] [--json]

``--json`` prints one object per line: ``arm``, ``outcome``, ``model``, ``qini_mean``, ``qini_sd``,
``platform`` (true for the selector's choice; ``chosen`` lists what it chose per split).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from models import (
    CANDIDATES,
    UpliftSelector,
    auuc,
    average_effect,
    load_job_params,
    make_learner,
    qini_coefficient,
    uplift_at,
)
from pipelines import OUTCOMES, read_hillstrom, uplift_frame

DEFAULT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "hillstrom" / "hillstrom.csv"
# The base learner for every model here, ours and the peers' (Hillstrom is small and the effect faint:
# shallow trees, large leaves). Not the job's [uplift.model], which is sized for batch scoring.
PARAMS: dict[str, Any] = {"n_estimators": 150, "num_leaves": 7, "min_child_samples": 200, "n_jobs": 1}
PLATFORM = "platform (selector)"

Scorer = Callable[[pd.DataFrame, np.ndarray, pd.DataFrame], np.ndarray]


def _lgbm(seed: int) -> lgb.LGBMClassifier:
    return lgb.LGBMClassifier(
        n_estimators=150,
        learning_rate=0.03,
        num_leaves=7,
        min_child_samples=200,
        subsample=0.8,
        subsample_freq=1,
        n_jobs=1,
        random_state=seed,
        verbose=-1,
    )


def peer_scorers(seed: int) -> dict[str, Scorer]:
    """The peer libraries' learners that import here: name -> fit on (x, y) and score the test half."""
    found: dict[str, Scorer] = {}
    try:
        from causalml.inference.meta import BaseSClassifier, BaseTClassifier, BaseXClassifier

        def causal(cls: Any) -> Scorer:
            def run(x: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
                t = x["treated"].to_numpy()
                kwargs: dict[str, Any] = (
                    {"outcome_learner": _lgbm(seed), "effect_learner": _regressor(seed)}
                    if cls is BaseXClassifier
                    else {"learner": _lgbm(seed)}
                )
                model = cls(control_name=0, **kwargs)
                features = x.drop(columns=["treated", "probability"]).to_numpy()
                test_x = test.drop(columns=["treated", "probability"]).to_numpy()
                p = np.full(len(x), 0.5)
                if cls is BaseXClassifier:
                    model.fit(features, t, y, p=p)
                    return np.asarray(model.predict(test_x, p=np.full(len(test), 0.5))).ravel()
                model.fit(features, t, y)
                return np.asarray(model.predict(test_x)).ravel()

            return run

        found.update(
            {
                "causalml S-learner": causal(BaseSClassifier),
                "causalml T-learner": causal(BaseTClassifier),
                "causalml X-learner": causal(BaseXClassifier),
            }
        )
    except ImportError as exc:
        print(f"causalml is not importable ({exc}): its learners are not run", file=sys.stderr)
    try:
        from sklift.models import ClassTransformation, SoloModel, TwoModels

        def sklift(make: Callable[[], Any]) -> Scorer:
            def run(x: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
                model = make()
                t = x["treated"].to_numpy()
                model.fit(x.drop(columns=["treated", "probability"]), y, t)
                return np.asarray(model.predict(test.drop(columns=["treated", "probability"]))).ravel()

            return run

        found.update(
            {
                "sklift SoloModel (interactions)": sklift(
                    lambda: SoloModel(_lgbm(seed), method="treatment_interaction")
                ),
                "sklift TwoModels": sklift(lambda: TwoModels(_lgbm(seed), _lgbm(seed), method="vanilla")),
                "sklift ClassTransformation": sklift(lambda: ClassTransformation(_lgbm(seed))),
            }
        )
    except ImportError as exc:
        print(f"scikit-uplift is not importable ({exc}): its learners are not run", file=sys.stderr)
    return found


def _regressor(seed: int) -> lgb.LGBMRegressor:
    return lgb.LGBMRegressor(
        n_estimators=150, learning_rate=0.03, num_leaves=7, min_child_samples=200, n_jobs=1,
        random_state=seed, verbose=-1,
    )  # fmt: skip


def evaluate(
    frame: pd.DataFrame,
    outcome: str,
    seed: int,
    *,
    candidates: tuple[str, ...],
    folds: int,
    peers: bool,
) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    train = rng.random(len(frame)) < 0.5
    features = frame.drop(columns=list(OUTCOMES))
    y = frame[outcome].to_numpy()
    x, test = features[train], features[~train]
    selector = UpliftSelector(candidates=candidates, folds=folds, params=PARAMS, random_state=seed).fit(
        x, pd.Series(y[train], index=x.index)
    )
    scores: dict[str, np.ndarray] = {PLATFORM: selector.predict_uplift(test)}
    for name in CANDIDATES:
        if name == selector.chosen_:  # the same learner, same seed, same rows: the selector's refit
            scores[name] = scores[PLATFORM]
        else:
            scores[name] = (
                make_learner(name, random_state=seed, **PARAMS).fit(x, y[train]).predict_uplift(test)
            )
    scores["random"] = rng.random(len(test))
    if peers:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name, run in peer_scorers(seed).items():
                scores[name] = run(x, y[train], test)
    rows = []
    for name, score in scores.items():
        args = (y[~train], score, test["treated"].to_numpy())
        rows.append(
            {
                "model": name,
                "qini": 1e3 * qini_coefficient(*args),
                "auuc": 1e3 * auuc(*args),
                "uplift@30%": uplift_at(*args, fraction=0.3),
                "chosen": selector.chosen_ if name == PLATFORM else "",
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--arms", nargs="+", default=["womens", "mens"])
    parser.add_argument("--outcomes", nargs="+", default=list(OUTCOMES))
    parser.add_argument("--no-peers", action="store_true", help="skip causalml and scikit-uplift")
    parser.add_argument("--json", action="store_true", help="one JSON object per line, per model")
    args = parser.parse_args()
    job = load_job_params().uplift
    peers = not args.no_peers and bool(peer_scorers(0))
    raw = read_hillstrom(args.data)
    results = []
    for arm in args.arms:
        frame = uplift_frame(raw, arm)
        for outcome in args.outcomes:
            ate = average_effect(frame[outcome], frame["treated"], frame["probability"])
            for seed in range(args.splits):
                results.extend(
                    {"arm": arm, "outcome": outcome, "ate": ate, **row}
                    for row in evaluate(
                        frame, outcome, seed, candidates=job.candidates, folds=job.folds, peers=peers
                    )
                )
            print(f"{arm}/{outcome} done", file=sys.stderr, flush=True)
    table = pd.DataFrame(results)
    summary = table.groupby(["arm", "outcome", "model"], sort=False).agg(
        ate=("ate", "first"),
        qini_mean=("qini", "mean"),
        qini_sd=("qini", "std"),
        auuc=("auuc", "mean"),
        uplift_30=("uplift@30%", "mean"),
        chosen=("chosen", lambda c: ", ".join(f"{k} x{n}" for k, n in Counter(v for v in c if v).items())),
    )
    summary = summary.reset_index()
    if args.json:
        for row in summary.itertuples(index=False):
            doc: dict[str, object] = {
                "arm": row.arm,
                "outcome": row.outcome,
                "model": row.model,
                "qini_mean": round(float(row.qini_mean), 4),
                "qini_sd": round(float(row.qini_sd), 4),
                "platform": row.model == PLATFORM,
            }
            if row.model == PLATFORM:
                doc["chosen"] = row.chosen
            print(json.dumps(doc))
        return 0
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 200):
        print(
            f"Hillstrom, {args.splits} random 50/50 splits (mean, sd over splits), held-out halves; "
            f"Qini and AUUC x 1e3; platform = UpliftSelector({', '.join(job.candidates)}; {job.folds} folds)"
        )
        print(summary.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
