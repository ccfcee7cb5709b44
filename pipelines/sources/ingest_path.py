"""``loyalty ingest PATH``: a history directory or a transactions file, told apart and loaded.

The command line only parses, calls ``ingest_path`` and prints its report; which loader a path needs, and
how many processes "one per core" is, are decided here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from loyalty_core import InvalidInput, Rules
from pipelines.sources.history import HistoryReport, ingest_history
from pipelines.sources.ingest import IngestReport, ingest_frame, read_transactions

Progress = Callable[[str, int, int | None], None]  # (stage, rows just done, rows in the stage when known)


@dataclass(frozen=True, slots=True)
class PathIngestReport:
    """The transactions' report, and the rest of a history's when the path was a history directory."""

    transactions: IngestReport
    history: HistoryReport | None = None


def ingest_path(
    engine: Engine,
    path: Path | str,
    *,
    rules: Rules,
    workers: int = 0,
    progress: Progress | None = None,
) -> PathIngestReport:
    """Load ``path``: a directory is a bank history (``ingest_history``), a file a transactions CSV or
    Parquet file (``ingest_frame``). ``workers``: posting processes, 0 for one per core. ``progress(stage,
    advance, total)``: the history's stages, or the file's name as the one stage of a file."""
    source = Path(path)
    if not source.exists():
        raise InvalidInput(f"{source}: no such file or directory")
    processes = workers or os.cpu_count() or 1
    if source.is_dir():
        history = ingest_history(engine, source, rules=rules, progress=progress, workers=processes)
        assert history.transactions is not None  # ingest_history always posts the transactions file
        return PathIngestReport(transactions=history.transactions, history=history)
    frame = read_transactions(source)

    def tick(n: int) -> None:
        if progress is not None:
            progress(source.name, n, None)

    if progress is not None:
        progress(source.name, 0, len(frame))
    report = ingest_frame(engine, frame, rules=rules, source=str(source), progress=tick, workers=processes)
    return PathIngestReport(transactions=report)
