"""Feature snapshots offline: Parquet partitioned by as-of date.

``DIR/as_of=YYYY-MM-DD/part-00000.parquet`` (Hive-style, so Spark, DuckDB and pyarrow datasets read
the folder as one table with an ``as_of`` column). A partition is written to a temporary folder and renamed
into place, so a reader never sees half a snapshot and re-running a date replaces it whole. The file's
schema metadata carries the catalogue version and the exact cutoff instant.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loyalty_core import DEFAULT_VAR, NotFound
from pipelines.features.config import current_feature_version
from pipelines.features.cutoff import single_as_of

log = logging.getLogger(__name__)


DEFAULT_DIR = DEFAULT_VAR / "features"


VERSION_KEY = b"loyalty.feature_version"
CUTOFF_KEY = b"loyalty.as_of"


def partition_dir(out_dir: Path, as_of: pd.Timestamp) -> Path:
    return out_dir / f"as_of={as_of.date().isoformat()}"


def write_snapshot(
    features: pd.DataFrame, out_dir: Path = DEFAULT_DIR, *, version: str | None = None
) -> Path:
    """Write one as-of date's features as a partition of ``out_dir``; returns the Parquet file's path."""
    as_of = single_as_of(features)
    table = pa.Table.from_pandas(features.drop(columns=["as_of"]), preserve_index=False)
    meta = dict(table.schema.metadata or {})
    version = version if version is not None else current_feature_version()
    meta.update({VERSION_KEY: version.encode(), CUTOFF_KEY: as_of.isoformat().encode()})
    table = table.replace_schema_metadata(meta)
    final = partition_dir(out_dir, as_of)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{final.name}.{uuid.uuid4().hex}.tmp"
    tmp.mkdir()
    try:
        pq.write_table(table, tmp / "part-00000.parquet", compression="zstd")
        if final.exists():
            old = out_dir / f".{final.name}.{uuid.uuid4().hex}.old"
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old)
        else:
            tmp.rename(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    log.info("wrote %d feature rows as of %s to %s", len(features), as_of, final)
    return final / "part-00000.parquet"


def snapshot_dates(out_dir: Path = DEFAULT_DIR) -> list[dt.date]:
    """The as-of dates with a snapshot in ``out_dir``, oldest first."""
    if not out_dir.is_dir():
        return []
    dates = []
    for p in out_dir.glob("as_of=*"):
        if p.is_dir():
            try:
                dates.append(dt.date.fromisoformat(p.name.removeprefix("as_of=")))
            except ValueError:
                continue
    return sorted(dates)


def read_snapshot(out_dir: Path = DEFAULT_DIR, as_of: dt.date | str | None = None) -> pd.DataFrame:
    """One partition (the latest when ``as_of`` is None) with its keys back in front."""
    dates = snapshot_dates(out_dir)
    if not dates:
        raise NotFound(f"no feature snapshot in {out_dir}", code="no_snapshot")
    day = dates[-1] if as_of is None else dt.date.fromisoformat(str(as_of)[:10])
    path = out_dir / f"as_of={day.isoformat()}"
    if not path.is_dir():
        raise NotFound(f"no feature snapshot as of {day} in {out_dir}", code="no_snapshot")
    table = pq.read_table(path / "part-00000.parquet")
    meta = table.schema.metadata or {}
    frame: pd.DataFrame = table.to_pandas()
    stamp = pd.Timestamp(meta.get(CUTOFF_KEY, day.isoformat().encode()).decode())
    stamp = (stamp if stamp.tzinfo else stamp.tz_localize("UTC")).tz_convert("UTC").as_unit("us")
    frame.insert(
        1,
        "as_of",
        pd.Series(np.full(len(frame), stamp.value // 1000, "datetime64[us]")).dt.tz_localize("UTC"),
    )
    frame.attrs["feature_version"] = meta.get(VERSION_KEY, b"").decode()
    return frame
