"""The inference batcher: concurrent requests share model calls, yet each gets exactly its own scores."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest
from sqlalchemy import Engine

from loyalty_core import DEFAULT_RULES, Settings, load_rules
from serving.runtime.inference import InferenceBatcher, score_rows
from serving.runtime.served_state import ScoringState
from tests.serving.conftest import World, use_mlflow_store


@pytest.fixture
def state(world: World, world_db: Engine, monkeypatch: pytest.MonkeyPatch) -> ScoringState:
    use_mlflow_store(monkeypatch, world.mlflow_uri)
    state = ScoringState(world_db, load_rules(DEFAULT_RULES), Settings(multiplier_file=world.multiplier))
    statuses = state.reload()
    assert all(s["status"] == "ok" for s in statuses.values()), statuses
    return state


def test_concurrent_requests_are_batched_and_get_their_own_rows(state: ScoringState, world: World) -> None:
    snap = state.snapshot(churn=True, offers=True)
    ids = list(world.customers[:24])
    rows, _ = snap.features.value.online.get_many(ids)
    batches: list[int] = []

    async def main() -> list[object]:
        batcher = InferenceBatcher(max_customers=16)
        await batcher.start()
        original = score_rows

        def counting(snap_: object, rows_: np.ndarray, *, churn: bool) -> object:
            batches.append(len(rows_))
            return original(snap_, rows_, churn=churn)  # type: ignore[arg-type]

        import serving.runtime.inference as inference

        inference.score_rows = counting  # type: ignore[assignment]
        try:
            jobs = [batcher.score(snap, rows[i : i + 1], churn=i % 2 == 0) for i in range(len(ids))]
            return list(await asyncio.gather(*jobs))
        finally:
            inference.score_rows = original
            await batcher.stop()

    results = asyncio.run(main())
    assert sum(batches) == len(ids)
    assert max(batches) > 1, "concurrent requests should share a model call"
    assert max(batches) <= 16
    for i, got in enumerate(results):
        alone = score_rows(snap, rows[i : i + 1], churn=True)
        # the same numbers up to rounding (pair features of a batch go through a matrix product)
        assert np.allclose(got.propensity, alone.propensity, rtol=1e-9)  # type: ignore[attr-defined]
        assert np.allclose(got.offer_inputs, alone.offer_inputs, rtol=1e-9, equal_nan=True)  # type: ignore[attr-defined]
        if i % 2 == 0:
            assert np.allclose(got.churn, alone.churn, rtol=1e-9)  # type: ignore[attr-defined]
        else:
            assert got.churn is None  # type: ignore[attr-defined]


def test_requests_holding_different_snapshots_are_scored_apart(state: ScoringState, world: World) -> None:
    snap = state.snapshot(churn=True, offers=True)
    rows, _ = snap.features.value.online.get_many(list(world.customers[:2]))
    # a second snapshot whose offer model is another object: as after a reload
    other = dataclasses.replace(snap, offer_model=dataclasses.replace(snap.offer_model))  # type: ignore[type-var]
    seen: list[object] = []

    async def main() -> None:
        batcher = InferenceBatcher()
        await batcher.start()
        import serving.runtime.inference as inference

        original = inference.score_rows

        def spy(snap_: object, rows_: np.ndarray, *, churn: bool) -> object:
            seen.append(snap_)
            return original(snap_, rows_, churn=churn)  # type: ignore[arg-type]

        inference.score_rows = spy  # type: ignore[assignment]
        try:
            await asyncio.gather(
                batcher.score(snap, rows[:1], churn=True), batcher.score(other, rows[1:], churn=True)
            )
        finally:
            inference.score_rows = original
            await batcher.stop()

    asyncio.run(main())
    assert len(seen) == 2
    assert seen[0] is snap
    assert seen[1] is other
