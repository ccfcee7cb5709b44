"""Batched reads of what eligibility needs from the ledger (tier, running activations, recent contacts).

Every ranking reads its customer's live state: four indexed statements, plus a hop to a thread and a
connection from the pool. Concurrent rankings of one worker share that: their customer ids queue here and
one reader thread fetches all of them with ``IN (...)`` lists, then hands each request its customer's state.
While one batch is in the database the next one accumulates, so under load the cost per ranking falls, and
a lone request waits for nobody.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import Engine

from loyalty_core.decisions import customer_facts
from loyalty_core.errors import Unavailable
from loyalty_core.journal import utcnow
from loyalty_core.rules import Rules
from models.policy import Contact, CustomerState, FrequencyCaps

log = logging.getLogger(__name__)


def customer_states(
    reader: Engine, rules: Rules, customer_ids: Sequence[str], *, now: dt.datetime, caps: FrequencyCaps
) -> dict[str, CustomerState]:
    """Each customer's state for ``models.policy`` eligibility, read in one go (blocking)."""
    with reader.connect() as conn:
        facts = customer_facts(conn, customer_ids, rules=rules, now=now, window=caps.window)
    return {
        cid: CustomerState(
            tier=f.tier,
            active_offers=f.active_offers,
            contacts=tuple(Contact(c.sent_at, c.offer_id, c.channel) for c in f.contacts),
        )
        for cid, f in facts.items()
    }


@dataclass(slots=True)
class _Ask:
    customer_id: str
    future: asyncio.Future[CustomerState]


class FactsReader:
    """Per-process reader; ``start`` and ``stop`` run in the app's lifespan."""

    def __init__(
        self, reader: Engine, rules: Rules, caps: FrequencyCaps, *, max_customers: int = 256
    ) -> None:
        self.reader = reader
        self.rules = rules
        self.caps = caps
        self.max_customers = max_customers
        self._queue: asyncio.Queue[_Ask | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facts-reader")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._consume(), name="facts-reader")

    async def stop(self) -> None:
        if self._queue is not None and self._task is not None:
            self._queue.put_nowait(None)
            await self._task
        self._executor.shutdown(wait=True)

    async def read(self, customer_id: str) -> CustomerState:
        if self._queue is None:
            raise Unavailable("the service is shutting down; retry on another instance", code="shutting_down")
        future: asyncio.Future[CustomerState] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Ask(customer_id, future))
        return await future

    def _read(self, ids: list[str]) -> dict[str, CustomerState]:
        return customer_states(self.reader, self.rules, ids, now=utcnow(), caps=self.caps)

    async def _consume(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_customers and not self._queue.empty():
                ask = self._queue.get_nowait()
                if ask is None:
                    stop = True
                    break
                batch.append(ask)
            ids = [a.customer_id for a in batch]
            try:
                states = await loop.run_in_executor(self._executor, self._read, ids)
            except Exception as exc:  # every waiter gets the error; the reader keeps running
                for ask in batch:
                    if not ask.future.done():
                        ask.future.set_exception(exc)
            else:
                for ask in batch:
                    if not ask.future.done():
                        ask.future.set_result(states[ask.customer_id])
            if stop:
                return
