"""``loyalty demo`` on a tiny bank: all steps run, a re-run adds nothing, a second bank is refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from loyalty_core import InvalidInput, Lot, Settings, make_engine
from serving.demo import run_demo, service_instructions


@pytest.mark.slow
def test_demo_runs_the_whole_loop_and_reruns_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'demo.db'}", api_keys="core:k1,marketing:k2")
    paths = {
        "out": tmp_path / "demo",
        "features_dir": tmp_path / "features",
        "multiplier_file": tmp_path / "multiplier.json",
    }
    first = run_demo(settings, customers=250, days=240, seed=5, **paths)  # type: ignore[arg-type]
    text = "\n".join(first.lines)
    # the bank ends where today begins: its last day is yesterday and nothing due by now is left open
    today = dt.datetime.now(dt.UTC).date()
    yesterday = today - dt.timedelta(days=1)
    assert f"({today - dt.timedelta(days=240)} to {yesterday})" in text
    assert f"features as of {today}" in text
    engine = make_engine(settings.database_url)
    try:
        overdue = select(func.count()).where(Lot.remaining > 0, Lot.expires_at <= dt.datetime.now(dt.UTC))
        with engine.connect() as connection:
            assert connection.scalar(overdue) == 0
    finally:
        engine.dispose()
    assert "expiry up to now:" in text
    assert "offer completions agree with the history: yes" in text
    assert "loyalty-churn v1: promoted" in text
    assert "loyalty-offer-propensity v1: promoted" in text
    assert "true P(churn)" in text  # both models measured against the simulator's truth
    assert "true P(complete)" in text
    assert "what the first offers cause (simulator's truth):" in text  # targeting judged by what it causes
    assert first.scores is not None
    scores = pd.read_parquet(first.scores)
    assert scores["customer_id"].is_unique
    assert scores["churn_probability"].between(0, 1).all()
    assert first.customer_id in set(scores["customer_id"])
    calls = "\n".join(service_instructions(settings, first.customer_id))
    assert "X-API-Key: k1" in calls
    assert "X-API-Key: k2" in calls
    assert first.customer_id in calls

    # a re-run on another day (here: one asking for a bank ending a day earlier) keeps the bank it finds
    again = run_demo(settings, customers=250, days=240, seed=5, end=yesterday, **paths)  # type: ignore[arg-type]
    assert any(line.startswith("ledger: 0 postings") for line in again.lines), again.lines
    assert again.lines[0] == first.lines[0]
    with pytest.raises(InvalidInput, match="already holds the demo bank"):
        run_demo(settings, customers=250, days=240, seed=6, **paths)  # type: ignore[arg-type]
