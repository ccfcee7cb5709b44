"""Load a bank's transactions file (CSV or Parquet) into the ledger through the same rules as the API.

Rows are checked one by one; a bad row is reported with its row number, column and reason and skipped, the
good rows go in. Each chunk is one database transaction posted by ``ledger.post_transactions`` (the very code
behind ``POST /v1/transactions``), and every row carries its ``transaction_id``, so a re-run inserts nothing
twice and an interrupted run can simply be started again.

On PostgreSQL a large file can be posted by several processes, customers split between them
(``parallel_plan`` says why the result is the same). They are started with ``spawn``, so, as with any
multiprocessing in Python, a script that calls ``ingest_frame(workers=...)`` must guard its entry point with
``if __name__ == "__main__":`` (the ``loyalty`` command and notebooks need nothing).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import multiprocessing as mp
import queue
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from loyalty_core import (
    InvalidInput,
    LoyaltyError,
    PostingResult,
    Rules,
    TransactionIn,
    in_transaction,
    make_engine,
    post_transactions,
    utcnow,
)

log = logging.getLogger(__name__)

REQUIRED = ("transaction_id", "customer_id", "occurred_at", "type", "amount")
OPTIONAL = ("category", "channel", "currency")
CHUNK_ROWS = 5000


@dataclass(frozen=True, slots=True)
class RowProblem:
    row: int  # 1-based data row (the header is not counted); for CSV the file line is row + 1
    column: str
    reason: str
    transaction_id: str | None = None


@dataclass(slots=True)
class IngestReport:
    source: str
    rows_read: int = 0
    posted: int = 0
    held: int = 0
    already_present: int = 0
    points: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    processes: int = 1  # how many processes posted the rows (see parallel_plan)

    @property
    def rejected(self) -> int:
        return len(self.problems)

    def add(self, other: IngestReport) -> None:
        """Count another part of the same source (a batch of a file, a worker's customers) into this one."""
        self.rows_read += other.rows_read
        self.posted += other.posted
        self.held += other.held
        self.already_present += other.already_present
        self.points += other.points
        self.problems.extend(other.problems)
        self.processes = max(self.processes, other.processes)

    def rejected_by_reason(self) -> Counter[str]:
        return Counter(f"{p.column}: {p.reason.split(':')[0]}" for p in self.problems)


def read_transactions(path: Path) -> pd.DataFrame:
    """Read every column as text, so amounts stay exact decimals (0.1 is not 0.1000000000000000055)."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
        return frame.astype({c: "string" for c in frame.columns if c != "occurred_at"})
    if suffix in (".csv", ".txt", ".gz"):
        return pd.read_csv(path, dtype="string", keep_default_na=False, na_values=[""])
    raise InvalidInput(f"{path}: unsupported file type {suffix!r} (use .csv or .parquet)", field="file")


def _check_columns(frame: pd.DataFrame, source: str) -> None:
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"{source}: missing column(s) {', '.join(missing)}; a transactions file needs "
            f"{', '.join(REQUIRED)} (optional: {', '.join(OPTIONAL)})",
            field="columns",
        )


def _timestamps(col: pd.Series) -> pd.Series:
    """UTC timestamps; a value without an offset is taken as UTC (documented in the README)."""
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        converted: pd.Series = col.dt.tz_convert("UTC")
        return converted
    parsed: pd.Series = pd.to_datetime(col, utc=True, errors="coerce", format="ISO8601")
    return parsed


def iter_rows(
    frame: pd.DataFrame, rows: list[int], report: IngestReport
) -> Iterator[tuple[int, TransactionIn]]:
    """Turn a frame into ledger requests with their file row numbers; report rows that cannot be parsed."""
    times = _timestamps(frame["occurred_at"])
    cols = {
        c: frame[c].tolist() if c in frame.columns else [None] * len(frame) for c in (*REQUIRED, *OPTIONAL)
    }
    stamps = times.tolist()
    for k in range(len(frame)):
        row = rows[k]
        tid = cols["transaction_id"][k]
        tid = None if tid is None or tid is pd.NA else str(tid)
        raw_amount = cols["amount"][k]
        try:
            amount = Decimal(str(raw_amount).strip())
        except (InvalidOperation, ValueError):
            report.problems.append(RowProblem(row, "amount", f"not a number: {raw_amount!r}", tid))
            continue
        ts = stamps[k]
        if ts is None or ts is pd.NaT or pd.isna(ts):
            report.problems.append(
                RowProblem(row, "occurred_at", f"not a timestamp: {frame['occurred_at'].iloc[k]!r}", tid)
            )
            continue
        values = {c: (None if (v := cols[c][k]) is None or v is pd.NA else str(v)) for c in cols}
        yield (
            row,
            TransactionIn(
                transaction_id=values["transaction_id"] or "",
                customer_id=values["customer_id"] or "",
                type=values["type"] or "",
                amount=amount,
                occurred_at=ts.to_pydatetime(),
                category=values["category"],
                channel=values["channel"],
                currency=values["currency"],
            ),
        )


def ingest_frame(
    engine: Engine,
    frame: pd.DataFrame,
    *,
    rules: Rules,
    source: str = "frame",
    actor: str = "cli:ingest",
    chunk_rows: int = CHUNK_ROWS,
    first_row: int = 1,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
) -> IngestReport:
    """Post every good row of ``frame``; chronological order, so tiers and velocity see history as it was.

    ``first_row`` is the file row number of the frame's first row, for a file read in batches. ``workers``
    (PostgreSQL only, see ``parallel_plan``) splits the rows by customer over that many processes.
    """
    _check_columns(frame, source)
    # Unparseable timestamps sort last (NaT); they are reported by iter_rows, not posted.
    order = (
        _timestamps(frame["occurred_at"]).reset_index(drop=True).sort_values(kind="stable").index.to_numpy()
    )
    frame = frame.iloc[order]
    file_rows = order + first_row
    # What both paths post with; a partial of a module-level function, so it can go to a worker process
    post = functools.partial(
        _post_sorted, rules=rules, source=source, actor=actor, now=utcnow(), chunk_rows=chunk_rows
    )
    parts = parallel_plan(engine, frame, workers)
    if parts is None:
        report = post(engine, frame, file_rows.tolist(), progress=progress)
    else:
        report = _post_in_parallel(engine, frame, file_rows, parts, post, progress)
    accounted = report.posted + report.held + report.already_present + report.rejected
    assert accounted == report.rows_read, f"ingest lost track of rows: {accounted} != {report.rows_read}"
    report.problems.sort(key=lambda p: p.row)
    return report


def _post_sorted(
    engine: Engine,
    frame: pd.DataFrame,
    file_rows: list[int],
    *,
    rules: Rules,
    source: str,
    actor: str,
    now: dt.datetime,
    chunk_rows: int,
    progress: Callable[[int], None] | None,
) -> IngestReport:
    """Post a frame already in posting order, a chunk per database transaction."""
    report = IngestReport(source=source, rows_read=len(frame))
    batch: list[tuple[int, TransactionIn]] = []
    done = 0  # rows already reported to the progress callback

    def flush() -> None:
        nonlocal done
        if not batch:
            return
        txns = [t for _, t in batch]
        outcomes = in_transaction(
            engine,
            lambda s: post_transactions(s, txns, rules=rules, actor=actor, now=now),
            defer_writes=True,
        )
        for (row, t), outcome in zip(batch, outcomes, strict=True):
            _account(report, row, t, outcome)
        if progress is not None:
            progress(len(batch))
            done += len(batch)
        batch.clear()

    for row, txn in iter_rows(frame, file_rows, report):
        batch.append((row, txn))
        if len(batch) >= chunk_rows:
            flush()
    flush()
    if progress is not None:
        progress(len(frame) - done)  # the rejected rows
    return report


# --- parallel ingest (PostgreSQL) --------------------------------------------------------------------------
PARALLEL_MIN_ROWS = 20_000  # below this, starting the processes costs more than it saves


def parallel_plan(engine: Engine, frame: pd.DataFrame, workers: int) -> np.ndarray | None:
    """Which worker posts each row (by customer), or None to post in this process.

    Everything a posting reads or changes belongs to its customer (balance, lots, tier spend, velocity,
    caps, offers), so customers are independent: each worker posts its customers' rows in the file's
    chronological order, and the ledger ends as if one process had posted every row in that order. Two
    exceptions keep one process: SQLite (one writer at a time; processes would only queue) and a
    ``transaction_id`` used by two customers, whose first use must win as it would in one process.
    """
    if workers <= 1 or len(frame) < PARALLEL_MIN_ROWS or engine.dialect.name != "postgresql":
        return None
    customers = frame["customer_id"].astype("string").fillna("")
    ids = frame["transaction_id"].astype("string").fillna("")
    if (pd.DataFrame({"t": ids, "c": customers}).drop_duplicates().groupby("t")["c"].size() > 1).any():
        log.warning("a transaction_id is used by several customers: ingesting in one process")
        return None
    hashes = pd.util.hash_pandas_object(customers, index=False).to_numpy()
    parts = (hashes % np.uint64(workers)).astype(np.int64)
    return parts if len(np.unique(parts)) > 1 else None  # one customer (or a few, hashed alike): no split


def _post_in_parallel(
    engine: Engine,
    frame: pd.DataFrame,
    file_rows: np.ndarray,
    parts: np.ndarray,
    post: functools.partial[IngestReport],
    progress: Callable[[int], None] | None,
) -> IngestReport:
    url = engine.url.render_as_string(hide_password=False)
    context = mp.get_context("spawn")  # a fresh interpreter: no inherited connections or threads
    groups = [np.flatnonzero(parts == k) for k in np.unique(parts).tolist()]
    report = IngestReport(source=post.keywords["source"], processes=len(groups))
    with context.Manager() as manager, ProcessPoolExecutor(len(groups), mp_context=context) as pool:
        ticks = manager.Queue()
        futures = [
            pool.submit(_post_part, url, post, frame.iloc[rows], file_rows[rows].tolist(), ticks)
            for rows in groups
        ]
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(ticks, progress)
            for future in done:
                report.add(future.result())  # a worker's error is this call's error
        _drain(ticks, progress)
    return report


def _drain(ticks: Any, progress: Callable[[int], None] | None) -> None:
    while True:
        try:
            n = ticks.get_nowait()
        except queue.Empty:
            return
        if progress is not None:
            progress(n)


def _post_part(
    url: str, post: functools.partial[IngestReport], frame: pd.DataFrame, file_rows: list[int], ticks: Any
) -> IngestReport:
    """One worker's customers, in its own process with its own connection pool."""
    engine = make_engine(url)
    try:
        return post(engine, frame, file_rows, progress=ticks.put)
    finally:
        engine.dispose()


def _account(report: IngestReport, row: int, t: TransactionIn, outcome: PostingResult | LoyaltyError) -> None:
    if isinstance(outcome, LoyaltyError):
        column = str(outcome.details.get("field", "transaction_id"))
        report.problems.append(RowProblem(row, column, outcome.message, t.transaction_id or None))
    elif outcome.replayed:
        report.already_present += 1
    elif outcome.response.get("status") == "held":
        report.held += 1
    else:
        report.posted += 1
        report.points += int(outcome.response["points"])


def ingest_file(engine: Engine, path: Path, *, rules: Rules, **kwargs: object) -> IngestReport:
    frame = read_transactions(path)
    return ingest_frame(engine, frame, rules=rules, source=str(path), **kwargs)  # type: ignore[arg-type]
