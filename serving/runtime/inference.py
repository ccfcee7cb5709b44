"""Dynamic batching of model calls across concurrent requests of one worker.

Scoring one customer costs mostly fixed overhead: building the offer model's (customer x offer) rows runs
a few dozen numpy operations whatever the number of rows, and each ``predict`` call has its own set-up.
Measured on the development machine with 12 offers: one customer 350 us, sixteen customers together 570 us.
So requests queue their customers' feature rows here, and one task per worker scores whatever has queued
in one matrix and one ``predict`` per model, then hands each request its rows. Under load a batch holds
the requests that arrived while the previous one was being computed; a lone request is scored at once.

A request's rows are scored with the models of the snapshot it took; requests holding different
snapshots (a reload happened between them) are scored in separate groups, so none ever sees a mix.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from serving.runtime import metrics
from serving.runtime.microbatch import MicroBatcher, resolve
from serving.runtime.served_models import OfferScores, Snapshot

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Job:
    snap: Snapshot
    rows: np.ndarray  # (k, features) customer vectors
    churn: bool
    future: asyncio.Future[Scores]


class Scores(NamedTuple):
    churn: np.ndarray | None  # (n,) when asked for
    multiplier: np.ndarray | None  # (n,) bonus multipliers, with churn
    propensity: np.ndarray  # (n, active offers)
    uplift: np.ndarray | None  # (n, active offers), NaN where no estimate; None without an uplift model
    offer_inputs: np.ndarray  # (n, completable offers, inputs): the offer model's rows, for reason codes


def score_rows(snap: Snapshot, rows: np.ndarray, *, churn: bool) -> Scores:
    """Churn (when asked), propensities and uplift of the active offers: one predict call per model.

    A snapshot without an offer model (churn alone) gets no offer columns: (n, 0) propensities."""
    if snap.offer_model is None:
        offers = OfferScores(np.zeros((len(rows), 0)), None, np.empty((len(rows), 0, 0)))
    else:
        offers = snap.offer_model.score(rows, snap.offer_catalogue)
    churn_p = multiplier = None
    if churn:
        assert snap.churn is not None
        assert snap.multiplier is not None
        model = snap.churn.value
        churn_p = model.champion.scorer.predict_proba(model.inputs.matrix(rows))
        multiplier = snap.multiplier.value.apply(churn_p, rows, model.inputs.feature_names)
    return Scores(churn_p, multiplier, offers.propensity, offers.uplift, offers.inputs)


class InferenceBatcher(MicroBatcher[_Job]):
    """Per-process batcher; ``start`` and ``stop`` run in the app's lifespan. Model calls run on the event
    loop itself: they take a fraction of a millisecond, less than a hop to a thread and back."""

    name = "inference-batcher"

    def __init__(self, *, max_customers: int = 64) -> None:
        self.capacity = max_customers
        super().__init__(threads=0)

    async def score(self, snap: Snapshot, rows: np.ndarray, *, churn: bool) -> Scores:
        future: asyncio.Future[Scores] = asyncio.get_running_loop().create_future()
        self._put(_Job(snap, rows, churn, future))
        return await future

    def size(self, item: _Job) -> int:
        return len(item.rows)

    async def collect(self, first: _Job) -> tuple[list[_Job], bool]:
        # One turn of the loop lets requests that are already parsed reach the queue too.
        await asyncio.sleep(0)
        return await super().collect(first)

    async def process(self, batch: list[_Job]) -> None:
        metrics.INFERENCE_BATCH_SIZE.observe(sum(len(job.rows) for job in batch))
        for group in _groups(batch):
            live = [job for job in group if not job.future.done()]  # a cancelled request needs no score
            if live:
                for job, outcome in zip(live, self.isolated(live), strict=True):
                    resolve(job.future, outcome)

    def work(self, batch: Sequence[_Job]) -> list[Scores]:
        """The jobs of one group (one snapshot) in one matrix and one predict call per model."""
        rows = batch[0].rows if len(batch) == 1 else np.vstack([job.rows for job in batch])
        scores = score_rows(batch[0].snap, rows, churn=any(job.churn for job in batch))
        out: list[Scores] = []
        start = 0
        for job in batch:
            stop = start + len(job.rows)
            part = slice(start, stop)
            out.append(
                Scores(
                    churn=None if scores.churn is None or not job.churn else scores.churn[part],
                    multiplier=None
                    if scores.multiplier is None or not job.churn
                    else scores.multiplier[part],
                    propensity=scores.propensity[part],
                    uplift=None if scores.uplift is None else scores.uplift[part],
                    offer_inputs=scores.offer_inputs[part],
                )
            )
            start = stop
        return out


def _groups(batch: list[_Job]) -> list[list[_Job]]:
    """Jobs sharing the same models and catalogue (object identity), in arrival order."""
    groups: dict[tuple[int, ...], list[_Job]] = {}
    for job in batch:
        s = job.snap
        key = (id(s.offer_model), id(s.churn), id(s.uplift), id(s.catalogue), id(s.features))
        groups.setdefault(key, []).append(job)
    return list(groups.values())
