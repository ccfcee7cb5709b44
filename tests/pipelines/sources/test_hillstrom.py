"""The Hillstrom experiment as uplift frames: arms against the control third, with their probabilities."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from loyalty_core import InvalidInput
from pipelines.sources.hillstrom import read_hillstrom, uplift_frame

HILLSTROM = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "hillstrom" / "hillstrom.csv"


@pytest.fixture(scope="module")
def raw():  # type: ignore[no-untyped-def]
    if not HILLSTROM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{HILLSTROM} is missing")
        pytest.skip(
            f"the public Hillstrom data is not at {HILLSTROM.resolve()}: docs/data.md says where to get it"
        )
    return read_hillstrom(HILLSTROM)


def test_each_arm_is_paired_with_the_control_third(raw) -> None:  # type: ignore[no-untyped-def]
    women = uplift_frame(raw, "womens")
    assert len(women) == int((raw["segment"] != "Mens E-Mail").sum())
    assert women["treated"].sum() == int((raw["segment"] == "Womens E-Mail").sum())
    assert set(women["probability"]) == {0.5}
    both = uplift_frame(raw, "any")
    assert len(both) == len(raw) == 64_000
    assert both.loc[both["treated"] == 1, "probability"].iloc[0] == pytest.approx(2 / 3)
    assert both.select_dtypes("number").shape[1] == both.shape[1]  # every column numeric, ready for a model


def test_bad_arm_and_missing_columns_are_named(raw, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="arm must be one of"):
        uplift_frame(raw, "kids")
    broken = tmp_path / "h.csv"
    raw.drop(columns=["visit"]).to_csv(broken, index=False)
    with pytest.raises(InvalidInput, match="missing column"):
        read_hillstrom(broken)
