"""Group commit for the decision log: a ranking answers only once its decision is durable, at a batch's cost.

Every ``POST /v1/offers/rank`` writes one or two decision records (``loyalty_core.DecisionRecord``: the
served one and, in shadow mode, the challenger's). A transaction per request would make a commit the price
of every ranking; instead requests queue their records and wait while one task per process writes whatever
has queued in one transaction on a dedicated thread (as the posting batcher does for postings). Under load
batches grow by themselves; a lone request waits for nobody.

Waiting for the commit (rather than answering first and writing later) is deliberate: a client may send
feedback or activate the offer with the returned ``decision_id`` at once, possibly to another worker, and
that call must find the decision. ``benchmarks/serving.py`` measures what the wait costs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from loyalty_core import DecisionRecord, in_transaction, record_decisions
from serving.runtime import metrics
from serving.runtime.microbatch import MicroBatcher


@dataclass(slots=True)
class _Item:
    rows: Sequence[DecisionRecord | Mapping[str, Any]]
    future: asyncio.Future[None]


class DecisionWriter(MicroBatcher[_Item]):
    """Per-process writer; ``start`` and ``stop`` run in the app's lifespan."""

    name = "decision-writer"

    def __init__(self, engine: Engine, *, max_rows: int = 512) -> None:
        self.engine = engine
        self.capacity = max_rows
        super().__init__(threads=1)

    async def write(self, rows: Sequence[DecisionRecord | Mapping[str, Any]]) -> None:
        """Queue ``rows`` (records, or rows in the table's shape) and return once they are committed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._put(_Item(rows, future))
        await future

    def size(self, item: _Item) -> int:
        return len(item.rows)

    def work(self, batch: Sequence[_Item]) -> list[None]:
        """Runs on the writer thread: the whole batch in one transaction; if it fails, ``isolated`` writes
        the requests one at a time, so one bad decision fails only its own ranking."""
        rows = [row for item in batch for row in item.rows]
        metrics.DECISION_BATCH_SIZE.observe(len(rows))
        in_transaction(self.engine, lambda s: record_decisions(s, rows))
        return [None] * len(batch)
