"""``loyalty train churn``: features over cutoffs -> churn candidates, the best on the holdout -> MLflow.

Time, from the end backwards. ``as_of`` is the LAST training cutoff: its labels look ``horizon_days`` past
it and no further, so it must satisfy ``as_of + horizon <= data end`` (the midnight after the last posted
transaction); by default it is the latest such date. Nothing after ``as_of + horizon`` is even read. The
cutoffs are ``as_of``, ``as_of - 30 days``, ... (``n_cutoffs`` of them, none with less than
``min_history_days`` of data before it). ``models.estimators.training.train`` validates on the latest
(``as_of``), early-stops and calibrates on the one before, grows trees on the rest.

The steps are pure (``models.jobs.churn_cutoffs`` chooses the cutoffs, ``models.jobs.churn_steps`` builds
the frame, fits and evaluates: the 123 customer features plus three BG/NBD columns per cutoff, and both
baselines on the same holdout); this module only wires them to the ledger, MLflow and the parameters
(``[churn]`` of ``models/jobs/parameters.toml``, logged with the run as ``job.churn.*``).

Short histories and long horizons (``churn_cutoffs.cutoff_plan``): under ``short_history_days`` of data the
cutoffs are weekly and the validation purged; a horizon longer than complete label windows allow trains
its labels on the longest window that fits while BG/NBD carries the requested horizon. The registered model
is the best of the candidates on the one holdout (``churn_candidates``: LightGBM, BG/NBD's P(none) and
expected purchases, their stack); ``val_*`` are its metrics, ``candidate_<name>_val_*`` each candidate's,
the run's tag ``champion.candidate`` says which won.

On a simulated bank (``truth_dir``): ``val_roc_auc_truth`` ranks the holdout customers by the true
probability of their label given the simulator's latent state at the cutoff
(``pipelines.churn_truth``: 1 for those already gone, the fading and the hazard of the others
against their rate of purchases and bills over the horizon), ``val_roc_auc_model_on_truth_rows`` is the
model on the same customers and ``val_roc_auc_gap_to_truth`` the difference: how much is left to win.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from loyalty_core import InvalidInput, Rules
from models.estimators.training import TrainingResult
from models.jobs.churn_candidates import CANDIDATES, CandidateChoice, choose_candidate
from models.jobs.churn_cutoffs import CutoffPlan, check_as_of, choose_as_of, churn_cutoffs, cutoff_plan
from models.jobs.churn_steps import (
    adopt_choice,
    churn_frame,
    churn_result,
    evaluate_churn,
    fit_churn,
    served_bgnbd,
)
from models.jobs.common import Progress, day, metrics_table, no_progress, parse_date, timed
from models.jobs.params import ChurnParams, flatten, job_params_in_use
from models.jobs.reads import ledger_span
from models.jobs.requests import ChurnRequest, Registration
from models.registry.store import use_store
from models.registry.tracking import RunReport, log_training
from pipelines import FeatureConfig, LedgerFrames, churn_truth, extract, output_root

log = logging.getLogger(__name__)


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
    plan: CutoffPlan | None = None  # spacing, label window, purge (``churn_cutoffs.cutoff_plan``)
    choice: CandidateChoice | None = field(default=None, repr=False)  # the champion's candidates

    def lines(self) -> list[str]:
        m = self.metrics
        kind = self.choice.chosen if self.choice is not None else "lightgbm"
        labels = self.plan.label_days if self.plan is not None else self.horizon_days
        candidates = [
            (name, f"candidate_{name}_val_")
            for name in (self.choice.metrics if self.choice is not None else ())
            if f"candidate_{name}_val_roc_auc" in m
        ]
        out = [
            f"churn model as of {day(self.as_of)} (horizon {self.horizon_days} days, labels over {labels}): "
            f"{self.rows:,} rows, "
            f"{self.customers:,} customers, cutoffs {', '.join(self.cutoffs)} (validation: the last)",
            f"as-of: {self.chosen}",
            *(self.plan.lines() if self.plan is not None else []),
            *([self.choice.sentence()] if self.choice is not None else []),
            *metrics_table(
                m,
                (
                    (f"champion: {kind}"[:17], "val_"),
                    *candidates,
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


def resolve_churn(params: ChurnParams, request: ChurnRequest) -> ChurnParams:
    """The file's ``[churn]`` with the request's overrides: what the run uses and logs."""
    return dataclasses.replace(
        params,
        horizon_days=params.horizon_days if request.horizon_days is None else request.horizon_days,
        n_cutoffs=params.n_cutoffs if request.n_cutoffs is None else request.n_cutoffs,
        spacing_days=params.spacing_days if request.spacing_days is None else request.spacing_days,
        model={**params.model, **request.model},
    )


def train_churn(
    engine: Engine,
    *,
    rules: Rules,
    request: ChurnRequest | None = None,
    registration: Registration | None = None,
    progress: Progress | None = None,
) -> ChurnReport:
    """Train, evaluate against both baselines, log to MLflow and register ``loyalty-churn`` (see module doc).

    ``request.cutoffs`` overrides the monthly grid (the latest is then the validation cutoff and must equal
    ``as_of`` when both are given). ``registration.register=False`` trains and evaluates without MLflow.
    ``request.truth_dir``: a simulator output (or its ``truth/``) to measure the gap to the truth on.
    """
    request = request or ChurnRequest()
    registration = registration or Registration()
    job = job_params_in_use()
    params = resolve_churn(job.churn, request)
    horizon_days = params.horizon_days
    if horizon_days < 1:
        raise InvalidInput("--horizon-days must be at least 1", field="horizon_days")
    truth_dir = request.truth_dir
    unknown = [c for c in params.candidates if c not in CANDIDATES]
    if unknown or not params.candidates:
        raise InvalidInput(
            f"[churn] candidates: {'unknown ' + ', '.join(unknown) if unknown else 'empty'}; "
            f"name some of {', '.join(CANDIDATES)}",
            field="candidates",
        )
    if truth_dir is not None:
        output_root(Path(truth_dir))  # a wrong path fails now, not after the training
    tick = progress or no_progress
    seconds: dict[str, float] = {}
    span = ledger_span(engine)
    stamps = sorted({c for c in (parse_date(c, "cutoffs") for c in request.cutoffs) if c is not None})
    chosen = parse_date(request.as_of)
    if stamps and chosen is not None and stamps[-1] != chosen:
        raise InvalidInput("--as-of must be the latest of the cutoffs", field="as_of")
    frames: LedgerFrames | None = None
    how = "given"
    plan = (
        CutoffPlan(params.spacing_days, params.n_cutoffs, horizon_days, horizon_days, 0, "")
        if stamps
        else cutoff_plan(
            span,
            params,
            # the file's own value is no override (the CLI passes its default, the file's, explicitly)
            spacing_given=request.spacing_days not in (None, job.churn.spacing_days),
            n_given=request.n_cutoffs not in (None, job.churn.n_cutoffs),
        )
    )
    label_days = plan.label_days
    on_grid = dataclasses.replace(
        params, horizon_days=label_days, spacing_days=plan.spacing_days, n_cutoffs=plan.n_cutoffs
    )
    if chosen is None and not stamps:
        # the whole ledger, once: the default as-of is the latest whose labels can train (``choose_as_of``)
        tick("extract", 0, None)
        with timed(seconds, "extract"):
            frames = extract(engine, rules=rules, until=span.end.to_pydatetime())
        chosen, how = choose_as_of(frames, span, on_grid, plan.purge_days)
        log.info("churn as-of: %s", how)
    last = chosen or stamps[-1]
    check_as_of(last, span, label_days)
    grid = stamps or churn_cutoffs(
        last,
        span,
        n_cutoffs=plan.n_cutoffs,
        spacing_days=plan.spacing_days,
        min_history_days=params.min_history_days,
        purge_days=plan.purge_days,
    )
    if len(grid) < 3:
        raise InvalidInput("give at least 3 cutoffs (fit, calibrate, validate)", field="cutoffs")
    until = last + pd.Timedelta(days=label_days)
    if frames is None or until < span.end:  # nothing after the last label window is even read
        tick("extract", 0, None)
        with timed(seconds, "extract"):
            frames = extract(engine, rules=rules, until=until.to_pydatetime())
    tick("extract", 1, 1)
    config = FeatureConfig.from_rules(rules)
    with timed(seconds, "features"):
        frame, bgnbd_by_cutoff = churn_frame(
            frames,
            grid,
            horizon_days=label_days,
            end=until,
            config=config,
            progress=tick,
            bgnbd_horizon_days=horizon_days,
        )
    tick("train", 0, 1)
    with timed(seconds, "train"):
        fitted = fit_churn(frame, params.model)
        truth = None if truth_dir is None else churn_truth(Path(truth_dir), last.to_pydatetime(), label_days)
        classic = evaluate_churn(fitted, frames, last, label_days, truth)
        result = churn_result(fitted, bgnbd_by_cutoff, classic, last, horizon_days)
        served = served_bgnbd(frames, until, config)
        choice = choose_candidate(
            result,
            frame,
            bgnbd_by_cutoff,
            served,
            horizon_days=horizon_days,
            candidates=tuple(params.candidates),
        )
        adopt_choice(result, choice, plan.label_days)
    tick("train", 1, 1)
    log.info("churn %s", choice.sentence())
    run = None
    if registration.register:
        tick("mlflow", 0, 1)
        with timed(seconds, "mlflow"):
            run = log_training(
                result,
                tracking_uri=registration.tracking_uri,
                promote=registration.promote,
                run_name=f"churn as of {day(last)}",
                tags={
                    "as_of": day(last),
                    "as_of_chosen": how,
                    "horizon_days": str(horizon_days),
                    "label_days": str(label_days),
                    "champion.candidate": choice.chosen,
                    "champion.candidates": choice.sentence()[:5000],
                    **({"cutoff_plan": plan.note[:5000]} if plan.note else {}),
                },
                parameters={**flatten(dataclasses.asdict(params), "churn"), "source": str(job.source)},
            )
            # the cutoff is a parameter of the run like the rest of its data (``data.*``)
            from mlflow import MlflowClient

            client = MlflowClient(tracking_uri=use_store(registration.tracking_uri))
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
        bgnbd=bgnbd_by_cutoff[last].as_dict(),
        seconds=seconds,
        result=result,
        chosen=how,
        plan=plan,
        choice=choice,
    )
