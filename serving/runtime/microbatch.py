"""What the service's per-process batchers share: a queue of waiting requests and one consumer task.

Postings (``serving.runtime.batcher``), decisions (``serving.decision_log``), live customer facts
(``serving.runtime.facts``) and model calls (``serving.runtime.inference``) all work the same way: a request
queues an item with a future and waits; one task per worker process takes the first item and whatever queued
behind it, does the work once for all of them (on threads of its own when it blocks on the database) and hands
each waiter its own outcome. Under load batches grow by themselves; a lone request waits for nobody.

The rules every batcher keeps, here once: every waiter is woken whatever happens, a waiter that went away
(client gone, request cancelled) is skipped, and after ``stop`` a new request gets 503 ``shutting_down``
while everything queued before it is still finished.

A batch is a convenience of the server, never the clients' shared fate: when the work of a whole batch
raises (one customer id the database driver cannot encode, one row the database refuses), the batch is
redone one item at a time, so each waiter gets its own result or its own error, and a domain error of one
item (a ``LoyaltyError``) reaches only that item's caller, as its own 4xx. The retry costs nothing while
batches succeed: it only runs after a failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, Protocol, TypeVar

from loyalty_core import Unavailable

log = logging.getLogger(__name__)


class _Waiting(Protocol):
    future: asyncio.Future[Any]


ItemT = TypeVar("ItemT", bound=_Waiting)


def resolve(future: asyncio.Future[Any], outcome: Any) -> None:
    """Wake one waiter: an exception outcome is raised to it, anything else is its result."""
    if future.done():  # the request went away; what was done for it stands
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class MicroBatcher(Generic[ItemT]):
    """Queue, consumer task and worker threads; subclasses say what a batch is and what it does.

    ``work`` (on a worker thread) returns one outcome per item, a value or an exception; when it raises, the
    batch is redone item by item (``isolated``). ``threads=0`` means the work runs on the event loop itself
    (``process`` is then overridden and calls ``isolated`` itself). ``collect`` decides how
    far a batch reaches; by default it takes what is queued up to ``capacity`` (in ``size`` units).
    """

    name = "batcher"

    def __init__(self, *, threads: int = 1) -> None:
        self._queue: asyncio.Queue[ItemT | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = (
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix=self.name) if threads > 0 else None
        )
        self._closing = False

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._consume(), name=self.name)

    async def stop(self) -> None:
        """Take nothing new, finish everything already queued, then release the threads."""
        self._closing = True
        if self._queue is not None and self._task is not None:
            self._queue.put_nowait(None)
            await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    def _put(self, item: ItemT) -> None:
        if self._closing or self._queue is None:
            raise Unavailable("the service is shutting down; retry on another instance", code="shutting_down")
        self._queue.put_nowait(item)

    capacity = 2**31  # most units of work (``size``) a batch takes

    def size(self, item: ItemT) -> int:
        return 1

    def take_queued(self, batch: list[ItemT]) -> bool:
        """Append what is already queued while the batch has room; True when the stop marker was met."""
        assert self._queue is not None
        room = self.capacity - sum(self.size(item) for item in batch)
        while room > 0 and not self._queue.empty():
            item = self._queue.get_nowait()
            if item is None:
                return True
            batch.append(item)
            room -= self.size(item)
        return False

    async def collect(self, first: ItemT) -> tuple[list[ItemT], bool]:
        """The batch starting with ``first``, and whether the stop marker was met."""
        batch = [first]
        return batch, self.take_queued(batch)

    async def _consume(self) -> None:
        assert self._queue is not None
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch, stopping = await self.collect(first)
            await self.process(batch)

    async def process(self, batch: list[ItemT]) -> None:
        """Run ``work`` on a worker thread and wake every waiter with its outcome."""
        assert self._executor is not None
        try:
            outcomes = await asyncio.get_running_loop().run_in_executor(self._executor, self.isolated, batch)
        except BaseException as exc:  # never leave a waiter hanging, whatever happened
            for item in batch:
                resolve(
                    item.future,
                    exc if isinstance(exc, Exception) else Unavailable(f"{self.name} interrupted"),
                )
            if not isinstance(exc, Exception):
                raise
            return
        for item, outcome in zip(batch, outcomes, strict=True):
            resolve(item.future, outcome)

    def isolated(self, batch: Sequence[ItemT]) -> Sequence[Any]:
        """``work`` on the whole batch; if that raises, ``work`` on each item alone, one outcome per item.

        Nothing is added to a batch that succeeds. After a failure the items are redone in their order, each
        in its own call (and so, for the database batchers, in its own transaction): the item at fault gets
        its exception, the others their results, whatever the batch was doing when it failed.
        """
        try:
            return self.work(batch)
        except Exception as exc:
            if len(batch) == 1:
                return [exc]
            # The type only: the message of a database error may hold the values of the batch.
            log.warning(
                "%s: a batch of %d failed (%s); redoing its items one by one",
                self.name,
                len(batch),
                type(exc).__name__,
            )
        return [self._alone(item) for item in batch]

    def _alone(self, item: ItemT) -> Any:
        try:
            (outcome,) = self.work([item])
        except Exception as exc:
            return exc
        return outcome

    def work(self, batch: Sequence[ItemT]) -> Sequence[Any]:
        """One outcome per item of ``batch``, in order: a value, or an exception for that item alone.

        Raising fails the whole call; ``isolated`` then redoes the items one at a time."""
        raise NotImplementedError
