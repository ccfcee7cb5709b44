"""``loyalty features --as-of DATE``: extract, compute (pandas or Spark), write the snapshot, refresh online.

The one place that strings the feature steps together, so the CLI stays a thin wrapper and tests can run
the whole job on a test database.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from loyalty_core import InvalidInput, Rules
from pipelines.features.catalogue import feature_version
from pipelines.features.config import FeatureConfig
from pipelines.features.cutoff import to_cutoff
from pipelines.features.extract import QUERIES, extract
from pipelines.features.online import refresh_online
from pipelines.features.pandas_engine import pandas_features
from pipelines.features.snapshots import DEFAULT_DIR, write_snapshot

log = logging.getLogger(__name__)

ENGINES = ("pandas", "spark")
STEPS = (*QUERIES, "features", "snapshot", "online")


@dataclass(slots=True)
class FeatureJobReport:
    as_of: dt.datetime
    engine: str
    customers: int = 0
    features: int = 0
    input_rows: int = 0
    path: Path | None = None
    online_rows: int = 0
    version: str = ""  # the catalogue version written: that of the job's rules
    seconds: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        timing = ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        return [
            f"features as of {self.as_of.isoformat()} ({self.engine}): {self.customers} customers x "
            f"{self.features} features from {self.input_rows} ledger rows (version {self.version})",
            f"snapshot: {self.path}",
            f"online table: {self.online_rows} rows refreshed",
            f"time: {timing}",
        ]


def parse_as_of_date(value: str) -> dt.datetime:
    """``--as-of`` is a calendar date: the snapshot sees everything before its midnight (UTC)."""
    try:
        day = dt.date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"--as-of {value!r} is not a date (YYYY-MM-DD)", field="as_of") from exc
    return to_cutoff(day).to_pydatetime()


def run_feature_job(
    engine: Engine,
    *,
    as_of: dt.datetime,
    rules: Rules,
    compute: str = "pandas",
    out_dir: Path = DEFAULT_DIR,
    step: Callable[[str], None] | None = None,
) -> FeatureJobReport:
    """Build the snapshot as of ``as_of`` and refresh the online table; ``step(name)`` after each step."""
    if compute not in ENGINES:
        raise InvalidInput(f"--engine must be one of {', '.join(ENGINES)}, got {compute!r}", field="engine")
    report = FeatureJobReport(as_of=as_of, engine=compute)
    config = FeatureConfig.from_rules(rules)
    report.version = feature_version(config.catalogue)
    clock = time.perf_counter()

    def done(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        report.seconds[name] = report.seconds.get(name, 0.0) + now - clock
        clock = now
        if step is not None:
            step(name)

    # Only facts before the cutoff matter; activations keep a later completion time (ignored by features).
    frames = extract(engine, rules=rules, until=as_of, progress=lambda name: step(name) if step else None)
    report.seconds["extract"] = time.perf_counter() - clock
    clock = time.perf_counter()
    report.input_rows = frames.rows
    if compute == "spark":
        from pipelines.features.spark_engine import spark_features

        features = spark_features(frames, as_of, config)
    else:
        features = pandas_features(frames, as_of, config)
    done("features")
    report.customers, report.features = len(features), len(features.columns) - 2
    if features.empty:
        raise InvalidInput(
            f"no customer is known before {as_of.isoformat()}: nothing to snapshot", field="as_of"
        )
    report.path = write_snapshot(features, out_dir, version=report.version)
    done("snapshot")
    report.online_rows = refresh_online(engine, features, version=report.version)
    done("online")
    return report
