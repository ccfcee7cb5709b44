"""``ingest_path``: the one function behind ``loyalty ingest PATH`` tells a file from a history directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from loyalty_core import DEFAULT_RULES, InvalidInput, load_rules
from pipelines.sources import ingest_path

RULES = load_rules(DEFAULT_RULES)
CSV = """transaction_id,customer_id,occurred_at,type,amount,category,channel
t1,alice,2025-03-01T10:00:00Z,purchase,1999.99,groceries,pos
t2,bob,2025-03-02T11:00:00Z,transfer,1.00,,app
"""


def test_ingest_path_posts_a_transactions_file_with_its_name_as_the_stage(
    engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(CSV)
    ticks: list[tuple[str, int, int | None]] = []
    report = ingest_path(
        engine, path, rules=RULES, workers=1, progress=lambda s, n, t: ticks.append((s, n, t))
    )
    assert report.history is None
    assert (report.transactions.posted, report.transactions.rejected) == (2, 0)
    assert ticks[0] == ("tx.csv", 0, 2)
    assert sum(n for _, n, _ in ticks) == 2


def test_ingest_path_refuses_a_missing_path(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file or directory"):
        ingest_path(engine, tmp_path / "nothing.csv", rules=RULES)


def test_ingest_path_refuses_a_directory_that_is_no_history(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not a history directory"):
        ingest_path(engine, tmp_path, rules=RULES)
