"""One promotion mechanism: every model's decision is recorded the same way, whatever rule made it."""

from __future__ import annotations

from typing import Any

from models.registry import PROMOTION_TAG, Promotion, decide_uplift_promotion, record_promotion
from models.registry.promotion import mark_challenger


class FakeClient:
    """What ``record_promotion`` asks of an ``MlflowClient``."""

    def __init__(self) -> None:
        self.tags: dict[tuple[str, str, str], str] = {}
        self.aliases: dict[tuple[str, str], str] = {}

    def set_model_version_tag(self, name: str, version: str, key: str, value: Any) -> None:
        self.tags[(name, version, key)] = value

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self.aliases[(name, alias)] = version


def test_a_promoted_version_becomes_champion_with_its_reason() -> None:
    client = FakeClient()
    record_promotion(client, "loyalty-churn", "3", Promotion(True, "promoted (no champion yet)"))
    assert client.tags[("loyalty-churn", "3", PROMOTION_TAG)] == "promoted (no champion yet)"
    assert client.aliases[("loyalty-churn", "champion")] == "3"


def test_a_rejected_version_keeps_its_reason_and_moves_no_champion() -> None:
    client = FakeClient()
    decision = decide_uplift_promotion(0.01, 0.02, promote=True, champion_version="1", champion_qini=0.03)
    mark_challenger(client, "loyalty-offer-uplift", "2")
    record_promotion(client, "loyalty-offer-uplift", "2", decision)
    assert not decision.promote
    assert client.tags[("loyalty-offer-uplift", "2", PROMOTION_TAG)] == decision.reason
    assert client.aliases == {("loyalty-offer-uplift", "challenger"): "2"}


def test_a_decision_tags_its_run_the_same_way_for_every_model() -> None:
    assert Promotion(False, "not promoted (x)").run_tags() == {
        "promotion": "not promoted (x)",
        "promotion.decision": "rejected",
    }
    promote, reason = Promotion(True, "promoted (y)")
    assert promote
    assert reason == "promoted (y)"
