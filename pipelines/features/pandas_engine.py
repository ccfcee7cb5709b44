"""The pandas engine: the feature function in this process, over groups of whole customers.

``compute_features`` is vectorised over every customer it is given; its working memory is a few times its
input. Giving it a bounded slice of customers at a time (``frames.split_by_customer``) keeps the peak near
the size of the data itself on a large ledger, and costs nothing in exactness: a customer's rows stay
together and in order, so every customer gets exactly the row the whole-ledger call would give (the Spark
engine relies on the same property, with hash buckets instead of ranges).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from pipelines.features.compute import compute_features
from pipelines.features.config import FeatureConfig, default_config
from pipelines.features.cutoff import to_cutoff
from pipelines.features.frames import LedgerFrames, split_by_customer

PARTITION_ROWS = 1_000_000


def pandas_features(
    frames: LedgerFrames,
    as_of: dt.datetime | dt.date | str | pd.Timestamp,
    config: FeatureConfig | None = None,
    *,
    partition_rows: int = PARTITION_ROWS,
) -> pd.DataFrame:
    """``compute_features(frames, as_of)``, computed ``partition_rows`` ledger rows at a time."""
    config = config or default_config()
    cutoff = to_cutoff(as_of)
    parts = [compute_features(part, cutoff, config) for part in split_by_customer(frames, partition_rows)]
    if len(parts) == 1:
        return parts[0]
    # Groups are ranges of sorted ids, so their results concatenate in customer order.
    return pd.concat(parts, ignore_index=True)
