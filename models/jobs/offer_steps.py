"""The offer job's pure steps: the send cutoffs, the training frame of sends, the two-pass fit and the
metrics beside it (``models.jobs.offers`` wires them to the ledger and MLflow; see its docstring).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loyalty_core import InvalidInput
from models.estimators.training import TrainingResult, train
from models.evaluation import classification_metrics, gap_to_truth
from models.inputs import OfferInputs
from models.jobs.common import LedgerSpan, Progress, day, no_progress
from models.jobs.params import OfferCandidate as Candidate
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


def rank_columns(frame: pd.DataFrame, ranking: Mapping[str, Any], n_validation: int) -> TrainingResult:
    """The first pass: a model on every input column, whose gains rank the columns (``select_columns``)."""
    return train(frame, "offers", params=ranking, n_validation=n_validation)


def fit_offers(
    frame: pd.DataFrame,
    ranking: Mapping[str, Any],
    model: Mapping[str, Any],
    top: int | None,
    n_validation: int,
    *,
    first: TrainingResult | None = None,
) -> tuple[TrainingResult, list[str]]:
    """Two passes: a first model on every input column ranks them by gain (or ``first``, already fitted on
    the same frame), the model kept uses the ``top`` best (None: all of them). Returns it and its columns."""
    first = first or rank_columns(frame, ranking, n_validation)
    columns = select_columns(first, top if top is not None else len(first.features))
    result = train(frame, "offers", features=columns, params=model, n_validation=n_validation)
    result.metrics["ranking_val_roc_auc"] = first.metrics["val_roc_auc"]
    return result, columns


@dataclass(frozen=True, slots=True)
class CandidateScore:
    """A candidate's ROC AUC on the inner split (None: not fitted, ``note`` says why) and its cost."""

    name: str
    roc_auc: float | None
    seconds: float = 0.0
    trees: int = 0
    note: str = ""


@dataclass(frozen=True, slots=True)
class OfferChoice:
    """Which candidate the job fits, on what evidence: the inner validation cutoff (None: no inner split)
    and every candidate's score there."""

    chosen: str
    inner_cutoff: str | None
    scores: tuple[CandidateScore, ...]
    reason: str

    def metrics(self) -> dict[str, float]:
        """``inner_val_roc_auc_<candidate>`` for each candidate fitted: logged with the run."""
        return {f"inner_val_roc_auc_{s.name}": s.roc_auc for s in self.scores if s.roc_auc is not None}

    def parameters(self) -> dict[str, Any]:
        """What the run logs as ``job.offers.chosen`` and ``job.offers.choice.*``."""
        return {
            "offers.chosen": self.chosen,
            "offers.choice.inner_cutoff": self.inner_cutoff or "none",
            "offers.choice.reason": self.reason,
            **{
                f"offers.choice.{s.name}": s.note or f"{s.roc_auc:.4f} in {s.seconds:.0f} s"
                for s in self.scores
            },
        }


def choose_candidate(
    training: pd.DataFrame,
    ranking: Mapping[str, Any],
    candidates: Mapping[str, Candidate],
    *,
    grow_from: pd.Timestamp | None,
    min_gain: float,
    budget_seconds: float,
    clock: Callable[[], float] = time.perf_counter,
) -> OfferChoice:
    """Choose the model on an inner split of the training rows alone: their last cutoff is held out, each
    candidate is fitted on the earlier ones (with its own early stopping and calibration cutoff inside
    them) and scored there by ROC AUC. The run's validation rows are not in ``training``.

    Candidates are tried in their order (the cheapest to score first); a later one replaces the current
    choice only if it is better by ``min_gain``, so a model that costs more to score is taken only where it
    pays. After ``budget_seconds`` the rest are skipped. Fewer than three cutoffs leave no inner split: the
    first candidate; a single candidate needs none. ``grow_from`` is the inner split's
    ``first_cutoff_with_history``.
    """
    names = list(candidates)
    cuts = sorted(training["as_of"].unique())
    if len(names) == 1:
        return OfferChoice(
            names[0], None, (CandidateScore(names[0], None, note="the only candidate"),), "the only candidate"
        )
    if len(cuts) < 3:
        return OfferChoice(
            chosen=names[0],
            inner_cutoff=None,
            scores=tuple(CandidateScore(n, None, note="no inner split") for n in names),
            reason=f"{len(cuts)} training cutoff(s): too few for an inner split, the first candidate",
        )
    started = clock()
    try:
        first = rank_columns(training, ranking, 1)
    except InvalidInput as exc:  # e.g. one label class at the inner cutoff: the split cannot judge
        return OfferChoice(
            chosen=names[0],
            inner_cutoff=day(cuts[-1]),
            scores=tuple(CandidateScore(n, None, note=f"failed: {exc.message}") for n in names),
            reason=f"the inner split cannot score candidates ({exc.message}): the first candidate",
        )
    scores: list[CandidateScore] = []
    chosen: CandidateScore | None = None
    for name in names:
        if chosen is not None and clock() - started > budget_seconds:
            scores.append(CandidateScore(name, None, note=f"skipped: over the {budget_seconds:.0f} s budget"))
            continue
        candidate = candidates[name]
        model = {**candidate.model, **({"grow_from": grow_from} if grow_from is not None else {})}
        t = clock()
        try:
            result, _ = fit_offers(training, ranking, model, candidate.top_columns or None, 1, first=first)
        except InvalidInput as exc:  # e.g. one label class in a candidate's own calibration cutoff
            scores.append(CandidateScore(name, None, clock() - t, note=f"failed: {exc}"))
            continue
        auc = float(result.metrics["val_roc_auc"])
        # NaN (one label class at the inner cutoff) says nothing: no score, so a later candidate can win
        score = CandidateScore(name, auc if math.isfinite(auc) else None, clock() - t, result.model.n_iter_)
        scores.append(score)
        log.info(
            "offer candidate %s: inner ROC AUC %s (%d trees, %.0f s)",
            name,
            "n/a" if score.roc_auc is None else f"{score.roc_auc:.4f}",
            score.trees,
            score.seconds,
        )
        if chosen is None or chosen.roc_auc is None or (score.roc_auc or 0.0) >= chosen.roc_auc + min_gain:
            chosen = score
    if chosen is None or chosen.roc_auc is None:
        return OfferChoice(
            names[0],
            day(cuts[-1]),
            tuple(scores),
            "no candidate could be fitted and scored on the inner split: the first",
        )
    better = [
        s for s in scores if s.roc_auc is not None and s is not chosen and s.roc_auc > (chosen.roc_auc or 0.0)
    ]
    reason = f"{chosen.name}: inner ROC AUC {chosen.roc_auc:.4f}" + (
        f" ({better[0].name}'s {better[0].roc_auc:.4f} does not add {min_gain})" if better else ""
    )
    return OfferChoice(chosen.name, day(cuts[-1]), tuple(scores), reason)
