"""``loyalty train churn``: features over monthly cutoffs -> LightGBM churn model, two baselines -> MLflow.

Time, from the end backwards. ``as_of`` is the LAST training cutoff: its labels look ``horizon_days`` past
it and no further, so it must satisfy ``as_of + horizon <= data end`` (the midnight after the last posted
transaction); by default it is the latest such date. Nothing after ``as_of + horizon`` is even read. The
cutoffs are ``as_of``, ``as_of - 30 days``, ... (``n_cutoffs`` of them, none with less than
``min_history_days`` of data before it). ``models.training.train`` validates on the latest (``as_of``),
early-stops and calibrates on the one before, grows trees on the rest.

Inputs per cutoff: the 123 customer features plus three BG/NBD columns (``models.assemble``), from a BG/NBD
fitted on that cutoff's own feature vectors, i.e. only on facts before the cutoff. The validation cutoff's
parameters ship with the model (scorer meta ``bgnbd``) so the service and batch scoring compute the same
columns.

Baselines on the same holdout: the recency x frequency rule (``baseline_val_*``, inside ``train``) and the
classic BG/NBD fitted on the purchase log itself (distinct purchase days of qualifying activity before
``as_of``, ``models.bgnbd.summarise``): ``bgnbd_val_*`` rank by its expected purchases over the horizon
(low = churn), ``bgnbd_palive_val_roc_auc`` by 1 - P(alive) alone, ``bgnbd_pnone_val_*`` use its
probability of no purchase in the horizon as the churn probability.

Customers who stopped long before a cutoff are easy to call, and they are many; ``*_active30_*`` metrics
repeat the ROC AUC on the holdout customers with a transaction in the 30 days before it, where the
models have to tell who is about to go.

On a simulated bank (``truth_dir``): ``val_roc_auc_truth`` ranks the holdout customers by the true
probability of their label given the simulator's latent state at the cutoff
(``pipelines.simulator.churn_truth``: 1 for those already gone, the fading and the hazard of the others
against their rate of purchases and bills over the horizon), ``val_roc_auc_model_on_truth_rows`` is the
model on the same customers and ``val_roc_auc_gap_to_truth`` the difference: how much is left to win.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sqlalchemy import Engine

from loyalty_core import InvalidInput, Rules
from models.assemble import BgnbdParams, ChurnInputs, bgnbd_history
from models.bgnbd import BetaGeoNBD, summarise
from models.evaluation import classification_metrics, gap_to_truth, prefixed
from models.job_common import (
    DAY,
    LedgerSpan,
    Progress,
    ResultWithMeta,
    day,
    ledger_span,
    metrics_table,
    no_progress,
    parse_date,
    timed,
    use_store,
)
from models.tracking import RunReport, log_training
from models.training import TrainingResult, train
from pipelines import (
    CHURN_ACTIVITY,
    FEATURE_NAMES,
    FeatureConfig,
    LedgerFrames,
    churn_label_counts,
    churn_labels,
    churn_truth,
    compute_features,
    extract,
    output_root,
)

log = logging.getLogger(__name__)

HORIZON_DAYS = 90
N_CUTOFFS = 6
SPACING_DAYS = 30
MIN_HISTORY_DAYS = 60
# Fewest churned and fewest active customers each role (fit, calibration, validation) needs for a default
# cutoff: with fewer, a metric or a calibration curve rests on a handful of customers.
MIN_CLASS_ROWS = 10
# A day with fewer active customers than this share of a usual day's (the median over days with any) is
# quiet: a label window holding one says "churned" of customers the data simply does not cover yet.
QUIET_SHARE = 0.1
# Scoring budget (benchmarks/batch_scoring.py): churn shares it with the offer models, so fewer rounds than
# models.training.MAX_ROUNDS; early stopping lands well inside on the simulator (see README "Models").
CHURN_PARAMS: dict[str, Any] = {
    "max_rounds": 150,
    "learning_rate": 0.1,
    "categorical": ("gender", "region", "preferred_channel"),
}


@dataclass
class ChurnReport:
    """What a churn training run did and found (the CLI prints ``lines()``)."""

    as_of: pd.Timestamp
    horizon_days: int
    cutoffs: list[str]
    rows: int
    customers: int
    metrics: dict[str, float]
    run: RunReport | None
    bgnbd: dict[str, float]
    seconds: dict[str, float] = field(default_factory=dict)
    result: TrainingResult | None = field(default=None, repr=False)  # the fitted model (``result.scorer()``)
    chosen: str = "given"  # how the as-of was picked: given, or why this default (``choose_as_of``)

    def lines(self) -> list[str]:
        m = self.metrics
        out = [
            f"churn model as of {day(self.as_of)} (horizon {self.horizon_days} days): {self.rows:,} rows, "
            f"{self.customers:,} customers, cutoffs {', '.join(self.cutoffs)} (validation: the last)",
            f"as-of: {self.chosen}",
            *metrics_table(
                m,
                (
                    ("LightGBM", "val_"),
                    ("recency x freq.", "baseline_val_"),
                    ("BG/NBD E[purch.]", "bgnbd_val_"),
                    ("BG/NBD P(none)", "bgnbd_pnone_val_"),
                ),
                width=17,
            ),
        ]
        out.append(f"BG/NBD P(alive) alone: ROC AUC {m['bgnbd_palive_val_roc_auc']:.4f}")
        if "val_active30_roc_auc" in m:
            out.append(
                f"active in the last 30 days ({int(m['val_active30_rows']):,} customers), ROC AUC: LightGBM "
                f"{m['val_active30_roc_auc']:.4f}, recency x freq. {m['baseline_active30_val_roc_auc']:.4f}, "
                f"BG/NBD {m['bgnbd_active30_val_roc_auc']:.4f} "
                f"(P(none) {m['bgnbd_pnone_active30_val_roc_auc']:.4f})"
            )
        if "val_roc_auc_truth" in m:
            out.append(
                f"vs the simulator's truth ({int(m['val_truth_rows']):,} customers): ROC AUC of the true "
                f"P(churn) {m['val_roc_auc_truth']:.4f}, LightGBM {m['val_roc_auc_model_on_truth_rows']:.4f} "
                f"on the same customers: gap to the truth {m['val_roc_auc_gap_to_truth']:+.4f}"
            )
        if self.run is not None:
            out.append(f"{self.run.model_name} v{self.run.version}: {self.run.reason}")
            out.append(f"MLflow run {self.run.run_id}")
        out.append("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items()))
        return out


def latest_complete_as_of(span: LedgerSpan, horizon_days: int) -> pd.Timestamp:
    """The latest midnight whose label window ``[as_of, as_of + horizon)`` ends within the data."""
    return (span.end - pd.Timedelta(days=horizon_days)).floor("D")


def check_as_of(as_of: pd.Timestamp, span: LedgerSpan, horizon_days: int) -> None:
    stop = as_of + pd.Timedelta(days=horizon_days)
    if stop > span.end:
        latest = latest_complete_as_of(span, horizon_days)
        raise InvalidInput(
            f"--as-of {day(as_of)}: its {horizon_days}-day label window ends {day(stop)}, after the data "
            f"(transactions up to {day(span.end - DAY)}); the latest complete cutoff is {day(latest)}",
            field="as_of",
        )
    if as_of <= span.first:
        raise InvalidInput(
            f"--as-of {day(as_of)} is before the first transaction ({day(span.first)})", field="as_of"
        )


def churn_cutoffs(
    as_of: pd.Timestamp,
    span: LedgerSpan,
    *,
    n_cutoffs: int = N_CUTOFFS,
    spacing_days: int = SPACING_DAYS,
    min_history_days: int = MIN_HISTORY_DAYS,
) -> list[pd.Timestamp]:
    """``as_of`` and the cutoffs every ``spacing_days`` before it that have enough history, oldest first."""
    earliest = span.first.floor("D") + pd.Timedelta(days=min_history_days)
    out = [as_of - pd.Timedelta(days=spacing_days * k) for k in range(n_cutoffs)]
    out = sorted(c for c in out if c >= earliest)
    if len(out) < 3:
        raise InvalidInput(
            f"only {len(out)} cutoff(s) with {min_history_days} days of history before {day(as_of)}: "
            "out-of-time training needs 3 (fit, calibrate, validate); use a later --as-of or more history",
            field="as_of",
        )
    return out


def role_counts(counts: pd.DataFrame, grid: Sequence[pd.Timestamp]) -> dict[str, tuple[int, int]]:
    """(churned, active) rows of each role ``models.training.train`` gives the cutoffs of ``grid``: the
    last validates, the one before calibrates, the rest fit."""
    roles = {"fit": list(grid[:-2]), "calibration": [grid[-2]], "validation": [grid[-1]]}
    out: dict[str, tuple[int, int]] = {}
    for role, dates in roles.items():
        rows = counts.reindex(pd.DatetimeIndex(dates)).fillna(0)
        churned = int(rows["churned"].sum())
        out[role] = (churned, int(rows["known"].sum()) - churned)
    return out


def quiet_days(frames: LedgerFrames, span: LedgerSpan) -> pd.DatetimeIndex:
    """Days of the ledger's span with fewer than ``QUIET_SHARE`` of a usual day's active customers."""
    txns = frames.transactions
    days = txns["occurred_at"].dt.floor("D")
    active = (
        txns.loc[txns["type"].astype("str").isin(list(CHURN_ACTIVITY)).to_numpy()]
        .groupby(days, observed=True)["customer_id"]
        .nunique()
    )
    every = pd.date_range(span.first.floor("D"), span.end - DAY, freq="D")
    per_day = active.reindex(every, fill_value=0)
    usual = float(per_day[per_day > 0].median()) if (per_day > 0).any() else 0.0
    return pd.DatetimeIndex(per_day.index[per_day.to_numpy() < QUIET_SHARE * usual])


def choose_as_of(
    frames: LedgerFrames,
    span: LedgerSpan,
    *,
    horizon_days: int = HORIZON_DAYS,
    n_cutoffs: int = N_CUTOFFS,
    spacing_days: int = SPACING_DAYS,
    min_history_days: int = MIN_HISTORY_DAYS,
    min_class_rows: int = MIN_CLASS_ROWS,
) -> tuple[pd.Timestamp, str]:
    """The default last cutoff, and a sentence saying why it: the latest midnight whose label window is
    complete and free of quiet days (``quiet_days``: a live posting today after a history that ends
    yesterday makes today one) AND whose fit, calibration and validation rows each hold ``min_class_rows``
    churned and active customers, walking back a day at a time.

    The latest complete window is not enough: after a quiet spell (a history that stopped, then one live
    posting today) its labels are all "churned" and training could only fail. A failure names the dates
    tried and what the latest of them lacked.
    """
    latest = latest_complete_as_of(span, horizon_days)
    earliest = span.first.floor("D") + pd.Timedelta(days=min_history_days + spacing_days * 2)
    if latest < earliest:
        churn_cutoffs(latest, span, n_cutoffs=n_cutoffs, spacing_days=spacing_days)  # says what is short
    counts = churn_label_counts(
        frames,
        earliest - pd.Timedelta(days=spacing_days * (n_cutoffs - 1)),
        latest,
        horizon_days=horizon_days,
    )
    quiet = quiet_days(frames, span)
    first_reason = ""
    tried = 0
    candidate = latest
    while candidate >= earliest:
        tried += 1
        window = quiet[(quiet >= candidate) & (quiet < candidate + pd.Timedelta(days=horizon_days))]
        if len(window):
            first_reason = first_reason or (
                f"its label window holds {len(window)} quiet day(s) from {day(window[0])} (fewer than "
                f"{QUIET_SHARE:.0%} of a usual day's active customers)"
            )
            candidate -= DAY
            continue
        grid = churn_cutoffs(
            candidate, span, n_cutoffs=n_cutoffs, spacing_days=spacing_days, min_history_days=min_history_days
        )
        short = {
            role: (churned, active)
            for role, (churned, active) in role_counts(counts, grid).items()
            if min(churned, active) < min_class_rows
        }
        if not short:
            why = (
                f"{day(candidate)}, the latest whose {horizon_days}-day label window is complete"
                if candidate == latest
                else f"{day(candidate)}, walked back {tried - 1} day(s) from {day(latest)} (the latest "
                f"complete {horizon_days}-day label window) to the first free of quiet days whose rows "
                f"hold both classes; "
                f"at {day(latest)}: {first_reason}"
            )
            return candidate, why + " (give --as-of to choose)"
        if not first_reason:
            first_reason = "; ".join(
                f"{role} rows {churned:,} churned / {active:,} active"
                for role, (churned, active) in short.items()
            )
        candidate -= DAY
    raise InvalidInput(
        f"no churn cutoff works: tried every as-of from {day(latest)} back to {day(earliest)} "
        f"({tried} dates); "
        f"each needs at least {min_class_rows} churned and {min_class_rows} active customers in its fit, "
        f"calibration and validation rows; at {day(latest)}: {first_reason or 'too little history'}",
        field="as_of",
    )


def fit_bgnbd(history: np.ndarray, horizon_days: int) -> BgnbdParams:
    """BG/NBD on the rows with a history (``assemble.bgnbd_history``); a tiny penalty if plain ML fails."""
    ok = ~np.isnan(history).any(axis=1)
    if ok.sum() < 20:
        raise InvalidInput("too few customers with transactions to fit BG/NBD (need 20)", field="cutoffs")
    frame = pd.DataFrame(history[ok], columns=["frequency", "recency", "T"])
    for penalizer in (0.0, 0.001, 0.01):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            try:
                model = BetaGeoNBD(penalizer=penalizer).fit(frame)
            except ConvergenceWarning as exc:
                log.info("BG/NBD (penalizer %g) did not converge: %s", penalizer, exc)
                continue
        return BgnbdParams(**model.params_, horizon_days=horizon_days)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = BetaGeoNBD(penalizer=0.01).fit(frame)
    return BgnbdParams(**model.params_, horizon_days=horizon_days)


def churn_frame(
    frames: LedgerFrames,
    cutoffs: Sequence[pd.Timestamp],
    *,
    horizon_days: int,
    end: pd.Timestamp,
    config: FeatureConfig,
    progress: Progress = no_progress,
) -> tuple[pd.DataFrame, dict[pd.Timestamp, BgnbdParams]]:
    """Keys, model inputs (``ChurnInputs`` columns) and ``churned`` for every cutoff, stacked."""
    parts = []
    params: dict[pd.Timestamp, BgnbdParams] = {}
    for cutoff in cutoffs:
        features = compute_features(frames, cutoff, config)
        labels = churn_labels(frames, cutoff, horizon_days=horizon_days, end=end)
        joined = features.merge(labels, on=["customer_id", "as_of"], how="inner", validate="1:1")
        matrix = np.ascontiguousarray(joined[list(FEATURE_NAMES)].to_numpy(dtype=np.float64, na_value=np.nan))
        params[cutoff] = fit_bgnbd(bgnbd_history(matrix), horizon_days)
        inputs = ChurnInputs(FEATURE_NAMES, bgnbd=params[cutoff])
        part = pd.DataFrame(inputs.matrix(matrix), columns=list(inputs.columns))
        for col in FEATURE_NAMES:  # keep the catalogue's integer dtypes (the model signature shows them)
            if joined[col].dtype.kind == "i":
                part[col] = joined[col].to_numpy()
        part.insert(0, "customer_id", joined["customer_id"].to_numpy())
        part.insert(1, "as_of", joined["as_of"].to_numpy())
        part["churned"] = joined["churned"].to_numpy()
        parts.append(part)
        progress("features", 1, len(cutoffs))
    frame = pd.concat(parts, ignore_index=True)
    frame["as_of"] = pd.to_datetime(frame["as_of"], utc=True)
    return frame, params


def classic_bgnbd_scores(
    frames: LedgerFrames, as_of: pd.Timestamp, customers: pd.Series, horizon_days: int
) -> dict[str, np.ndarray]:
    """The textbook BG/NBD on the purchase log before ``as_of`` (distinct days of qualifying activity, in
    weeks): per customer of ``customers``, expected purchases over the horizon, P(alive), P(no purchase).
    Customers without any purchase before ``as_of`` get 0 expected purchases (the model says nothing)."""
    txns = frames.transactions
    qualifying = txns[txns["type"].astype("str").isin(list(CHURN_ACTIVITY)).to_numpy()]
    rfm = summarise(
        pd.DataFrame(
            {"customer_id": qualifying["customer_id"].astype("str"), "occurred_at": qualifying["occurred_at"]}
        ),
        as_of=as_of,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = BetaGeoNBD().fit(rfm)
    t = horizon_days / 7.0
    expected = model.expected_purchases(t, rfm["frequency"], rfm["recency"], rfm["T"])
    alive = model.p_alive(rfm["frequency"], rfm["recency"], rfm["T"])
    none = model.churn_score(t, rfm["frequency"], rfm["recency"], rfm["T"])
    pos = rfm.index.get_indexer(pd.Index(customers.astype("str")))
    has = pos >= 0

    def pick(values: np.ndarray, missing: float) -> np.ndarray:
        return np.where(has, np.asarray(values)[np.where(has, pos, 0)], missing)

    return {
        "expected": pick(expected, 0.0),
        "p_alive": pick(alive, 1.0),
        "p_none": pick(none, 1.0),
        "params": np.array([model.params_[p] for p in ("r", "alpha", "a", "b")]),
    }


def bgnbd_metrics(y: np.ndarray, scores: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Holdout metrics of the classic BG/NBD: expected purchases turned into a rank-preserving churn score
    (``exp(-E)``, so log-loss and Brier are shown but only its ranking metrics mean much), P(none) as it is,
    and 1 - P(alive)."""
    ranked = np.exp(-np.asarray(scores["expected"], dtype=np.float64))
    out = prefixed(classification_metrics(y, ranked), "bgnbd_val_")
    out.update(prefixed(classification_metrics(y, np.clip(scores["p_none"], 0.0, 1.0)), "bgnbd_pnone_val_"))
    out["bgnbd_palive_val_roc_auc"] = classification_metrics(y, 1.0 - np.asarray(scores["p_alive"]))[
        "roc_auc"
    ]
    return out


def active_metrics(
    result: TrainingResult, classic: Mapping[str, np.ndarray], days: int = 30
) -> dict[str, float]:
    """ROC AUC of each score on the holdout customers with a transaction in the last ``days`` days."""
    recent = result.validation["days_since_last_txn"].to_numpy(dtype=np.float64, na_value=np.nan) <= days
    y = result.y_val[recent]
    if len(np.unique(y)) < 2:
        return {}
    tag = f"active{days}"
    scores = {
        f"val_{tag}_roc_auc": result.proba_val,
        f"baseline_{tag}_val_roc_auc": result.baseline_proba_val,
        f"bgnbd_{tag}_val_roc_auc": -np.asarray(classic["expected"]),
        f"bgnbd_pnone_{tag}_val_roc_auc": np.asarray(classic["p_none"]),
    }
    out = {
        name: classification_metrics(y, np.clip(s[recent], -1e300, None))["roc_auc"]
        for name, s in scores.items()
    }
    out[f"val_{tag}_rows"] = float(recent.sum())
    return out


def train_churn(
    engine: Engine,
    *,
    rules: Rules,
    as_of: Any = None,
    horizon_days: int = HORIZON_DAYS,
    cutoffs: Sequence[Any] | None = None,
    n_cutoffs: int = N_CUTOFFS,
    spacing_days: int = SPACING_DAYS,
    params: Mapping[str, Any] | None = None,
    truth_dir: Path | None = None,
    tracking_uri: str | None = None,
    register: bool = True,
    promote: bool = True,
    progress: Progress | None = None,
) -> ChurnReport:
    """Train, evaluate against both baselines, log to MLflow and register ``loyalty-churn`` (see module doc).

    ``cutoffs`` overrides the monthly grid (the latest is then the validation cutoff and must equal
    ``as_of`` when both are given). ``register=False`` trains and evaluates without MLflow. ``truth_dir``:
    a simulator output (or its ``truth/``) to measure the gap to the truth on.
    """
    if horizon_days < 1:
        raise InvalidInput("--horizon-days must be at least 1", field="horizon_days")
    if truth_dir is not None:
        output_root(Path(truth_dir))  # a wrong path fails now, not after the training
    tick = progress or no_progress
    seconds: dict[str, float] = {}
    span = ledger_span(engine)
    stamps = sorted({c for c in (parse_date(c, "cutoffs") for c in cutoffs or ()) if c is not None})
    chosen = parse_date(as_of)
    if stamps and chosen is not None and stamps[-1] != chosen:
        raise InvalidInput("--as-of must be the latest of the cutoffs", field="as_of")
    frames: LedgerFrames | None = None
    how = "given"
    if chosen is None and not stamps:
        # the whole ledger, once: the default as-of is the latest whose labels can train (``choose_as_of``)
        tick("extract", 0, None)
        with timed(seconds, "extract"):
            frames = extract(engine, rules=rules, until=span.end.to_pydatetime())
        chosen, how = choose_as_of(
            frames, span, horizon_days=horizon_days, n_cutoffs=n_cutoffs, spacing_days=spacing_days
        )
        log.info("churn as-of: %s", how)
    last = chosen or stamps[-1]
    check_as_of(last, span, horizon_days)
    grid = stamps or churn_cutoffs(last, span, n_cutoffs=n_cutoffs, spacing_days=spacing_days)
    if len(grid) < 3:
        raise InvalidInput("give at least 3 cutoffs (fit, calibrate, validate)", field="cutoffs")
    until = last + pd.Timedelta(days=horizon_days)
    if frames is None or until < span.end:  # nothing after the last label window is even read
        tick("extract", 0, None)
        with timed(seconds, "extract"):
            frames = extract(engine, rules=rules, until=until.to_pydatetime())
    tick("extract", 1, 1)
    config = FeatureConfig.from_rules(rules)
    with timed(seconds, "features"):
        frame, bgnbd_by_cutoff = churn_frame(
            frames, grid, horizon_days=horizon_days, end=until, config=config, progress=tick
        )
    tick("train", 0, 1)
    with timed(seconds, "train"):
        result: TrainingResult = train(frame, "churn", params={**CHURN_PARAMS, **(params or {})})
        val = frame[frame["as_of"] == frame["as_of"].max()]
        classic = classic_bgnbd_scores(frames, last, val["customer_id"], horizon_days)
        result.metrics.update(bgnbd_metrics(result.y_val, classic))
        result.metrics.update(active_metrics(result, classic))
        if truth_dir is not None:
            truth = churn_truth(Path(truth_dir), last.to_pydatetime(), horizon_days)
            result.metrics.update(
                gap_to_truth(result.validation, result.y_val, result.proba_val, truth, "p_churn")
            )
    tick("train", 1, 1)
    validation_params = bgnbd_by_cutoff[last]
    result = ResultWithMeta.wrap(
        result, {"bgnbd": validation_params.as_dict(), "horizon_days": horizon_days, "kind": "churn"}
    )
    result.data["horizon_days"] = horizon_days
    result.data["bgnbd_by_cutoff"] = {day(c): p.as_dict() for c, p in bgnbd_by_cutoff.items()}
    result.data["classic_bgnbd"] = dict(
        zip(("r", "alpha", "a", "b"), classic["params"].tolist(), strict=True)
    )
    run = None
    if register:
        tick("mlflow", 0, 1)
        with timed(seconds, "mlflow"):
            run = log_training(
                result,
                tracking_uri=tracking_uri,
                promote=promote,
                run_name=f"churn as of {day(last)}",
                tags={"as_of": day(last), "as_of_chosen": how, "horizon_days": str(horizon_days)},
            )
            # the cutoff is a parameter of the run like the rest of its data (``data.*``)
            from mlflow import MlflowClient

            client = MlflowClient(tracking_uri=use_store(tracking_uri))
            client.log_param(run.run_id, "data.as_of", day(last))
            client.log_param(run.run_id, "data.as_of_chosen", how[:6000])
        tick("mlflow", 1, 1)
    return ChurnReport(
        as_of=last,
        horizon_days=horizon_days,
        cutoffs=[day(c) for c in grid],
        rows=len(frame),
        customers=int(frame["customer_id"].nunique()),
        metrics=dict(run.metrics if run is not None else result.metrics),
        run=run,
        bgnbd=validation_params.as_dict(),
        seconds=seconds,
        result=result,
        chosen=how,
    )
