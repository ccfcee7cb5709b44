"""The default churn cutoff when recent days are sparse: a bank whose history stopped, then one live posting.

The latest complete label window of such a ledger holds only churners; ``train churn`` must walk back to a
cutoff whose rows hold both classes, say which it picked, and, when none works, say which dates it tried.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine

from loyalty_core import (
    DEFAULT_RULES,
    InvalidInput,
    TransactionIn,
    in_transaction,
    load_rules,
    make_engine,
    post_transaction,
)
from models.jobs import (
    Registration,
    choose_as_of,
    latest_complete_as_of,
    ledger_span,
    load_job_params,
    train_churn,
)
from pipelines import SimConfig, churn_label_counts, churn_labels, extract, ingest_history, simulate

pytestmark = pytest.mark.slow

RULES = load_rules(DEFAULT_RULES)
HISTORY_END = dt.date(2025, 9, 1)  # 240 days from 2025-01-05
LIVE = dt.datetime(2026, 2, 10, 12, 0, tzinfo=dt.UTC)  # a posting 162 days after the history stopped


@pytest.fixture(scope="module")
def sparse(tmp_path_factory: pytest.TempPathFactory, _sqlite_template: Path) -> Iterator[Engine]:
    """A 300-customer bank ending 2025-09-01, then one purchase on 2026-02-10."""
    root = tmp_path_factory.mktemp("cutoffs")
    simulate(SimConfig.ending(HISTORY_END, customers=300, days=240, seed=3), root / "sim")
    shutil.copyfile(_sqlite_template, root / "loyalty.db")
    engine = make_engine(f"sqlite:///{root / 'loyalty.db'}")
    ingest_history(engine, root / "sim", rules=RULES)
    txn = TransactionIn("live-1", "C0000001", "purchase", Decimal("2500.00"), LIVE)
    in_transaction(engine, lambda s: post_transaction(s, txn, rules=RULES, actor="test", now=LIVE))
    yield engine
    engine.dispose()


def test_simconfig_ending_stops_where_the_end_day_begins() -> None:
    config = SimConfig.ending(HISTORY_END, customers=10, days=240, seed=1)
    assert config.start == dt.date(2025, 1, 4)
    assert config.end_at == dt.datetime(2025, 9, 1, tzinfo=dt.UTC)


def test_label_counts_agree_with_the_labels(sparse: Engine) -> None:
    frames = extract(sparse, rules=RULES)
    first, last = pd.Timestamp("2025-03-10", tz="UTC"), pd.Timestamp("2025-11-20", tz="UTC")
    counts = churn_label_counts(frames, first, last, horizon_days=90)
    assert len(counts) == (last - first).days + 1
    for cutoff in pd.date_range(first, last, freq="17D", tz="UTC"):
        labels = churn_labels(frames, cutoff, horizon_days=90, end=pd.Timestamp("2100-01-01", tz="UTC"))
        assert (counts.loc[cutoff, "known"], counts.loc[cutoff, "churned"]) == (
            len(labels),
            int(labels["churned"].sum()),
        ), cutoff


def test_a_lone_live_posting_after_the_history_still_trains(sparse: Engine) -> None:
    span = ledger_span(sparse)
    latest = latest_complete_as_of(span, 90)
    assert latest == pd.Timestamp(
        "2025-11-13", tz="UTC"
    )  # its window holds the lone posting and nothing else
    report = train_churn(sparse, rules=RULES, registration=Registration(register=False))
    # the latest window that the history covers day by day: it ends where the history does
    assert report.as_of == pd.Timestamp(HISTORY_END, tz="UTC") - pd.Timedelta(days=90)
    assert report.cutoffs[-1] == report.as_of.date().isoformat()
    named = next(line for line in report.lines() if line.startswith("as-of:"))
    assert report.as_of.date().isoformat() in named
    for part in ("walked back", "2025-11-13", "quiet day"):
        assert part in named, named


def test_when_no_cutoff_works_the_error_names_the_dates_tried(sparse: Engine) -> None:
    frames = extract(sparse, rules=RULES)
    span = ledger_span(sparse)
    with pytest.raises(InvalidInput) as caught:
        choose_as_of(frames, span, replace(load_job_params().churn, horizon_days=90, min_class_rows=10_000))
    text = str(caught.value)
    assert "no churn cutoff works" in text
    assert "from 2025-11-13 back to" in text
    assert "dates)" in text, text
    assert "quiet day" in text, text
