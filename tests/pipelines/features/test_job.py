"""`loyalty features`: the feature job writes the snapshot and the online table; its errors are one line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from pipelines.features.compute import compute_features
from pipelines.features.extract import extract
from pipelines.features.online import OnlineFeatures
from pipelines.features.snapshots import read_snapshot
from serving import cli_app as app
from tests.pipelines.conftest import CUTOFF, RULES


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
