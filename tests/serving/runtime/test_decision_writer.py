"""The decision writer: many requests share a commit, each learns its own outcome, nothing is left behind."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty_core import Decision, InvalidInput, Unavailable
from serving.runtime import DecisionWriter

T0 = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


def row(i: int, probability: float = 0.5) -> dict[str, Any]:
    return {
        "id": f"d-{i}",
        "customer_id": f"c-{i % 7}",
        "made_at": T0,
        "policy": "epsilon_greedy:0.05",
        "offer_id": "o-1",
        "probability": probability,
        "served": True,
        "channel": None,
        "offers": [{"offer_id": "o-1", "probability": probability}],
        "model_versions": {"offers": "1"},
    }


def count(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(Decision)) or 0)


def test_concurrent_decisions_are_all_committed_before_their_requests_return(engine: Engine) -> None:
    async def main() -> list[Any]:
        writer = DecisionWriter(engine)
        await writer.start()
        try:
            return await asyncio.gather(*(writer.write([row(i)]) for i in range(200)))
        finally:
            await writer.stop()

    assert asyncio.run(main()) == [None] * 200
    assert count(engine) == 200


def test_a_bad_decision_fails_alone(engine: Engine) -> None:
    async def main() -> list[Any]:
        writer = DecisionWriter(engine)
        await writer.start()
        try:
            return await asyncio.gather(
                writer.write([row(1)]),
                writer.write([row(2, probability=1.5)]),
                writer.write([row(3), row(4)]),
                writer.write([row(1)]),  # the same id again: refused by the primary key
                return_exceptions=True,
            )
        finally:
            await writer.stop()

    first, bad, pair, duplicate = asyncio.run(main())
    assert first is None
    assert pair is None
    assert isinstance(bad, InvalidInput)
    assert "probability 1.5" in bad.message
    assert isinstance(duplicate, Exception)
    assert count(engine) == 3


def test_stop_writes_what_was_queued_then_refuses(engine: Engine) -> None:
    async def main() -> None:
        writer = DecisionWriter(engine)
        await writer.start()
        pending = [asyncio.ensure_future(writer.write([row(i)])) for i in range(20)]
        await asyncio.sleep(0)
        await writer.stop()
        await asyncio.gather(*pending)
        with pytest.raises(Unavailable, match="shutting down"):
            await writer.write([row(99)])

    asyncio.run(main())
    assert count(engine) == 20
