"""A simulated history shared by the simulator's tests, its frames read once."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loyalty_core import (
    DEFAULT_RULES,
    load_rules,
)
from pipelines.sources.simulator.config import SimConfig
from pipelines.sources.simulator.writer import simulate

RULES = load_rules(DEFAULT_RULES)
START = pd.Timestamp("2025-01-01", tz="UTC")
MONEY = pa.decimal128(18, 2)
TS = pa.timestamp("us", tz="UTC")
TEXT = pa.string()
TEXTS = pa.list_(pa.string())
F64 = pa.float64()

PURCHASE_CATEGORIES = (
    "groceries",
    "restaurants",
    "online",
    "pharmacy",
    "fuel",
    "clothing",
    "entertainment",
    "electronics",
    "travel",
)


class History:
    """One simulated directory, its frames read once."""

    def __init__(self, path: Path, days: int) -> None:
        self.path = path
        self.end = START + pd.Timedelta(days=days)
        self.manifest = json.loads((path / "manifest.json").read_text())

        def read(name: str) -> pd.DataFrame:
            return pq.read_table(path / name).to_pandas()

        self.customers = read("customers.parquet")
        self.offers = read("offers.parquet").set_index("offer_id")
        self.decisions = read("decisions.parquet")
        self.events = read("offer_events.parquet")
        self.txns = read("transactions.parquet")
        self.truth = read("truth/customers.parquet")
        self.effects = read("truth/offer_effects.parquet")
        self.duration = self.offers["duration_days"].astype(int)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    """Large enough for the statistical checks (about 1,000 offers sent per offer kind), still ~2 s."""
    out = tmp_path_factory.mktemp("sim") / "h"
    simulate(SimConfig(customers=1500, days=150, seed=11), out)
    return History(out, 150)
