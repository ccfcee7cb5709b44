"""The churn champion on a real purchase log: CDNOW, shaped like the held-back log of issue 18.

    python benchmarks/churn_real.py [--data PATH] [--json] [--keep DIR]

CDNOW's master log (Fader & Hardie's 1/10th sample: 23,570 customers of one acquisition cohort, first
purchases January to March 1997, purchases to the end of June 1998) is bundled in the ``lifetimes`` wheel;
by default it is found there (``pip download --no-deps lifetimes==0.11.3`` and unzip
``lifetimes/datasets/CDNOW_master.txt``, or ``pip install lifetimes``, then give ``--data``).

The shape of the held-back log: a single cohort and under a year of history. Calibration is 1997-01-01 to
1997-09-30 (273 days); the judgement is who buys again in the following 273 days (1997-10-01 to
1998-06-30), which the platform never sees. The calibration rows become the platform's transactions CSV,
are ingested into a fresh SQLite ledger (``loyalty init``, ``loyalty ingest``) and the churn job runs as a
user would (``loyalty train churn --horizon-days 273``, its own MLflow store); the registered champion then
scores every customer as of 1997-10-01 from the ledger's features, and its ROC AUC on the judgement window
is printed beside:

- LightGBM alone (the job's LightGBM candidate, logged with the champion's run),
- BG/NBD fitted on the calibration history (distinct purchase days, in weeks): P(no purchase in 273 days)
  and 1 - P(alive),
- the recency x frequency rule (``RecencyFrequencyBaseline``) fitted on the calibration data itself
  (cutoff 1997-07-01, 92-day labels, the longest complete window at that cutoff),
- ``lifetimes``' BG/NBD as a cross-check when it can be imported.

It also prints the platform's own holdout figures (the job's ``val_*`` metrics).

Measured (branch wt-churnmodel, 2026-12-08): the job plans weekly, purged cutoffs with 71-day labels
(the 273-day horizon does not fit; BG/NBD extrapolates to it) and registers the stack, best on its holdout
(ROC AUC: stack 0.7524, BG/NBD E[n] candidate 0.7475, LightGBM 0.7394; the classic BG/NBD baseline
0.7513). On the next 273 days: champion 0.7671, LightGBM alone 0.7533, BG/NBD expected purchases 0.7626,
BG/NBD P(none) 0.7459, recency x frequency 0.7235.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CALIBRATION_END = pd.Timestamp("1997-10-01", tz="UTC")  # first day not seen by the platform
JUDGEMENT_END = pd.Timestamp("1998-07-01", tz="UTC")
HORIZON_DAYS = 273
BASELINE_CUTOFF = pd.Timestamp("1997-07-01", tz="UTC")
BASELINE_HORIZON = 92
WHEEL_HINT = (
    "pip download --no-deps lifetimes==0.11.3 -d /tmp/lt && cd /tmp/lt && "
    "unzip -o Lifetimes-0.11.3-py3-none-any.whl lifetimes/datasets/CDNOW_master.txt"
)


def locate_cdnow(given: Path | None) -> Path:
    """``--data``, else the copy inside an installed ``lifetimes``; a clear failure names the commands."""
    if given is not None:
        if not given.is_file():
            sys.exit(f"--data {given}: no such file")
        return given
    try:
        dist = importlib.metadata.distribution("lifetimes")
    except importlib.metadata.PackageNotFoundError:
        sys.exit(
            f"CDNOW_master.txt not found: give --data PATH, e.g. after\n  {WHEEL_HINT}\n"
            "(or pip install lifetimes)"
        )
    path = Path(str(dist.locate_file("lifetimes/datasets/CDNOW_master.txt")))
    if not path.is_file():
        sys.exit(f"lifetimes is installed but {path} is missing: give --data PATH ({WHEEL_HINT})")
    return path


def read_cdnow(path: Path) -> pd.DataFrame:
    """customer_id, day (UTC midnight), cds, amount; one row per line of the master log."""
    raw = pd.read_csv(path, sep=r"\s+", header=None, skiprows=1, dtype=str,
                      names=["customer_id", "date", "cds", "amount"])  # fmt: skip
    if raw.iloc[0]["customer_id"].isdigit() is False:
        raw = raw.iloc[1:]
    return pd.DataFrame(
        {
            "customer_id": "C" + raw["customer_id"].str.zfill(5),
            "day": pd.to_datetime(raw["date"], format="%Y%m%d", utc=True),
            "cds": raw["cds"].astype(int),
            "amount": raw["amount"].astype(float),
        }
    )


def transactions_csv(log: pd.DataFrame, out: Path) -> int:
    """The calibration rows as the platform's transactions file (``loyalty ingest``): one purchase per line,
    at noon of its day (the log has no time); a zero amount (returns, free items) becomes 0.01 so the
    purchase occasion stays in the ledger."""
    cal = log[log["day"] < CALIBRATION_END].reset_index(drop=True)
    seq = cal.groupby(["customer_id", "day"]).cumcount()
    frame = pd.DataFrame(
        {
            "transaction_id": cal["customer_id"]
            + "-"
            + cal["day"].dt.strftime("%Y%m%d")
            + "-"
            + seq.astype(str),
            "customer_id": cal["customer_id"],
            "occurred_at": (cal["day"] + pd.Timedelta(hours=12)).dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "type": "purchase",
            "amount": cal["amount"].clip(lower=0.01).map(lambda v: f"{v:.2f}"),
            "category": "entertainment",
            "channel": "online",
        }
    )
    frame.to_csv(out, index=False)
    return len(frame)


def loyalty(args: list[str], env: dict[str, str]) -> str:
    exe = Path(sys.executable).with_name("loyalty")
    cmd = [str(exe), *args]  # our own CLI, arguments from this script
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        sys.exit(f"loyalty {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def judgement_labels(log: pd.DataFrame, customers: pd.Series) -> np.ndarray:
    """1 = no purchase in the judgement window (churned), per customer of ``customers``."""
    window = log[(log["day"] >= CALIBRATION_END) & (log["day"] < JUDGEMENT_END)]
    return (~customers.isin(set(window["customer_id"]))).to_numpy(np.int64)


def score_everything(log: pd.DataFrame, db_url: str, tracking_uri: str) -> dict[str, Any]:
    """The champion and every comparison scored as of the end of calibration, ROC AUC on the judgement."""
    from sklearn.metrics import roc_auc_score

    from loyalty_core import get_settings, load_rules, make_engine
    from models import BetaGeoNBD, ChurnInputs, RecencyFrequencyBaseline, load_champion, summarise
    from pipelines import FEATURE_NAMES, FeatureConfig, churn_labels, compute_features, extract

    rules = load_rules(get_settings().rules)
    engine = make_engine(db_url)
    frames = extract(engine, rules=rules, until=CALIBRATION_END.to_pydatetime())
    config = FeatureConfig.from_rules(rules)
    features = compute_features(frames, CALIBRATION_END, config)
    features = features[features["txn_count_365d"].fillna(0) > 0].reset_index(drop=True)
    y = judgement_labels(log, features["customer_id"].astype(str))
    out: dict[str, Any] = {"customers": len(y), "churn_rate": float(y.mean())}

    champion = load_champion("loyalty-churn", tracking_uri=tracking_uri)
    matrix = np.ascontiguousarray(features[list(FEATURE_NAMES)].to_numpy(np.float64, na_value=np.nan))
    inputs = ChurnInputs.for_scorer(champion.scorer)
    auc: dict[str, float] = {}
    auc["champion"] = roc_auc_score(y, champion.scorer.predict_proba(inputs.matrix(matrix)))
    out["champion_kind"] = champion.scorer.meta.get("candidate", "lightgbm")
    lightgbm = getattr(champion.scorer, "part", lambda _: None)("lightgbm")
    if lightgbm is not None:
        lgb_inputs = ChurnInputs.for_scorer(lightgbm)
        auc["lightgbm_alone"] = roc_auc_score(y, lightgbm.predict_proba(lgb_inputs.matrix(matrix)))
    elif out["champion_kind"] == "lightgbm":
        auc["lightgbm_alone"] = auc["champion"]

    cal = log[log["day"] < CALIBRATION_END]
    rfm = summarise(pd.DataFrame({"customer_id": cal["customer_id"], "occurred_at": cal["day"]}),
                    as_of=CALIBRATION_END)  # fmt: skip
    model = BetaGeoNBD().fit(rfm)
    rfm = rfm.reindex(features["customer_id"].astype(str))
    t = HORIZON_DAYS / 7.0
    auc["bgnbd_p_none"] = roc_auc_score(y, model.churn_score(t, rfm["frequency"], rfm["recency"], rfm["T"]))
    auc["bgnbd_1_minus_p_alive"] = roc_auc_score(
        y, 1 - model.p_alive(rfm["frequency"], rfm["recency"], rfm["T"])
    )
    auc["bgnbd_expected"] = roc_auc_score(
        y, -model.expected_purchases(t, rfm["frequency"], rfm["recency"], rfm["T"])
    )
    out["bgnbd_params"] = {k: float(v) for k, v in model.params_.items()}

    early = compute_features(frames, BASELINE_CUTOFF, config)
    labels = churn_labels(frames, BASELINE_CUTOFF, horizon_days=BASELINE_HORIZON, end=CALIBRATION_END)
    early = early.merge(labels, on=["customer_id", "as_of"], how="inner")
    early = early[early["txn_count_365d"].fillna(0) > 0]
    rule = RecencyFrequencyBaseline().fit(early, early["churned"].to_numpy(np.int64))
    auc["recency_x_frequency"] = roc_auc_score(y, rule.predict_proba(features)[:, 1])

    try:
        from lifetimes import BetaGeoFitter  # type: ignore[import-not-found]
    except ImportError:
        out["lifetimes"] = "not importable (cross-check skipped)"
    else:
        fitter = BetaGeoFitter().fit(rfm["frequency"], rfm["recency"], rfm["T"])
        auc["lifetimes_1_minus_p_alive"] = roc_auc_score(
            y, 1 - fitter.conditional_probability_alive(rfm["frequency"], rfm["recency"], rfm["T"])
        )
    out["roc_auc"] = {k: float(v) for k, v in auc.items()}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="CDNOW_master.txt (default: from lifetimes)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--keep", type=Path, default=None, help="keep the ledger and MLflow store here")
    args = parser.parse_args()
    path = locate_cdnow(args.data)
    log = read_cdnow(path)
    work = args.keep or Path(tempfile.mkdtemp(prefix="churn-real-"))
    work.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    try:
        db_url = f"sqlite:///{work / 'ledger.db'}"
        tracking_uri = f"sqlite:///{work / 'mlflow.db'}"
        env = {**os.environ, "LOYALTY_DATABASE_URL": db_url, "MLFLOW_TRACKING_URI": tracking_uri}
        csv = work / "cdnow_calibration.csv"
        rows = transactions_csv(log, csv)
        loyalty(["init"], env)
        loyalty(["ingest", str(csv)], env)
        trained = loyalty(["train", "churn", "--horizon-days", str(HORIZON_DAYS)], env)
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
        figures = score_everything(log, db_url, tracking_uri)
        figures["calibration_rows"] = rows
        figures["seconds"] = round(time.perf_counter() - began, 1)
        figures["train_report"] = trained.strip().splitlines()
        if args.json:
            print(json.dumps(figures, indent=1))
        else:
            print("\n".join(figures.pop("train_report")))
            print(f"\nCDNOW, calibration to 1997-09-30, judged on 1997-10-01..1998-06-30 "
                  f"({figures['customers']:,} customers, {figures['churn_rate']:.1%} churned); "
                  f"champion: {figures['champion_kind']}")  # fmt: skip
            print("| score | next-273-day ROC AUC |\n| --- | ---: |")
            for name, value in figures["roc_auc"].items():
                print(f"| {name} | {value:.4f} |")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
