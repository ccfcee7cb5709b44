"""LOYALTY_POLICY and LOYALTY_SHADOW_POLICY: what each spelling serves, and mistakes that stop start-up."""

from __future__ import annotations

import pytest

from loyalty_core import ConfigurationError
from models import EpsilonGreedy, ThompsonSampling
from serving.runtime.served_state import parse_policy


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("epsilon_greedy", EpsilonGreedy(0.07)),
        ("epsilon_greedy:0.2", EpsilonGreedy(0.2)),
        (" Greedy ", EpsilonGreedy(0.0)),
        ("thompson", ThompsonSampling()),
        ("thompson:beta", ThompsonSampling(posterior="beta")),
        ("none", None),
        ("", None),
    ],
)
def test_policy_spellings(spec: str, expected: object) -> None:
    assert parse_policy(spec, epsilon=0.07, setting="LOYALTY_POLICY") == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("epsilon_greedy:1.5", "the share must be in \\[0, 1\\]"),
        ("epsilon_greedy:lots", "the share must be in \\[0, 1\\]"),
        ("ucb", "is not one of epsilon_greedy"),
    ],
)
def test_policy_mistakes_name_the_setting(spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=f"LOYALTY_SHADOW_POLICY '{spec}'.*{message}"):
        parse_policy(spec, epsilon=0.05, setting="LOYALTY_SHADOW_POLICY")
