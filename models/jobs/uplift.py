"""The uplift model of ``loyalty train offers``: a learner chosen by cross-validated Qini on the randomised
training campaigns (S-, T-, X-, DR-learner or the response ranking, ``[uplift] candidates``), evaluated out
of time (and against the simulator's truth when given), logged and registered as ``loyalty-offer-uplift``.

Rows (``pipelines.uplift_labels``): per campaign decision and offer arm, treated rows (the arm was sent)
and control rows (no offer), each with its logged assignment probability. The outcome is the same in both
arms, ``met``: a transaction in the offer's validity met its condition, activated or not. The difference is
then what sending causes. Comparing "completed it if sent" with "met it if not" (the ``outcome`` column)
would also count the activation step, so a customer who buys anyway but never activates would look harmed
by the offer. The expected-value policy charges the cost on completions through the propensity, apart.
Inputs are the offer model's own columns (``models.inputs.OfferInputs``) at the midnight before the
campaign, so batch scoring and the service build one matrix per (customer, offer) for propensity and uplift
alike.

Out of time: the campaigns up to the day before the offer model's validation cutoff train, the campaign of
that cutoff is the holdout. On it: ``uplift_qini`` and ``uplift_auuc`` of the predicted uplift, against
``uplift_qini_propensity``, the same curve ranked by the plain propensity model (what the uplift adds over
"send to who will complete"). With ``truth_dir`` (the simulator's ``truth/offer_effects.parquet``):
Spearman correlations, over every customer of the holdout cutoff x every arm, of the predicted uplift and of
the propensity with the true ``incremental_uplift`` (the effect of sending on meeting the condition: what
the learner estimates) and with the truth's ``uplift`` (completion if sent minus meeting the condition if
not, the contract's column).

The choice (``models.estimators.UpliftSelector``) sees only the training campaigns: k folds stratified by
treatment x outcome, the best mean Qini wins and is refitted on them all. The run logs the choice as the
parameter ``uplift.chosen`` and the table as metrics ``cv_qini_<candidate>_mean`` / ``_sd``; a learner
without its own control model is served through distilled boosters (``uplift_served_spearman`` says how
faithfully, on the training rows).

The registered model, its aliases and its promotion are ``models.registry.uplift_model`` (the one
promotion mechanism, ``models.registry.promotion``): ``champion`` moves only when the new model's Qini on
this holdout beats both targeting by the propensity model on the same rows and random targeting, and then
the current champion's. An uplift model that adds nothing over "send to who will complete" would only add
noise to the expected values, so without a champion the policy uses its propensity formula. The pure steps
are ``models.jobs.uplift_steps``; the hyper-parameters ``[uplift.model]`` of ``models/jobs/parameters.toml``,
logged with the run as ``job.uplift.*``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from models.inputs import OfferInputs
from models.jobs.common import Progress, day, no_progress
from models.jobs.params import UpliftParams, flatten
from models.jobs.requests import Registration
from models.jobs.uplift_steps import (
    evaluate_uplift,
    fit_uplift,
    selection_metrics,
    split_campaigns,
    truth_metrics,
    uplift_frame,
)
from models.registry.uplift_model import log_uplift
from models.registry.uplift_scorers import UpliftReport, scorers_of
from pipelines import (
    FEATURE_NAMES,
    FeatureConfig,
    LedgerFrames,
    has_control,
    read_decisions,
    truth_file,
    uplift_labels,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class UpliftInputs:
    """What the offer job hands over: its ledger frames, catalogue and features per cutoff (reused), the
    propensity model's input columns and the model itself, its last cutoff and where labels stop."""

    frames: LedgerFrames
    catalogue: pd.DataFrame
    features_at: dict[pd.Timestamp, pd.DataFrame]
    columns: Sequence[str]
    as_of: pd.Timestamp
    end: pd.Timestamp
    config: FeatureConfig
    propensity: Any


def _truth(truth_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(
        truth_file(truth_dir, "offer_effects.parquet"),
        columns=["customer_id", "offer_id", "uplift", "incremental_uplift"],
    )


def train_uplift(
    engine: Engine,
    given: UpliftInputs,
    *,
    params: UpliftParams,
    truth_dir: Path | None = None,
    registration: Registration | None = None,
    progress: Progress = no_progress,
) -> UpliftReport | None:
    """Fit, evaluate, log and register the uplift model; None when the log has no control group."""
    registration = registration or Registration()
    as_of, columns, catalogue = given.as_of, given.columns, given.catalogue
    decisions = read_decisions(engine, until=(as_of + pd.Timedelta(days=1)).to_pydatetime())
    if not has_control(decisions):
        log.info("no randomised control group in the decision log: no uplift model")
        return None
    progress("uplift", 0, 3)
    labels = uplift_labels(given.frames, decisions, catalogue, end=given.end)
    labels = labels[labels["cutoff"] <= as_of]
    cutoffs = sorted(pd.unique(labels["cutoff"]))
    if len(cutoffs) < 2:
        log.info("uplift needs at least two campaigns before %s; found %d", day(as_of), len(cutoffs))
        return None
    inputs = OfferInputs(FEATURE_NAMES, catalogue, columns=columns)
    frame, features_at = uplift_frame(given.frames, labels, inputs, given.features_at, given.config)
    split = split_campaigns(frame, cutoffs)
    progress("uplift", 1, 3)
    selector = fit_uplift(
        split.train, columns, params.model, candidates=params.candidates, folds=params.folds
    )
    scorers = scorers_of(selector, split.train)
    log.info("uplift learner chosen by %d-fold Qini: %s", params.folds, selector.chosen_)
    metrics, judged = evaluate_uplift(split.holdout, columns, scorers, given.propensity)
    metrics.update(selection_metrics(selector, split.train, columns, scorers))
    metrics["uplift_train_rows"] = float(len(split.train))
    metrics["uplift_holdout_rows"] = float(len(split.holdout))
    if truth_dir is not None:
        arms = sorted(set(labels["offer_id"]))
        metrics.update(
            truth_metrics(
                _truth(Path(truth_dir)),
                features_at[split.holdout_cutoff],
                inputs,
                arms,
                scorers,
                given.propensity,
            )
        )
    progress("uplift", 1, 3)
    report = UpliftReport(
        rows=len(frame),
        train_rows=len(split.train),
        holdout_rows=len(split.holdout),
        holdout_cutoff=day(split.holdout_cutoff),
        metrics=metrics,
        scorers=scorers,
        chosen=selector.chosen_,
        cv_table=selector.cv_table_,
    )
    if registration.register:
        holdout = dataclasses.replace(
            judged,
            labels=labels[labels["cutoff"] == split.holdout_cutoff].reset_index(drop=True),
            features=features_at[split.holdout_cutoff],
            catalogue=catalogue,
        )
        log_uplift(
            report,
            scorers,
            holdout,
            split.holdout,
            columns,
            tracking_uri=registration.tracking_uri,
            promote=registration.promote,
            parameters=flatten(dataclasses.asdict(params), "uplift"),
        )
    progress("uplift", 1, 3)
    return report
