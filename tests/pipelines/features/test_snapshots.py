"""Feature snapshots in Parquet and the online table, on SQLite and PostgreSQL, and `loyalty features`."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from loyalty_core import InvalidInput, NotFound, OnlineFeature
from pipelines.features import FEATURE_NAMES, FEATURE_VERSION
from pipelines.features.compute import compute_features
from pipelines.features.extract import extract
from pipelines.features.online import OnlineFeatures, feature_matrix, refresh_online
from pipelines.features.snapshots import read_snapshot, snapshot_dates, write_snapshot
from serving import cli_app as app
from tests.pipelines.conftest import CUTOFF, RULES, random_frames


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


def _equal(a: np.ndarray | None, b: np.ndarray) -> bool:
    return a is not None and np.array_equal(a, b, equal_nan=True)


def test_online_table_round_trip(tiny_ledger_any: Engine) -> None:
    features = compute_features(extract(tiny_ledger_any, rules=RULES), CUTOFF)
    assert refresh_online(tiny_ledger_any, features) == 3
    online = OnlineFeatures(tiny_ledger_any).load()
    assert len(online) == 3
    assert "alice" in online
    assert online.names == FEATURE_NAMES
    matrix = feature_matrix(features)
    for i, cid in enumerate(features["customer_id"]):
        assert _equal(online.get(cid), matrix[i])
        assert online.as_of(cid) == CUTOFF
    assert online.get("carol") is None
    alice = online.get("alice")
    assert alice is not None
    assert alice[FEATURE_NAMES.index("points_balance")] == 385.0
    both, known = online.get_many(["bob", "nobody"])
    assert known.tolist() == [True, False]
    assert _equal(both[0], matrix[1])
    assert np.isnan(both[1]).all()


def test_an_older_snapshot_never_overwrites_a_newer_row(db_engine: Engine) -> None:
    frames = random_frames(11)
    newer = compute_features(frames, "2025-12-01")
    older = compute_features(frames, "2025-06-01")
    refresh_online(db_engine, newer)
    refresh_online(db_engine, older)
    online = OnlineFeatures(db_engine).load()
    assert len(online) == len(set(newer["customer_id"]) | set(older["customer_id"]))
    matrix = feature_matrix(newer)
    for i, cid in enumerate(newer["customer_id"]):
        assert _equal(online.get(cid), matrix[i]), cid
    only_old = set(older["customer_id"]) - set(newer["customer_id"])
    for cid in only_old:  # none in this data, but the rule holds either way
        assert online.as_of(cid) == pd.Timestamp("2025-06-01", tz="UTC")


def test_refresh_rereads_only_after_a_write(db_engine: Engine) -> None:
    frames = random_frames(12)
    first = compute_features(frames, "2025-10-01")
    refresh_online(db_engine, first)
    online = OnlineFeatures(db_engine).load()
    assert online.refresh() is False
    later = compute_features(frames, "2025-12-01")
    refresh_online(db_engine, later)
    cid = later["customer_id"].iloc[0]
    assert online.as_of(cid) == pd.Timestamp("2025-10-01", tz="UTC")
    assert online.refresh() is True
    assert online.as_of(cid) == pd.Timestamp("2025-12-01", tz="UTC")
    assert _equal(online.get(cid), feature_matrix(later)[0])
    assert online.refresh() is False


def test_rows_of_another_catalogue_version_are_not_served(engine: Engine) -> None:
    features = compute_features(random_frames(13), "2025-10-01")
    refresh_online(engine, features.iloc[:5], version="f-older", names=FEATURE_NAMES[:3])
    refresh_online(engine, features.iloc[5:])
    online = OnlineFeatures(engine).load()
    assert len(online) == len(features) - 5
    assert online.get(features["customer_id"].iloc[0]) is None
    legacy = OnlineFeatures(engine, version="f-older", names=FEATURE_NAMES[:3]).load()
    assert len(legacy) == 5
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(OnlineFeature)).scalar() == len(features)


def test_a_lookup_takes_microseconds(engine: Engine) -> None:
    features = compute_features(random_frames(14, customers=2000, transactions=20_000), "2025-12-01")
    refresh_online(engine, features)
    online = OnlineFeatures(engine).load()
    ids = list(features["customer_id"].sample(20_000, replace=True, random_state=0))
    start = time.perf_counter()
    for cid in ids:
        online.get(cid)
    per_lookup = (time.perf_counter() - start) / len(ids)
    assert per_lookup < 50e-6, f"{per_lookup * 1e6:.1f} µs per lookup"


def test_features_command_writes_the_snapshot_and_the_online_table(
    tiny_ledger: Engine, tmp_path: Path
) -> None:
    result = CliRunner().invoke(app, ["features", "--as-of", "2026-03-01", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "3 customers x 123 features" in result.output
    snapshot = read_snapshot(tmp_path, "2026-03-01")
    pd.testing.assert_frame_equal(snapshot, compute_features(extract(tiny_ledger, rules=RULES), CUTOFF))
    online = OnlineFeatures(tiny_ledger).load()
    assert sorted(online._state[1]) == ["alice", "bob", "erin"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["features"], "--as-of DATE is required"),
        (["features", "--as-of", "2026-02-30"], "is not a date"),
        (["features", "--as-of", "2026-03-01", "--engine", "dask"], "--engine must be one of pandas, spark"),
        (["features", "--as-of", "2000-01-01"], "no customer is known before"),
    ],
)
def test_features_command_errors_are_one_line(tiny_ledger: Engine, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
