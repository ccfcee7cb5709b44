"""The launch verdict on hand-made logs whose policies' true values are known."""

from __future__ import annotations

import numpy as np
import pytest

from loyalty_core import InvalidInput
from models.evaluation.verdict import Method, compare_with_production

# three actions, logged uniformly at random; action 0 pays 10 with probability 0.6, action 1 with 0.5,
# action 2 with 0.3: always-0 is worth 6 per decision, always-1 5, always-2 3
PAY = np.array([0.6, 0.5, 0.3])


def uniform_log(n: int = 6000, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, 3, n)
    rewards = 10.0 * (rng.random(n) < PAY[actions])
    return rewards, np.full(n, 1 / 3), actions


def always(action: int, n: int) -> np.ndarray:
    target = np.zeros((n, 3))
    target[:, action] = 1.0
    return target


def mixed(weights: list[float], n: int) -> np.ndarray:
    return np.tile(np.asarray(weights), (n, 1))


@pytest.mark.parametrize("method", ["ips", "snips", "dr"])
def test_a_clearly_better_policy_is_launched(method: Method) -> None:
    rewards, logged, actions = uniform_log()
    n = len(rewards)
    q = np.tile(10.0 * PAY, (n, 1)) + 0.5  # a reward model that is a little off
    verdict = compare_with_production(
        rewards, logged, actions, always(0, n), always(2, n), q=q if method == "dr" else None, method=method
    )
    assert verdict.outcome == "launch"
    assert verdict.launch
    assert verdict.low > 0
    assert verdict.low < 3.0 < verdict.high  # the true gain, 6 - 3, is inside the interval
    assert verdict.text.startswith("launch: better than production, +")


@pytest.mark.parametrize("method", ["ips", "snips", "dr"])
def test_the_same_policy_cannot_be_told_apart(method: Method) -> None:
    rewards, logged, actions = uniform_log()
    n = len(rewards)
    q = np.tile(10.0 * PAY, (n, 1))
    production = mixed([0.2, 0.5, 0.3], n)
    verdict = compare_with_production(
        rewards,
        logged,
        actions,
        production.copy(),
        production,
        q=q if method == "dr" else None,
        method=method,
    )
    assert verdict.outcome == "cannot tell"
    assert not verdict.launch
    assert verdict.difference == 0.0
    assert verdict.text.startswith("do not launch: cannot be told apart from production")


def test_a_worse_policy_is_not_launched() -> None:
    rewards, logged, actions = uniform_log()
    n = len(rewards)
    verdict = compare_with_production(rewards, logged, actions, always(2, n), always(0, n))
    assert verdict.outcome == "worse"
    assert not verdict.launch
    assert verdict.high < 0
    assert verdict.text.startswith("do not launch: worse than production")


def test_uniform_random_is_not_launched_against_a_production_policy_it_equals_in_value() -> None:
    """The old notebook's failure: uniform random called "worth a live test". Here production (always
    action 1, worth 5) and uniform random (worth (6 + 5 + 3) / 3 = 4.67) are close: it cannot be shown
    better, however its own interval compares with the log's mean reward."""
    rewards, logged, actions = uniform_log()
    n = len(rewards)
    verdict = compare_with_production(rewards, logged, actions, mixed([1 / 3, 1 / 3, 1 / 3], n), always(1, n))
    assert not verdict.launch
    assert verdict.outcome in ("cannot tell", "worse")


def test_a_small_gain_on_a_small_log_cannot_be_told() -> None:
    """0.6 vs 0.5 per decision is a true gain of 1, but 300 decisions cannot show it."""
    rewards, logged, actions = uniform_log(n=300, seed=4)
    verdict = compare_with_production(rewards, logged, actions, always(0, 300), always(1, 300), min_ess=50)
    assert verdict.outcome == "cannot tell"
    assert verdict.low < 0 < verdict.high


def test_the_paired_interval_is_narrower_than_two_separate_ones() -> None:
    """Policies that agree on most rows share their noise: the difference is known far better than either
    value, which is why the verdict compares them row by row."""
    rewards, logged, actions = uniform_log()
    n = len(rewards)
    production = mixed([0.1, 0.8, 0.1], n)
    candidate = mixed([0.2, 0.7, 0.1], n)
    verdict = compare_with_production(rewards, logged, actions, candidate, production, method="ips")
    w = 3 * production[np.arange(n), actions]
    separate = float((w * rewards).std(ddof=1) / np.sqrt(n))
    assert verdict.se < separate / 3


def test_the_bootstrap_agrees_with_the_delta_method() -> None:
    rewards, logged, actions = uniform_log()
    n = len(rewards)
    analytic = compare_with_production(rewards, logged, actions, always(0, n), always(1, n), method="snips")
    boot = compare_with_production(
        rewards,
        logged,
        actions,
        always(0, n),
        always(1, n),
        se="bootstrap",
        replicates=400,
        rng=np.random.default_rng(0),
        method="snips",
    )
    assert boot.se == pytest.approx(analytic.se, rel=0.15)
    assert boot.se_method == "bootstrap:400 (paired)"


def test_too_few_effective_decisions_is_no_launch_whatever_the_estimate() -> None:
    rewards, _, actions = uniform_log(n=600)
    # logged with probabilities from 1 in 10,000 to 1: a few rows carry huge weights
    logged = 10.0 ** np.random.default_rng(2).uniform(-4, 0, 600)
    verdict = compare_with_production(rewards, logged, actions, always(0, 600), always(2, 600))
    assert verdict.ess < 100
    assert verdict.outcome == "too few decisions"
    assert not verdict.launch


def test_dr_needs_the_reward_model() -> None:
    rewards, logged, actions = uniform_log(n=50)
    with pytest.raises(InvalidInput, match="reward model"):
        compare_with_production(rewards, logged, actions, always(0, 50), always(1, 50), method="dr")
