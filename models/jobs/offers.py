"""``loyalty train offers``: one offer-propensity model over customer features x offer attributes -> MLflow,
and, when the decision log holds a randomised control group, the two-model uplift beside it.

Rows are offers sent (``pipelines.labels.offer_response_labels``): the label is completion within the
offer's validity; informational offers never complete and are left out. Features are taken as of the
cutoff before each send: the cutoffs are the days offers were sent on (campaign days), so a row's features
stop at the midnight before its send, and a send belongs to the latest cutoff at or before it.
Model inputs come from ``models.inputs.OfferInputs``, the code the service and batch scoring use.

``as_of`` is the last training cutoff (the validation one): by default the latest send day whose sends'
validity windows all end within the data. Two passes: a first model on every input column ranks them by
gain; the model that is logged uses the ``top_columns`` best, because a (customer, offer) row is scored
about ten times per customer in ``loyalty score`` and a narrow row is what keeps that within budget
(``benchmarks/batch_scoring.py``). The baseline is each offer's historical completion rate.

Starbucks split (``split_at``): every send time is a cutoff; sends before ``split_at`` train, the sends
from it on validate (all of them, as the published figures count them: windows reaching past the end of
the data keep the completions observed until then). The model there departs from the platform's
protocol in five ways (the ``starbucks_split`` profile of ``models/jobs/parameters.toml``,
``models.estimators.training``), each chosen on an inner split of the
training hours alone (trees before hour 336, hour 336 held out, judged on 408; never on the validation
sends): the trees are DART's (``boosting``), a fixed 400 at learning rate 0.05, since DART cannot stop early
and on the inner split it ranks better than early-stopped plain boosting; they are grown again on all
training hours for that count scaled by the rows (``refit``; the held-out hour is a quarter of the training
data and the closest to the validation sends); the first send hour grows no trees (``grow_from``, see
``first_cutoff_with_history``); four seeds are averaged into one booster (``seeds``); and the calibration is
Platt's, fitted on the held-out hour, which keeps the ranking and transfers to the regrown trees as two
numbers.

Parameters: ``[offers]`` of ``models/jobs/parameters.toml``, one profile per protocol (``default``, and
``starbucks_split`` for ``split_at``), logged with the run as ``job.offers.*``. The pure steps are
``models.jobs.offer_steps``.

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
    choose_offer_grid,
    complete_window_metrics,
    first_cutoff_with_history,
    fit_offers,
    offer_training_frame,
    propensity_truth_metrics,
    send_cutoffs,
)
from models.jobs.params import OfferProfile, flatten, job_params_in_use
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
    seconds: dict[str, float] = field(default_factory=dict)
    result: TrainingResult | None = field(default=None, repr=False)  # the fitted model (``result.scorer()``)

    def lines(self) -> list[str]:
        m = self.metrics
        out = [
            f"offer model as of {day(self.as_of)}: {self.rows:,} offers sent ({self.offers} offers), cutoffs "
            f"{', '.join(self.cutoffs)}; validation {', '.join(self.validation_cutoffs)}",
            f"{len(self.columns)} input columns (the best by gain of a first model on all of them)",
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


def resolve_profile(profile: OfferProfile, request: OfferRequest) -> OfferProfile:
    """The profile with the request's overrides: what the run uses and logs."""
    return dataclasses.replace(
        profile,
        top_columns=profile.top_columns if request.top_columns is None else request.top_columns,
        closed_end=profile.closed_end if request.closed_end is None else request.closed_end,
        uplift=profile.uplift if request.uplift is None else request.uplift,
        model={**profile.model, **request.model},
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

    ``request.split_at`` (an instant): every send time is a cutoff, sends before it train, the rest validate,
    and windows reaching past the data's end are kept (the Starbucks benchmark, whose profile uses every
    input column, its own hyper-parameters and validity windows closed at their end, see
    ``pipelines.labels.offer_response_labels``). ``request.truth_dir``: a simulator output (or its
    ``truth/``) to compare the propensity and the uplift estimate with.
    """
    request = request or OfferRequest()
    registration = registration or Registration()
    job = job_params_in_use()
    profile = resolve_profile(job.offers.profile(request.profile_name), request)
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
    sends = given or send_cutoffs(frames, exact=profile.exact_cutoffs, max_cutoffs=profile.max_send_cutoffs)
    grid = choose_offer_grid(frames, span, sends, chosen, split)
    last, end = grid.last, grid.end
    config = FeatureConfig.from_rules(rules)
    with timed(seconds, "features"):
        frame, features_at = offer_training_frame(
            frames, grid.cutoffs, inputs, end=end, config=config, closed_end=profile.closed_end, progress=tick
        )
    valid_until = pd.to_datetime(frame.pop("valid_until"), utc=True)
    model_params = dict(profile.model)
    if profile.grow_from_history and "grow_from" not in model_params:
        training = grid.cutoffs[: len(grid.cutoffs) - grid.n_validation]
        model_params["grow_from"] = first_cutoff_with_history(frames, training)
    profile = dataclasses.replace(profile, model=model_params)
    tick("train", 0, 2)
    with timed(seconds, "train"):
        result: TrainingResult
        result, columns = fit_offers(
            frame, job.offers.ranking, model_params, profile.top_columns or None, grid.n_validation
        )
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
    if profile.uplift:
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
                    "offers.profile": request.profile_name,
                    **flatten(dataclasses.asdict(profile), "offers"),
                    **flatten(job.offers.ranking, "offers.ranking"),
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
        seconds=seconds,
        result=result,
    )
