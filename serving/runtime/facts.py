"""Batched reads of what eligibility needs from the ledger (tier, running activations, recent contacts).

Every ranking reads its customer's live state: four indexed statements, plus a hop to a thread and a
connection from the pool. Concurrent rankings of one worker share that: their customer ids queue here and
one reader thread fetches all of them with ``IN (...)`` lists, then hands each request its customer's state.
While one batch is in the database the next one accumulates, so under load the cost per ranking falls, and
a lone request waits for nobody. One id the database cannot take fails the shared statement, so the batch
is then read again customer by customer (``serving.runtime.microbatch``): only that ranking fails.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from loyalty_core import Rules, customer_facts, utcnow
from models import Contact, CustomerState, FrequencyCaps
from serving.runtime.microbatch import MicroBatcher

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


class FactsReader(MicroBatcher[_Ask]):
    """Per-process reader; ``start`` and ``stop`` run in the app's lifespan."""

    name = "facts-reader"

    def __init__(
        self, reader: Engine, rules: Rules, caps: FrequencyCaps, *, max_customers: int = 256
    ) -> None:
        self.reader = reader
        self.rules = rules
        self.caps = caps
        self.capacity = max_customers
        super().__init__(threads=1)

    async def read(self, customer_id: str) -> CustomerState:
        future: asyncio.Future[CustomerState] = asyncio.get_running_loop().create_future()
        self._put(_Ask(customer_id, future))
        return await future

    def work(self, batch: Sequence[_Ask]) -> list[CustomerState]:
        states = customer_states(
            self.reader, self.rules, [a.customer_id for a in batch], now=utcnow(), caps=self.caps
        )
        return [states[a.customer_id] for a in batch]
