"""Group commit for the decision log: a ranking answers only once its decision is durable, at a batch's cost.

Every ``POST /v1/offers/rank`` writes one or two ``decisions`` rows (the served one and, in shadow mode, the
challenger's). A transaction per request would make a commit the price of every ranking; instead requests
queue their rows and wait while one task per process writes whatever has queued in one transaction on a
dedicated thread (as ``serving.batcher`` does for postings). Under load batches grow by themselves; a lone
request waits for nobody.

Waiting for the commit (rather than answering first and writing later) is deliberate: a client may send
feedback or activate the offer with the returned ``decision_id`` at once, possibly to another worker, and
that call must find the decision. ``benchmarks/serving.py`` measures what the wait costs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import Engine

from loyalty_core.decisions import record_decisions
from loyalty_core.errors import Unavailable
from loyalty_core.journal import in_transaction
from serving import metrics

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Item:
    rows: Sequence[dict[str, Any]]
    future: asyncio.Future[None]


class DecisionWriter:
    """Per-process writer; ``start`` and ``stop`` run in the app's lifespan."""

    def __init__(self, engine: Engine, *, max_rows: int = 512) -> None:
        self.engine = engine
        self.max_rows = max_rows
        self._queue: asyncio.Queue[_Item | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="decision-writer")
        self._closing = False

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._consume(), name="decision-writer")

    async def stop(self) -> None:
        """Stop taking decisions, write every one already queued, then release the thread."""
        self._closing = True
        if self._queue is not None and self._task is not None:
            self._queue.put_nowait(None)
            await self._task
        self._executor.shutdown(wait=True)

    async def write(self, rows: Sequence[dict[str, Any]]) -> None:
        """Queue ``rows`` (``decisions`` rows) and return once they are committed."""
        if self._closing or self._queue is None:
            raise Unavailable("the service is shutting down; retry on another instance", code="shutting_down")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Item(rows, future))
        await future

    async def _consume(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch = [first]
            size = len(first.rows)
            while size < self.max_rows and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
                size += len(item.rows)
            try:
                outcomes = await loop.run_in_executor(self._executor, self._write, batch)
            except BaseException as exc:  # never leave a waiter hanging, whatever happened
                for item in batch:
                    _resolve(
                        item, exc if isinstance(exc, Exception) else Unavailable("decision log interrupted")
                    )
                if not isinstance(exc, Exception):
                    raise
                continue
            for item, outcome in zip(batch, outcomes, strict=True):
                _resolve(item, outcome)

    def _write(self, batch: Sequence[_Item]) -> list[Exception | None]:
        """Runs on the writer thread: the whole batch in one transaction, or one by one if that fails."""
        rows = [row for item in batch for row in item.rows]
        metrics.DECISION_BATCH_SIZE.observe(len(rows))
        try:
            in_transaction(self.engine, lambda s: record_decisions(s, rows))
            return [None] * len(batch)
        except Exception:
            if len(batch) == 1:
                raise
            log.exception("a batch of %d decisions failed; writing them one request at a time", len(batch))
        results: list[Exception | None] = []
        for item in batch:
            try:
                in_transaction(self.engine, partial(record_decisions, rows=item.rows))
                results.append(None)
            except Exception as exc:  # one bad decision must not fail the others
                results.append(exc)
        return results


def _resolve(item: _Item, outcome: Exception | None) -> None:
    if item.future.done():  # the waiting request was cancelled (client gone); the decision stands
        return
    if outcome is None:
        item.future.set_result(None)
    else:
        item.future.set_exception(outcome)
