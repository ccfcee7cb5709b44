"""Arrow columns and Parquet files written the same way on every run (same seed, same bytes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.sources.simulator.config import Array, Calendar

ROW_GROUP_ROWS = 500_000


MONEY = pa.decimal128(18, 2)
RATE = pa.decimal128(10, 4)
TIMESTAMP = pa.timestamp("us", tz="UTC")


def money_array(cents: Array) -> pa.Array:
    """decimal128(18,2) straight from integer cents (two's complement little-endian, 16 bytes each)."""
    words = np.zeros((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = np.where(cents < 0, -1, 0)
    return pa.Array.from_buffers(MONEY, len(cents), [None, pa.py_buffer(words)])


def time_array(cal: Calendar, seconds: Array, missing: Array | None = None) -> pa.Array:
    micros = (cal.start_epoch + np.where(seconds >= 0, seconds, 0)) * 1_000_000
    return pa.array(micros, TIMESTAMP, mask=missing)


def name_array(names: tuple[str, ...] | list[str], codes: Array) -> pa.Array:
    return pa.array(list(names), pa.string()).take(pa.array(np.asarray(codes, dtype=np.int64)))


def id_array(prefix: str, numbers: Array, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(np.asarray(numbers, dtype=np.int64)), pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def write_parquet(table: pa.Table, path: Path) -> int:
    """Deterministic Parquet: fixed codec and row groups, no pandas metadata, nothing taken from the clock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd", compression_level=3, row_group_size=ROW_GROUP_ROWS)
    return int(table.num_rows)
