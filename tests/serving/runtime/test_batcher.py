"""The group-commit batcher: shared commits, isolated failures, drained shutdown."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine

from loyalty_core import DEFAULT_RULES, Conflict, PostingResult, TransactionIn, Unavailable, load_rules
from serving.runtime import batcher as batcher_module
from serving.runtime.batcher import PostingBatcher

WHEN = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)


def txn(tid: str, customer: str = "c-1", amount: str = "250") -> TransactionIn:
    return TransactionIn(tid, customer, "purchase", Decimal(amount), WHEN)


def counting_batches(monkeypatch: pytest.MonkeyPatch, fail_on: str | None = None) -> list[int]:
    sizes: list[int] = []
    real = batcher_module.post_transactions

    def wrapped(session: Any, txns: Any, **kwargs: Any) -> Any:
        sizes.append(len(txns))
        if fail_on is not None and any(t.transaction_id == fail_on for t in txns):
            raise RuntimeError("simulated database failure")
        return real(session, txns, **kwargs)

    monkeypatch.setattr(batcher_module, "post_transactions", wrapped)
    return sizes


def test_batcher_shares_commits_between_concurrent_postings(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = counting_batches(monkeypatch)

    async def scenario() -> list[PostingResult]:
        b = PostingBatcher(engine, load_rules(DEFAULT_RULES), max_batch=16)
        await b.start()
        try:
            return await asyncio.gather(
                *(b.submit(txn(f"t-{i}", f"c-{i % 7}"), actor="api:core") for i in range(60))
            )
        finally:
            await b.stop()

    results = asyncio.run(scenario())
    assert [r.transaction_id for r in results] == [f"t-{i}" for i in range(60)]
    assert all(r.response["points"] == 2 and not r.replayed for r in results)
    assert sum(sizes) == 60
    assert len(sizes) < 60  # several postings shared a transaction
    assert max(sizes) <= 16


def test_batcher_isolates_a_failing_posting(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    counting_batches(monkeypatch, fail_on="t-bad")

    async def scenario() -> list[Any]:
        b = PostingBatcher(engine, load_rules(DEFAULT_RULES))
        await b.start()
        try:
            ids = ["t-1", "t-bad", "t-2", "t-1"]
            return await asyncio.gather(
                *(b.submit(txn(i), actor="api:core") for i in ids), return_exceptions=True
            )
        finally:
            await b.stop()

    first, bad, second, replay = asyncio.run(scenario())
    assert isinstance(bad, RuntimeError)
    assert first.response["balance"] in (2, 4)
    assert second.response["points"] == 2
    assert replay.response == first.response


def test_batcher_answers_row_errors_per_posting(engine: Engine) -> None:
    async def scenario() -> list[Any]:
        b = PostingBatcher(engine, load_rules(DEFAULT_RULES))
        await b.start()
        try:
            await b.submit(txn("t-1"), actor="api:core")
            return await asyncio.gather(
                b.submit(txn("t-1", amount="999"), actor="api:core"),
                b.submit(txn("t-2"), actor="api:admin"),
                return_exceptions=True,
            )
        finally:
            await b.stop()

    conflict, ok = asyncio.run(scenario())
    assert isinstance(conflict, Conflict)
    assert conflict.code == "idempotency_conflict"
    assert ok.response["balance"] == 4


def test_batcher_drains_on_stop_and_then_refuses(engine: Engine) -> None:
    async def scenario() -> tuple[list[PostingResult], PostingBatcher]:
        b = PostingBatcher(engine, load_rules(DEFAULT_RULES))
        await b.start()
        tasks = [asyncio.create_task(b.submit(txn(f"t-{i}"), actor="api:core")) for i in range(20)]
        await asyncio.sleep(0)  # let every task queue its posting
        await b.stop()
        assert all(t.done() for t in tasks)
        return [t.result() for t in tasks], b

    results, stopped = asyncio.run(scenario())
    assert results[-1].response["balance"] == 40
    with pytest.raises(Unavailable):
        asyncio.run(stopped.submit(txn("t-late"), actor="api:core"))


def test_concurrent_batches_and_mixed_actors_keep_every_point(db_engine: Engine) -> None:
    """Several batches in the database at once (PostgreSQL), each with postings of two actors for the same
    customers: a later group of a batch must see what the earlier one wrote in the same transaction, and
    batches of different slots must queue on the member's lock, not overwrite each other."""
    from sqlalchemy import text

    async def scenario() -> list[PostingResult]:
        b = PostingBatcher(db_engine, load_rules(DEFAULT_RULES), max_batch=8, concurrency=3)
        await b.start()
        try:
            jobs = [
                b.submit(txn(f"m-{i}", f"c-{i % 5}"), actor="api:core" if i % 3 else "api:admin")
                for i in range(150)
            ]
            return await asyncio.gather(*jobs)
        finally:
            await b.stop()

    results = asyncio.run(scenario())
    assert all(r.response["points"] == 2 and not r.replayed for r in results)
    for c in range(5):
        # Each answer's running balance is distinct: no two postings of one customer saw the same state.
        balances = sorted(r.response["balance"] for r in results if r.response["customer_id"] == f"c-{c}")
        assert balances == list(range(2, 2 * 30 + 1, 2))
    with db_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT m.id, m.balance, (SELECT coalesce(sum(l.points), 0) FROM lines l "
                "WHERE l.member_id = m.id AND l.account = 'points'), "
                "(SELECT coalesce(sum(remaining), 0) FROM lots WHERE lots.member_id = m.id) FROM members m"
            )
        ).all()
        journal_sum = conn.execute(text("SELECT coalesce(sum(points), 0) FROM lines")).scalar()
    assert sorted(rows) == [(f"c-{c}", 60, 60, 60) for c in range(5)]
    assert journal_sum == 0
