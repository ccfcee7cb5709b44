"""The online table on SQLite and PostgreSQL: round trip, newest row wins, versions apart, fast lookups."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select

from loyalty_core import OnlineFeature
from pipelines.features import FEATURE_NAMES
from pipelines.features.compute import compute_features
from pipelines.features.extract import extract
from pipelines.features.online import OnlineFeatures, feature_matrix, refresh_online
from tests.pipelines.conftest import CUTOFF, RULES, random_frames


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
