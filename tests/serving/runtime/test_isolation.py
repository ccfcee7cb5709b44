"""Batched work is isolated: in every micro-batcher, one bad item among good ones fails only itself.

The batchers put concurrent requests into one database statement, transaction or model call; a batch is
the server's convenience, never its clients' shared fate. Each test queues good items and bad ones
together (so they share a batch) and checks that every good one gets its own answer, and every bad one
its own error: a ``LoyaltyError`` stays that item's domain error (its 4xx), nothing else's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine

from loyalty_core import (
    DEFAULT_RULES,
    InvalidInput,
    NotFound,
    PostingResult,
    Settings,
    TransactionIn,
    load_rules,
)
from models import CustomerState, FrequencyCaps
from serving.runtime.batcher import PostingBatcher
from serving.runtime.decision_writer import DecisionWriter
from serving.runtime.facts import FactsReader
from serving.runtime.inference import InferenceBatcher, Scores, score_rows
from serving.runtime.microbatch import MicroBatcher
from serving.runtime.served_state import ScoringState
from tests.serving.conftest import World, use_mlflow_store

# A lone surrogate cannot be encoded by any database driver (SQLite's or psycopg's): the statement that
# carries it fails as a whole. A NUL cannot be stored in PostgreSQL text.
UNENCODABLE = "c-\ud800"
NUL = "c-\x00"
T0 = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)


def _split(ids: Sequence[str], results: Sequence[Any], bad: set[str]) -> tuple[list[Any], list[Any]]:
    good = [r for i, r in zip(ids, results, strict=True) if i not in bad]
    failed = [r for i, r in zip(ids, results, strict=True) if i in bad]
    return good, failed


def test_the_facts_reader_fails_only_the_customer_it_cannot_read(db_engine: Engine) -> None:
    rules = load_rules(DEFAULT_RULES)
    ids = [f"c-{i}" for i in range(40)]
    ids[5], ids[23] = UNENCODABLE, NUL
    bad = {UNENCODABLE} | ({NUL} if db_engine.dialect.name == "postgresql" else set())

    async def main() -> list[Any]:
        reader = FactsReader(db_engine, rules, FrequencyCaps())
        await reader.start()
        try:
            return await asyncio.gather(*(reader.read(i) for i in ids), return_exceptions=True)
        finally:
            await reader.stop()

    good, failed = _split(ids, asyncio.run(main()), bad)
    assert all(isinstance(r, CustomerState) for r in good), [r for r in good if isinstance(r, Exception)]
    assert all(isinstance(r, Exception) for r in failed), failed


def test_a_posting_the_database_refuses_fails_alone(db_engine: Engine) -> None:
    customers = [f"c-{i}" for i in range(30)]
    customers[7] = UNENCODABLE
    if db_engine.dialect.name == "postgresql":
        customers[19] = NUL
    bad = {UNENCODABLE, NUL}

    def txn(i: int, customer: str) -> TransactionIn:
        return TransactionIn(
            transaction_id=f"t-{i}",
            customer_id=customer,
            type="purchase",
            amount=Decimal(100),
            occurred_at=T0,
        )

    async def main() -> list[Any]:
        batcher = PostingBatcher(db_engine, load_rules(DEFAULT_RULES), linger_ms=20)
        await batcher.start()
        try:
            submits = (batcher.submit(txn(i, c), actor="api:core") for i, c in enumerate(customers))
            return await asyncio.gather(*submits, return_exceptions=True)
        finally:
            await batcher.stop()

    good, failed = _split(customers, asyncio.run(main()), bad)
    assert all(isinstance(r, PostingResult) for r in good), [r for r in good if isinstance(r, Exception)]
    assert all(isinstance(r, Exception) for r in failed), failed


def _decision(i: int, customer: str) -> dict[str, Any]:
    return {
        "id": f"d-{i}",
        "customer_id": customer,
        "made_at": T0,
        "policy": "epsilon_greedy:0.05",
        "offer_id": "o-1",
        "probability": 0.5,
        "served": True,
        "channel": None,
        "offers": [{"offer_id": "o-1", "probability": 0.5}],
        "model_versions": {"offers": "1"},
    }


def test_a_decision_the_database_refuses_fails_alone(db_engine: Engine) -> None:
    customers = [f"c-{i}" for i in range(30)]
    customers[11] = UNENCODABLE
    if db_engine.dialect.name == "postgresql":
        customers[3] = NUL
    bad = {UNENCODABLE, NUL}

    async def main() -> list[Any]:
        writer = DecisionWriter(db_engine)
        await writer.start()
        try:
            writes = (writer.write([_decision(i, c)]) for i, c in enumerate(customers))
            return await asyncio.gather(*writes, return_exceptions=True)
        finally:
            await writer.stop()

    good, failed = _split(customers, asyncio.run(main()), bad)
    assert good == [None] * len(good)
    assert all(isinstance(r, Exception) for r in failed), failed


class _Lookup(MicroBatcher["_Ask"]):
    """A batcher whose batch raises the domain error of one item, as a reader that meets a refusal would."""

    name = "lookup"

    def __init__(self) -> None:
        super().__init__(threads=1)
        self.calls: list[int] = []

    def work(self, batch: Sequence[_Ask]) -> list[str]:
        self.calls.append(len(batch))
        for ask in batch:
            if ask.key.startswith("missing"):
                raise NotFound(f"unknown key {ask.key!r}", code="unknown_key")
        return [ask.key.upper() for ask in batch]


class _Ask:
    __slots__ = ("future", "key")

    def __init__(self, key: str, future: asyncio.Future[Any]) -> None:
        self.key = key
        self.future = future


def test_a_domain_error_of_one_item_reaches_only_its_caller() -> None:
    keys = [f"k{i}" for i in range(20)]
    keys[9] = "missing-9"

    async def main() -> tuple[list[Any], list[int]]:
        lookup = _Lookup()
        await lookup.start()
        loop = asyncio.get_running_loop()
        try:
            asks = [_Ask(k, loop.create_future()) for k in keys]
            for ask in asks:
                lookup._put(ask)
            return await asyncio.gather(*(a.future for a in asks), return_exceptions=True), lookup.calls
        finally:
            await lookup.stop()

    results, calls = asyncio.run(main())
    assert calls[0] > 1, "the items should have shared a batch first"
    assert [r for k, r in zip(keys, results, strict=True) if k != "missing-9"] == [
        k.upper() for k in keys if k != "missing-9"
    ]
    error = results[9]
    assert isinstance(error, NotFound)
    assert (error.status, error.code) == (404, "unknown_key")
    assert "missing-9" in error.message


@pytest.fixture
def state(world: World, world_db: Engine, monkeypatch: pytest.MonkeyPatch) -> ScoringState:
    use_mlflow_store(monkeypatch, world.mlflow_uri)
    state = ScoringState(world_db, load_rules(DEFAULT_RULES), Settings(multiplier_file=world.multiplier))
    statuses = state.reload()
    assert all(s["status"] == "ok" for s in statuses.values()), statuses
    return state


def test_a_job_the_models_cannot_score_fails_alone(state: ScoringState, world: World) -> None:
    snap = state.snapshot(churn=True, offers=True)
    ids = list(world.customers[:16])
    rows, _ = snap.features.value.online.get_many(ids)
    jobs: list[np.ndarray] = [rows[i : i + 1] for i in range(len(ids))]
    jobs[4] = np.zeros((1, rows.shape[1] + 3))  # a row of another width: no matrix can hold it with the rest

    async def main() -> list[Any]:
        batcher = InferenceBatcher()
        await batcher.start()
        try:
            return await asyncio.gather(
                *(batcher.score(snap, job, churn=True) for job in jobs), return_exceptions=True
            )
        finally:
            await batcher.stop()

    results = asyncio.run(main())
    for i, got in enumerate(results):
        if i == 4:
            assert isinstance(got, InvalidInput), got  # its own answer: the shape it sent is wrong
            continue
        assert isinstance(got, Scores), got
        alone = score_rows(snap, jobs[i], churn=True)
        assert np.allclose(got.propensity, alone.propensity, rtol=1e-9)
        assert got.churn is not None
        assert alone.churn is not None
        assert np.allclose(got.churn, alone.churn, rtol=1e-9)
