"""No uplift or offer champion is an expected state: one INFO line saying "not configured", never "load
failed", a status ``absent`` with the reason, and a service that stays healthy serving what it has."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from loyalty_core import Unavailable
from serving.runtime.served_state import health_of, served_parts
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


def test_a_slot_not_configured_reads_absent_with_why_until_it_loads() -> None:
    champion: list[str] = []

    def load() -> tuple[str, str]:
        if not champion:
            raise NotConfigured("no offer champion: the service scores churn only")
        return "model", champion[0]

    slot = Slot("offer model", load)
    slot.reload()
    assert slot.status()["status"] == "absent"
    assert slot.status()["error"] == "no offer champion: the service scores churn only"
    assert slot.absent_reason() == "no offer champion: the service scores churn only"
    champion.append("3")
    assert slot.reload() is True
    assert (slot.status()["status"], slot.status()["version"], slot.absent_reason()) == ("ok", "3", None)


def _statuses(**states: str) -> dict[str, dict[str, Any]]:
    names = ("churn", "offers", "uplift", "features", "catalogue", "multiplier")
    out = {}
    for name in names:
        state = states.get(name, "ok")
        out[name] = {"status": state, "version": "1" if state == "ok" else None}
    return out


@pytest.mark.parametrize(
    ("states", "healthy", "serves"),
    [
        ({}, True, ["churn", "offers", "uplift"]),
        ({"uplift": "absent"}, True, ["churn", "offers"]),
        ({"offers": "absent", "catalogue": "absent", "uplift": "absent"}, True, ["churn"]),
        ({"offers": "absent"}, True, ["churn"]),  # offers in the ledger, no offer model yet
        ({"offers": "degraded"}, False, ["churn"]),  # a champion that fails to load is a fault
        ({"catalogue": "absent"}, False, ["churn"]),  # an offer champion with nothing to rank
        ({"churn": "degraded", "offers": "absent"}, False, []),
    ],
)
def test_health_and_what_is_served_follow_the_slots(
    states: dict[str, str], healthy: bool, serves: list[str]
) -> None:
    statuses = _statuses(**states)
    assert health_of(statuses) is healthy
    assert served_parts(statuses) == serves
