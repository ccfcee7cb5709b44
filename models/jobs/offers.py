"""``loyalty train offers``: one offer-propensity model over customer features x offer attributes -> MLflow,
and, when the decision log holds a randomised control group, the two-model uplift beside it.

Rows are offers sent (``pipelines.labels.offer_response_labels``): the label is completion within the
offer's validity; informational offers never complete and are left out. Features are taken as of the
cutoff before each send: the cutoffs are the days offers were sent on (campaign days), so a row's features
stop at the midnight before its send, and a send belongs to the latest cutoff at or before it.
Model inputs come from ``models.inputs.OfferInputs``, the code the service and batch scoring use.

``as_of`` is the last training cutoff (the validation one): by default the latest send day whose sends'
validity windows all end within the data. A split instant (``split_at``, e.g. the Starbucks benchmark's
hour 504) names the validation period instead: the cutoffs from it on validate, all their sends (windows
reaching past the end of the data keep the completions observed until then); it changes nothing else.

One protocol for every data set (``[offers]`` of ``models/jobs/parameters.toml``, logged as
``job.offers.*``): validity windows include their last instant, the first cutoff with no history before it
grows no trees (``first_cutoff_with_history``), and the model is one of ``[offers.candidates]``, chosen on
an inner split of the training cutoffs alone (``offer_steps.choose_candidate``: the last training cutoff
held out, never the validation sends), within a time budget. The candidates run from cheap to accurate: the
``compact`` one keeps the ``top_columns`` best columns of a first pass and few wide trees, because a
(customer, offer) row is scored about ten times per customer in ``loyalty score``
(``benchmarks/batch_scoring.py``); a costlier one (more columns and trees, slower learning, the trees
grown again on every training cutoff, Platt calibration), still within the scoring budget, replaces it only
when it beats it by ``min_gain`` on the inner split.
The run logs the choice (``job.offers.chosen``, ``job.offers.choice.*``) and each candidate's inner score
(metrics ``inner_val_roc_auc_<candidate>``). The baseline is each offer's historical completion rate.

Why no per-data-set profile: the settings that lifted Starbucks were chosen on its inner split, and the
same inner split can choose them on any data; a profile keyed on the benchmark's option measured a
different job from the one a bank runs.

Uplift: ``models.jobs.uplift`` (T-learner with the propensity model's input columns); its metrics are
added to this run as ``uplift_*`` too.

On a simulated bank (``truth_dir``), the validation sends are also ranked by the simulator's true
P(complete | sent) of that customer and offer (``truth/offer_effects.parquet``, ``p_complete_treated``):
``val_roc_auc_truth`` is how well anything could rank them, ``val_roc_auc_model_on_truth_rows`` the model
on the same sends and ``val_roc_auc_gap_to_truth`` the difference, what is left to win. The truth describes
a customer in their base state (alive, not fading before churn): on a customer already fading, the model,
which sees their recent activity, can know more than it, so the gap is a close estimate, not a bound.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from loyalty_core import Rules
from models.estimators.training import TrainingResult
from models.inputs import OfferInputs
from models.jobs.common import (
    LedgerSpan,
    Progress,
    ResultWithMeta,
    day,
    metrics_table,
    no_progress,
    parse_date,
    timed,
)
from models.jobs.offer_steps import (
    OfferChoice,
    choose_candidate,
    choose_offer_grid,
    complete_window_metrics,
    first_cutoff_with_history,
    fit_offers,
    offer_training_frame,
    propensity_truth_metrics,
    send_cutoffs,
)
from models.jobs.params import OfferParams, flatten, job_params_in_use
from models.jobs.reads import ledger_span, read_catalogue
from models.jobs.requests import OfferRequest, Registration
from models.registry.tracking import RunReport, log_training
from pipelines import FEATURE_NAMES, FeatureConfig, extract, truth_file

log = logging.getLogger(__name__)


@dataclass
class OfferReport:
    as_of: pd.Timestamp
    cutoffs: list[str]
    validation_cutoffs: list[str]
    rows: int
    offers: int
    columns: list[str]
    metrics: dict[str, float]
    run: RunReport | None
    uplift: Any = None  # models.registry.uplift_model.UpliftReport
    choice: OfferChoice | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    result: TrainingResult | None = field(default=None, repr=False)  # the fitted model (``result.scorer()``)

    def lines(self) -> list[str]:
        m = self.metrics
        out = [
            f"offer model as of {day(self.as_of)}: {self.rows:,} offers sent ({self.offers} offers), cutoffs "
            f"{', '.join(self.cutoffs)}; validation {', '.join(self.validation_cutoffs)}",
            f"{len(self.columns)} input columns (the best by gain of a first model on all of them)",
            *self.choice_lines(),
            *metrics_table(
                m, (("LightGBM", "val_"), ("completion rate per offer", "baseline_val_")), width=27
            ),
        ]
        gain = m["val_roc_auc"] - m["baseline_val_roc_auc"]
        out.append(f"ROC AUC over the per-offer rate: {gain:+.4f}")
        if "val_roc_auc_truth" in m:
            out.append(
                f"vs the simulator's truth ({int(m['val_truth_rows']):,} sends): ROC AUC of the true "
                f"P(complete) {m['val_roc_auc_truth']:.4f}, LightGBM "
                f"{m['val_roc_auc_model_on_truth_rows']:.4f} on the same sends: gap to the truth "
                f"{m['val_roc_auc_gap_to_truth']:+.4f}"
            )
        if "val_complete_roc_auc" in m:
            out.append(
                f"sends whose validity ends within the data ({int(m['val_complete_rows']):,}): ROC AUC "
                f"{m['val_complete_roc_auc']:.4f} vs {m['baseline_val_complete_roc_auc']:.4f} for the "
                "per-offer rate"
            )
        if self.run is not None:
            out.append(f"{self.run.model_name} v{self.run.version}: {self.run.reason}")
            out.append(f"MLflow run {self.run.run_id}")
        if self.uplift is not None:
            out.extend(self.uplift.lines())
        out.append("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items()))
        return out

    def choice_lines(self) -> list[str]:
        if self.choice is None:
            return []
        c = self.choice
        where = f"inner split at {c.inner_cutoff}" if c.inner_cutoff else "no inner split"
        tried = "; ".join(
            s.name
            + (
                f" {s.roc_auc:.4f} ({s.trees} trees, {s.seconds:.0f} s)"
                if s.roc_auc is not None
                else f" {s.note}"
            )
            for s in c.scores
        )
        return [f"model {c.chosen}, chosen on the {where}: {tried}"]


def resolve_protocol(params: OfferParams, request: OfferRequest) -> OfferParams:
    """``[offers]`` with the request's overrides (applied to every candidate; ``request.candidate`` leaves
    only that one, which skips the choice): what the run uses and logs."""
    names = [request.candidate] if request.candidate is not None else list(params.candidates)
    candidates = {
        name: dataclasses.replace(
            params.candidate(name),
            top_columns=params.candidate(name).top_columns
            if request.top_columns is None
            else request.top_columns,
            model={**params.candidate(name).model, **request.model},
        )
        for name in names
    }
    return dataclasses.replace(
        params,
        closed_end=params.closed_end if request.closed_end is None else request.closed_end,
        uplift=params.uplift if request.uplift is None else request.uplift,
        candidates=candidates,
    )


def train_offers(
    engine: Engine,
    *,
    rules: Rules,
    request: OfferRequest | None = None,
    registration: Registration | None = None,
    progress: Progress | None = None,
) -> OfferReport:
    """Train and evaluate the offer model (and the uplift model when possible); log and register them.

    ``request.split_at`` (an instant): the cutoffs from it on validate, the earlier ones train, and windows
    reaching past the data's end are kept (the Starbucks benchmark); the protocol is the same either way.
    ``request.truth_dir``: a simulator output (or its ``truth/``) to compare the propensity and the uplift
    estimate with.
    """
    request = request or OfferRequest()
    registration = registration or Registration()
    job = job_params_in_use()
    protocol = resolve_protocol(job.offers, request)
    truth_dir = request.truth_dir
    if truth_dir is not None:
        truth_file(Path(truth_dir), "offer_effects.parquet")  # a wrong path fails now, not after the training
    tick = progress or no_progress
    seconds: dict[str, float] = {}
    span: LedgerSpan = ledger_span(engine)
    split = parse_date(request.split_at, "split_at")
    chosen = parse_date(request.as_of)
    tick("extract", 0, None)
    with timed(seconds, "extract"):
        frames = extract(engine, rules=rules)
        catalogue = read_catalogue(engine)
    tick("extract", 1, 1)
    inputs = OfferInputs(FEATURE_NAMES, catalogue)
    given = sorted({c for c in (parse_date(c, "cutoffs") for c in request.cutoffs) if c is not None})
    sends = given or send_cutoffs(frames, exact=protocol.exact_cutoffs, max_cutoffs=protocol.max_send_cutoffs)
    grid = choose_offer_grid(frames, span, sends, chosen, split)
    last, end = grid.last, grid.end
    config = FeatureConfig.from_rules(rules)
    with timed(seconds, "features"):
        frame, features_at = offer_training_frame(
            frames,
            grid.cutoffs,
            inputs,
            end=end,
            config=config,
            closed_end=protocol.closed_end,
            progress=tick,
        )
    valid_until = pd.to_datetime(frame.pop("valid_until"), utc=True)
    training = grid.cutoffs[: len(grid.cutoffs) - grid.n_validation]

    def grow_from(cutoffs: list[pd.Timestamp]) -> pd.Timestamp | None:
        return first_cutoff_with_history(frames, cutoffs) if protocol.grow_from_history else None

    tick("choice", 0, 1)
    with timed(seconds, "choice"):
        choice = choose_candidate(
            frame[frame["as_of"] < grid.cutoffs[len(training)]],
            protocol.ranking,
            protocol.candidates,
            grow_from=grow_from(training[:-1]),
            min_gain=protocol.min_gain,
            budget_seconds=protocol.choice_seconds,
        )
    tick("choice", 1, 1)
    log.info("offer model: %s", choice.reason)
    candidate = protocol.candidates[choice.chosen]
    start = grow_from(training)
    model_params = {**candidate.model, **({"grow_from": start} if start is not None else {})}
    tick("train", 0, 2)
    with timed(seconds, "train"):
        result: TrainingResult
        result, columns = fit_offers(
            frame, protocol.ranking, model_params, candidate.top_columns or None, grid.n_validation
        )
        result.metrics.update(choice.metrics())
        tick("train", 1, 2)
        if split is not None:
            result.metrics.update(complete_window_metrics(result, frame, valid_until, span.end))
        if truth_dir is not None:
            truth = pd.read_parquet(
                truth_file(Path(truth_dir), "offer_effects.parquet"),
                columns=["customer_id", "offer_id", "p_complete_treated"],
            )
            result.metrics.update(propensity_truth_metrics(result, truth))
        tick("train", 1, 2)
    uplift_report = None
    if protocol.uplift:
        from models.jobs.uplift import UpliftInputs, train_uplift

        with timed(seconds, "uplift"):
            uplift_report = train_uplift(
                engine,
                UpliftInputs(
                    frames=frames,
                    catalogue=catalogue,
                    features_at=features_at,
                    columns=columns,
                    as_of=last,
                    end=end,
                    config=config,
                    propensity=result.model,
                ),
                params=job.uplift,
                truth_dir=truth_dir,
                registration=registration,
                progress=tick,
            )
        if uplift_report is not None:
            result.metrics.update(uplift_report.metrics)
    result = ResultWithMeta.wrap(result, {"kind": "offers", "offers_trained": list(inputs.offer_ids)})
    run = None
    if registration.register:
        tick("mlflow", 0, 1)
        with timed(seconds, "mlflow"):
            name = f"offers as of {day(last)}" + (f", split at {day(split)}" if split is not None else "")
            run = log_training(
                result,
                tracking_uri=registration.tracking_uri,
                promote=registration.promote,
                run_name=name,
                tags={"as_of": day(last), **({"split_at": split.isoformat()} if split is not None else {})},
                parameters={
                    **flatten(dataclasses.asdict(protocol), "offers"),
                    **choice.parameters(),
                    "offers.model.grow_from": str(start),
                    "source": str(job.source),
                },
            )
        tick("mlflow", 1, 1)
    return OfferReport(
        as_of=last,
        cutoffs=[day(c) for c in grid.cutoffs],
        validation_cutoffs=list(result.validation_cutoffs),
        rows=len(frame),
        offers=int(frame["offer_id"].nunique()),
        columns=columns,
        metrics=dict(run.metrics if run is not None else result.metrics),
        run=run,
        uplift=uplift_report,
        choice=choice,
        seconds=seconds,
        result=result,
    )
