"""Feature snapshots in Parquet, partitioned by as-of date and read back."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest

from loyalty_core import InvalidInput, NotFound
from pipelines.features import FEATURE_VERSION
from pipelines.features.compute import compute_features
from pipelines.features.snapshots import read_snapshot, snapshot_dates, write_snapshot
from tests.pipelines.conftest import random_frames


def test_snapshots_are_partitioned_by_as_of_and_read_back(tmp_path: Path) -> None:
    frames = random_frames(5)
    first = compute_features(frames, "2025-10-01")
    second = compute_features(frames, "2025-11-01")
    path = write_snapshot(first, tmp_path)
    assert path == tmp_path / "as_of=2025-10-01" / "part-00000.parquet"
    write_snapshot(second, tmp_path)
    assert [str(d) for d in snapshot_dates(tmp_path)] == ["2025-10-01", "2025-11-01"]
    pd.testing.assert_frame_equal(read_snapshot(tmp_path, "2025-10-01"), first, check_exact=True)
    latest = read_snapshot(tmp_path)
    pd.testing.assert_frame_equal(latest, second, check_exact=True)
    assert latest.attrs["feature_version"] == FEATURE_VERSION
    # Any Hive-aware reader sees one table with the partition as a column.
    table = ds.dataset(tmp_path, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == len(first) + len(second)
    assert sorted(set(table.column("as_of").to_pylist())) == ["2025-10-01", "2025-11-01"]
    # Writing a date again replaces its partition whole, and leaves no temporary folders behind.
    write_snapshot(first.iloc[:3], tmp_path)
    assert len(read_snapshot(tmp_path, "2025-10-01")) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["as_of=2025-10-01", "as_of=2025-11-01"]
    with pytest.raises(NotFound, match="as of 2024-01-01"):
        read_snapshot(tmp_path, "2024-01-01")
    with pytest.raises(NotFound, match="no feature snapshot"):
        read_snapshot(tmp_path / "empty")
    with pytest.raises(InvalidInput, match="one as_of"):
        write_snapshot(pd.concat([first, second]), tmp_path)
