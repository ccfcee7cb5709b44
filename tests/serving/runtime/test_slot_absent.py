"""No uplift champion is an expected state: one INFO line saying "not configured", never "load failed"."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from loyalty_core import Unavailable
from serving.runtime.slot_loaders import UPLIFT_ABSENT, uplift_slot
from serving.runtime.slots import NotConfigured, Slot


def _records(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "serving.runtime.slots"]


def test_not_configured_is_logged_once_at_info_and_still_refuses_callers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def load() -> tuple[str, str]:
        raise NotConfigured("no uplift champion: expected values use the propensity formula")

    slot = Slot("uplift model", load)
    with caplog.at_level(logging.DEBUG, logger="serving.runtime.slots"):
        assert slot.reload() is False
        assert slot.reload() is False
    assert _records(caplog) == [
        (
            "INFO",
            "uplift model: not configured (not available): no uplift champion: expected values use the "
            "propensity formula",
        ),
        (
            "DEBUG",
            "uplift model: not configured again: no uplift champion: expected values use the propensity "
            "formula",
        ),
    ]
    with pytest.raises(Unavailable, match="no uplift champion"):
        slot.get()


def test_the_service_without_an_uplift_champion_says_not_configured(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    slot = uplift_slot(f"sqlite:///{tmp_path / 'mlflow.db'}")
    with caplog.at_level(logging.INFO, logger="serving.runtime.slots"):
        assert slot.reload() is False
    assert _records(caplog) == [("INFO", f"uplift model: not configured (not available): {UPLIFT_ABSENT}")]
    assert not any("load failed" in r.getMessage() for r in caplog.records)
