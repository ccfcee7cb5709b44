"""Group commit for ``POST /v1/transactions``.

One posting per database transaction would make the commit (an fsync on PostgreSQL) and a dozen round trips
the price of every request. Instead each request queues its transaction and waits; one consumer task per
process takes whatever has queued, posts it with ``loyalty_core.post_transactions`` in a single transaction on
a dedicated thread, and then wakes every waiter with its own outcome. While one batch is in the database the
next one accumulates, so under load the batch grows by itself and at low load a request waits for nobody.

Several batches may be in the database at once (``concurrency``, ``LOYALTY_POST_CONCURRENCY``): a commit
is mostly waiting for the disk's flush, and PostgreSQL flushes the commits of concurrent transactions
together, so with CPU to spare a second batch in flight raises what one process posts. On a CPU-bound
machine one batch at a time is better (measured in ``benchmarks/ledger.py``): batches then grow, and a
posting's share of a batch's fixed cost shrinks. Batches touching the same member queue on its row lock,
taken in id order, so they cannot deadlock. SQLite runs one writer at a time, so there one is in flight.

A waiter is only woken after its batch committed: an acknowledged posting is a durable one. A batch whose
transaction fails is posted again one posting per transaction (``serving.runtime.microbatch``), so one bad
posting fails only its own request.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from loyalty_core import (
    Outcome,
    PostingResult,
    Rules,
    TransactionIn,
    in_transaction,
    post_transactions,
    utcnow,
)
from serving.runtime import metrics
from serving.runtime.microbatch import MicroBatcher

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Item:
    txn: TransactionIn
    actor: str
    future: asyncio.Future[PostingResult]


class PostingBatcher(MicroBatcher[_Item]):
    """Per-process micro-batcher; ``start`` and ``stop`` run in the app's lifespan."""

    name = "posting-batcher"

    def __init__(
        self,
        engine: Engine,
        rules: Rules,
        *,
        max_batch: int = 256,
        linger_ms: float = 2.0,
        concurrency: int = 1,
    ) -> None:
        self.engine = engine
        self.rules = rules
        self.capacity = max_batch
        self.linger = linger_ms / 1000
        self.concurrency = 1 if engine.dialect.name == "sqlite" else max(1, concurrency)
        self._recent_sizes: deque[int] = deque([1], maxlen=8)
        # Threads of its own, one per batch in flight: other requests keep the default pool to themselves,
        # and each batch has its own session.
        super().__init__(threads=self.concurrency)

    async def submit(self, txn: TransactionIn, *, actor: str) -> PostingResult:
        """Queue ``txn`` and wait until its batch committed; a refusal of this row raises its LoyaltyError."""
        future: asyncio.Future[PostingResult] = asyncio.get_running_loop().create_future()
        self._put(_Item(txn, actor, future))
        return await future

    async def _consume(self) -> None:
        assert self._queue is not None
        slots = asyncio.Semaphore(self.concurrency)
        in_flight: set[asyncio.Task[None]] = set()
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            # A free slot first, then the batch: while every slot is busy, postings keep queueing and the
            # next batch takes all of them.
            await slots.acquire()
            batch, stopping = await self.collect(first)
            self._recent_sizes.append(len(batch))
            task = asyncio.create_task(self._run(batch, slots))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def _run(self, batch: list[_Item], slots: asyncio.Semaphore) -> None:
        try:
            await self.process(batch)
        finally:
            slots.release()

    async def collect(self, first: _Item) -> tuple[list[_Item], bool]:
        """The batch starting with ``first``, and whether the stop marker was met.

        Takes what is queued, then lingers briefly while fewer postings are present than recent batches
        held: the answers of the previous batch went out a moment ago, and their clients' next requests are
        still on their way. Without the pause each round splits into a batch of the first arrivals and one
        of the latecomers, paying the commit twice. A lone client (recent batches of one) never waits.
        """
        loop = asyncio.get_running_loop()
        batch = [first]
        expected = min(max(self._recent_sizes), self.capacity)
        deadline = loop.time() + self.linger
        while True:
            if self.take_queued(batch):
                return batch, True  # post what was queued before the stop, then leave
            if len(batch) >= expected or loop.time() >= deadline:
                return batch, False
            # Polling, not wait_for(queue.get()): a timed-out get could drop an item on Python 3.11.
            await asyncio.sleep(0.0002)

    def work(self, batch: Sequence[_Item]) -> list[Outcome]:
        """Runs on the batcher thread: the whole batch in one transaction (a refused row is its outcome).

        Should the transaction itself fail, ``isolated`` posts the items one by one, each in its own."""
        metrics.POSTING_BATCH_SIZE.observe(len(batch))
        now = utcnow()
        return in_transaction(self.engine, lambda s: self._post_groups(s, batch, now), defer_writes=True)

    def _post_groups(self, session: Session, batch: Sequence[_Item], now: dt.datetime) -> list[Outcome]:
        """One ``post_transactions`` call per actor (the audit trail records who posted), in input order."""
        outcomes: list[Outcome] = []
        for actor, group in groupby(batch, key=lambda item: item.actor):
            txns = [item.txn for item in group]
            outcomes.extend(post_transactions(session, txns, rules=self.rules, actor=actor, now=now))
        return outcomes
