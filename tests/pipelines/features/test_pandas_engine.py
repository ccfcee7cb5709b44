"""The pandas engine: small partitions give the frame the whole gives."""

from __future__ import annotations

import pandas as pd

from pipelines.features.compute import compute_features
from pipelines.features.frames import split_by_customer
from pipelines.features.pandas_engine import pandas_features
from tests.pipelines.conftest import random_frames


def test_the_pandas_engine_in_small_partitions_gives_the_same_frame() -> None:
    frames = random_frames(8)
    whole = compute_features(frames, "2025-10-01")
    parts = list(split_by_customer(frames, 400))
    assert len(parts) > 3
    assert sum(p.rows for p in parts) == frames.rows
    pd.testing.assert_frame_equal(
        pandas_features(frames, "2025-10-01", partition_rows=400), whole, check_exact=True
    )
    assert next(split_by_customer(frames, 10**9)) is frames
