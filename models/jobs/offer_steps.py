"""The offer job's pure steps: the send cutoffs, the training frame of sends, the two-pass fit and the
metrics beside it (``models.jobs.offers`` wires them to the ledger and MLflow; see its docstring).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loyalty_core import InvalidInput
from models.estimators.training import TrainingResult, train
from models.evaluation import classification_metrics, gap_to_truth
from models.inputs import OfferInputs
from models.jobs.common import LedgerSpan, Progress, day, no_progress
from pipelines import (
    FEATURE_NAMES,
    FeatureConfig,
    LedgerFrames,
    compute_features,
    offer_response_labels,
)

log = logging.getLogger(__name__)


def send_cutoffs(frames: LedgerFrames, *, exact: bool, max_cutoffs: int) -> list[pd.Timestamp]:
    """The cutoffs offers were sent at: the days (midnight UTC) with a send, or the send instants themselves
    (``exact``, e.g. Starbucks' six send hours). More than ``max_cutoffs`` days become weekly cutoffs."""
    ev = frames.offer_events
    sent = ev["occurred_at"][(ev["event"].astype("str") == "sent").to_numpy()]
    if sent.empty:
        raise InvalidInput(
            "no offer was ever sent: nothing to learn offer response from", field="offer_events"
        )
    times = pd.to_datetime(sent, utc=True)
    stamps = times if exact else times.dt.floor("D")
    cutoffs = sorted(pd.unique(stamps))
    if not exact and len(cutoffs) > max_cutoffs:
        weeks = (times.dt.floor("D") - pd.to_timedelta(times.dt.dayofweek, unit="D")).dt.floor("D")
        cutoffs = sorted(pd.unique(weeks))
    return [pd.Timestamp(c).tz_convert("UTC").as_unit("us") for c in cutoffs]


def window_ends(frames: LedgerFrames, cutoffs: Sequence[pd.Timestamp]) -> dict[pd.Timestamp, pd.Timestamp]:
    """For each cutoff, when the validity of the last (completable) offer sent in its window ends."""
    labels = offer_response_labels(frames, end=pd.Timestamp.max.tz_localize("UTC"))
    out: dict[pd.Timestamp, pd.Timestamp] = {}
    bounds = [*cutoffs[1:], pd.Timestamp.max.tz_localize("UTC")]
    for cutoff, nxt in zip(cutoffs, bounds, strict=True):
        mine = labels[(labels["sent_at"] >= cutoff) & (labels["sent_at"] < nxt)]
        if not mine.empty:
            out[cutoff] = pd.Timestamp(mine["valid_until"].max())
    return out


def offer_training_frame(
    frames: LedgerFrames,
    cutoffs: Sequence[pd.Timestamp],
    inputs: OfferInputs,
    *,
    end: pd.Timestamp,
    config: FeatureConfig,
    closed_end: bool = False,
    progress: Progress = no_progress,
) -> tuple[pd.DataFrame, dict[pd.Timestamp, pd.DataFrame]]:
    """Keys, every ``inputs`` column and ``completed`` per offer sent; and the features per cutoff (reused by
    the uplift learner). A send goes to the latest cutoff at or before it."""
    parts = []
    features_at: dict[pd.Timestamp, pd.DataFrame] = {}
    bounds = [*cutoffs[1:], None]
    for cutoff, nxt in zip(cutoffs, bounds, strict=True):
        features = compute_features(frames, cutoff, config)
        features_at[cutoff] = features
        sends = offer_response_labels(
            frames, sent_from=cutoff, sent_until=nxt, end=end, closed_end=closed_end
        )
        sends = sends[sends["offer_id"].isin(inputs.offer_ids)]
        progress("features", 1, len(cutoffs))
        if sends.empty:
            continue
        row = pd.Index(features["customer_id"]).get_indexer(pd.Index(sends["customer_id"]))
        if (row < 0).any():  # a send to a customer with no fact before the cutoff: no features, all-NaN row
            log.info("%d sends at %s to customers unknown before it", int((row < 0).sum()), day(cutoff))
        matrix = np.ascontiguousarray(
            features[list(FEATURE_NAMES)].to_numpy(dtype=np.float64, na_value=np.nan)
        )
        matrix = np.vstack([matrix, np.full((1, matrix.shape[1]), np.nan)])
        x = inputs.pairs(matrix, np.where(row < 0, len(matrix) - 1, row), sends["offer_id"].tolist())
        part = pd.DataFrame(x, columns=list(inputs.columns))
        part.insert(0, "customer_id", sends["customer_id"].to_numpy())
        part.insert(1, "offer_id", sends["offer_id"].to_numpy())
        part.insert(2, "as_of", cutoff)
        part["completed"] = sends["completed"].to_numpy()
        part["valid_until"] = sends["valid_until"].to_numpy()
        parts.append(part)
    if not parts:
        raise InvalidInput("no completable offer was sent in the training period", field="offer_events")
    return pd.concat(parts, ignore_index=True), features_at


def complete_window_metrics(
    result: TrainingResult, frame: pd.DataFrame, valid_until: pd.Series, data_end: pd.Timestamp
) -> dict[str, float]:
    """ROC AUC of the model and the baseline on the validation sends whose validity ends within the data
    (the others were cut short by its end, which no model sees coming)."""
    first = pd.Timestamp(result.validation["as_of"].min())
    is_val = (frame["as_of"] >= first).to_numpy()
    complete = (valid_until[is_val] <= data_end).to_numpy()
    y = result.y_val[complete]
    if complete.sum() < 10 or len(np.unique(y)) < 2:
        return {}
    return {
        "val_complete_roc_auc": classification_metrics(y, result.proba_val[complete])["roc_auc"],
        "baseline_val_complete_roc_auc": classification_metrics(y, result.baseline_proba_val[complete])[
            "roc_auc"
        ],
        "val_complete_rows": float(complete.sum()),
    }


def propensity_truth_metrics(result: TrainingResult, truth: pd.DataFrame) -> dict[str, float]:
    """The gap to the simulator's truth (``p_complete_treated`` per customer and offer) on the validation
    sends, each one a treated arm: see ``models.jobs.offers``."""
    return gap_to_truth(result.validation, result.y_val, result.proba_val, truth, "p_complete_treated")


def first_cutoff_with_history(frames: LedgerFrames, training: Sequence[pd.Timestamp]) -> pd.Timestamp | None:
    """The earliest training cutoff with a transaction before it, when two or more such cutoffs remain.

    Starbucks' transcript starts at the first send hour, so at that cutoff every customer's purchase and
    offer history is empty: zero spend there means "not observed yet", while at every later cutoff, and at
    scoring, it means "did not buy". Its sends only teach the trees to confuse the two (on the inner split,
    over three seeds, they cost 0.0006 ROC AUC), so they grow no trees; they still count for the per-offer
    baseline. None when every cutoff has history, or too few would be left (one to grow trees on, one to
    stop early on).
    """
    times = frames.transactions["occurred_at"]
    if times.empty:
        return None
    first = pd.Timestamp(times.min())
    later = [c for c in training if c > first]
    if len(later) == len(training) or len(later) < 2:
        return None
    return later[0]


def select_columns(result: TrainingResult, top: int) -> list[str]:
    """The ``top`` input columns by total gain (only those used at all), in the frame's order."""
    gain = result.model.importance()
    ranked = [result.features[i] for i in np.argsort(-gain, kind="stable") if gain[i] > 0][:top]
    keep = set(ranked)
    return [f for f in result.features if f in keep]


@dataclass(frozen=True, slots=True)
class OfferGrid:
    """The cutoffs a run trains and validates on, its last (validation) cutoff, and where labels stop."""

    cutoffs: list[pd.Timestamp]
    last: pd.Timestamp
    end: pd.Timestamp
    n_validation: int


def choose_offer_grid(
    frames: LedgerFrames,
    span: LedgerSpan,
    grid: Sequence[pd.Timestamp],
    chosen: pd.Timestamp | None,
    split: pd.Timestamp | None,
) -> OfferGrid:
    """Out of time, two ways. By ``as_of`` (``chosen``, by default the latest send day whose offers' validity
    is complete in the data): it validates, labels stop at the data's end. By a ``split`` instant: the
    cutoffs from it on validate, and windows reaching past the data's end are kept."""
    if split is not None:
        end = pd.Timestamp.max.tz_localize("UTC").floor("D")
        last = chosen or grid[-1]
        kept = [c for c in grid if c <= last]
        n_validation = sum(c >= split for c in kept)
        if n_validation == 0 or n_validation == len(kept):
            raise InvalidInput(
                f"--split {day(split)} leaves no training or no validation cutoff", field="split_at"
            )
    else:
        end = span.end
        ends = window_ends(frames, grid)
        complete = [c for c in grid if c in ends and ends[c] <= end]
        if not complete:
            raise InvalidInput("no offer sent has a validity window complete in the data yet", field="as_of")
        last = chosen or complete[-1]
        if last not in ends:
            raise InvalidInput(
                f"--as-of {day(last)} is not a day offers were sent on; the send days are "
                f"{', '.join(day(c) for c in grid[-5:])} ...",
                field="as_of",
            )
        if ends[last] > end:
            raise InvalidInput(
                f"--as-of {day(last)}: the offers sent then are valid until {day(ends[last])}, "
                f"after the data (up to {day(span.end)}); the latest complete cutoff is {day(complete[-1])}",
                field="as_of",
            )
        kept = [c for c in grid if c <= last]
        n_validation = 1
    if len(kept) < 3:
        raise InvalidInput(
            f"{len(kept)} send cutoff(s) up to {day(last)}: out-of-time training needs 3", field="as_of"
        )
    return OfferGrid(cutoffs=kept, last=last, end=end, n_validation=n_validation)


def fit_offers(
    frame: pd.DataFrame,
    ranking: Mapping[str, Any],
    model: Mapping[str, Any],
    top: int | None,
    n_validation: int,
) -> tuple[TrainingResult, list[str]]:
    """Two passes: a first model on every input column ranks them by gain, the model kept uses the ``top``
    best (None: all of them). Returns it and its columns."""
    first = train(frame, "offers", params=ranking, n_validation=n_validation)
    columns = select_columns(first, top if top is not None else len(first.features))
    result = train(frame, "offers", features=columns, params=model, n_validation=n_validation)
    result.metrics["ranking_val_roc_auc"] = first.metrics["val_roc_auc"]
    return result, columns
