"""Incremental off-policy value on a synthetic randomised campaign whose causal effects are known exactly.

Each customer has, per offer, a probability of meeting its condition without the offer (``base``), with it
(``meet``) and of completing it when sent (``complete``). The true incremental value of a policy is
``mean_i sum_a pi(a | x_i) (value_a (meet - base) - cost_a complete)``. "Sure things" (high base, no effect)
are where a completion-reward evaluation goes wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from loyalty_core import InvalidInput
from models.evaluation.incremental import (
    IncrementalLog,
    caused_by_first_offers,
    compare_incremental,
    evaluate_incremental,
    incremental_log,
    true_incremental_value,
)
from models.evaluation.ope import OfferLog, evaluate, expected_reward

VALUE = np.array([400.0, 300.0])
COST = np.array([100.0, 50.0])


@dataclass
class Campaign:
    base: np.ndarray  # (n, offers) P(meet | nothing sent)
    meet: np.ndarray  # (n, offers) P(meet | sent)
    complete: np.ndarray  # (n, offers) P(complete | sent) <= meet
    logging: np.ndarray  # (n, offers + 1)

    @property
    def incremental_value(self) -> np.ndarray:
        return VALUE * (self.meet - self.base) - COST * self.complete

    @property
    def completion_reward(self) -> np.ndarray:
        return expected_reward(self.complete, VALUE, COST)


def campaign(n: int, seed: int = 0) -> Campaign:
    rng = np.random.default_rng(seed)
    sure = rng.random(n) < 0.4  # buy anyway, the offer changes nothing
    base = np.where(sure[:, None], 0.8, 0.05) * np.ones((n, 2))
    lift = np.where(sure[:, None], 0.0, rng.uniform(0.0, 0.5, (n, 2)))
    meet = base + (1 - base) * lift
    complete = 0.9 * meet
    logging = np.tile([0.4, 0.4, 0.2], (n, 1))
    return Campaign(base, meet, complete, logging)


def draw(c: Campaign, seed: int) -> IncrementalLog:
    """One realisation of the campaign: actions from the logging policy, outcomes from the truth."""
    rng = np.random.default_rng(seed)
    n, m = c.base.shape
    u = rng.random(n)
    action = (u[:, None] > np.cumsum(c.logging, axis=1)).sum(axis=1)
    rows = np.arange(n)
    treated = action < m
    a = np.minimum(action, m - 1)
    noise = rng.random(n)
    met_own = noise < c.meet[rows, a]
    completed = treated & (noise < c.complete[rows, a])  # completing implies meeting
    met = np.full((n, m), np.nan)
    met[rows[treated], a[treated]] = met_own[treated]
    control = ~treated
    met[control] = rng.random((int(control.sum()), m)) < c.base[control]
    log = OfferLog(
        decision_id=np.array([f"d{i}" for i in range(n)]),
        customer_id=np.array([f"c{i}" for i in range(n)]),
        made_at=pd.DatetimeIndex(pd.to_datetime(np.zeros(n), utc=True)),
        action=action.astype(np.int64),
        logged_prob=c.logging[rows, action],
        completed=completed,
        reward=np.where(completed, (VALUE - COST)[a], 0.0),
        offer_ids=("o1", "o2"),
        value=VALUE,
        cost=COST,
    )
    return IncrementalLog(log=log, met=met)


def greedy(scores: np.ndarray) -> np.ndarray:
    """Send each customer the best-scoring offer when its score is positive, else nothing."""
    n, m = scores.shape
    best = scores.argmax(axis=1)
    out = np.zeros((n, m + 1))
    positive = scores[np.arange(n), best] > 0
    out[np.flatnonzero(positive), best[positive]] = 1.0
    out[~positive, m] = 1.0
    return out


def test_estimates_land_on_the_true_incremental_value() -> None:
    c = campaign(60_000)
    policy = greedy(c.incremental_value)
    truth = true_incremental_value(policy, c.incremental_value)
    q1 = VALUE * c.meet - COST * c.complete
    q0 = VALUE * c.base
    est = evaluate_incremental(draw(c, seed=1), policy, q_treated=q1, q_control=q0)
    assert set(est) == {"ips", "snips", "dr"}
    for e in est.values():
        assert abs(e.value - truth) < 4 * e.se, (e.method, e.value, truth, e.se)
        assert e.se < 0.1 * abs(truth)


def test_sure_things_win_on_completion_reward_and_lose_on_incremental_value() -> None:
    """The reason for this module: the completion reward pays for customers who would buy anyway."""
    c = campaign(60_000)
    sure_things = greedy(c.completion_reward)  # what propensity x (value - cost) targets
    causal = greedy(c.incremental_value)
    assert true_incremental_value(causal, c.incremental_value) > true_incremental_value(
        sure_things, c.incremental_value
    )
    ilog = draw(c, seed=2)
    log = ilog.log
    old = {p: evaluate(log.reward, log.logged_prob, log.action, t)["snips"].value for p, t in
           (("sure", sure_things), ("causal", causal))}  # fmt: skip
    new = {
        p: evaluate_incremental(ilog, t)["snips"].value
        for p, t in (("sure", sure_things), ("causal", causal))
    }
    assert old["sure"] > old["causal"]
    assert new["causal"] > new["sure"] + 10.0


def test_sending_nothing_is_worth_nothing() -> None:
    c = campaign(5_000)
    nothing = np.tile([0.0, 0.0, 1.0], (5_000, 1))
    est = evaluate_incremental(draw(c, seed=3), nothing)
    assert est["ips"].value == 0.0
    assert est["snips"].value == 0.0


def test_labels_join_by_decision_and_offer() -> None:
    ilog = draw(campaign(10), seed=4)
    rows, cols = np.nonzero(~np.isnan(ilog.met))
    labels = pd.DataFrame(
        {
            "decision_id": [*ilog.log.decision_id[rows], "zz"],
            "offer_id": [*np.array(ilog.log.offer_ids)[cols], "o1"],
            "met": [*ilog.met[rows, cols].astype(int), 1],
        }
    )
    joined = incremental_log(ilog.log, labels)
    np.testing.assert_array_equal(joined.met, ilog.met)  # the unknown decision "zz" is ignored
    treated = int(np.flatnonzero(ilog.treated)[0])
    without = labels[labels["decision_id"] != ilog.log.decision_id[treated]]
    with pytest.raises(InvalidInput, match="only randomised campaign decisions have labels"):
        incremental_log(ilog.log, without)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda t: t * 2, "not a probability distribution"),
        (lambda t: t[:, :2], r"must be \(decisions, actions\)"),
    ],
)
def test_a_bad_target_is_refused(change: Callable[[np.ndarray], np.ndarray], reason: str) -> None:
    c = campaign(100)
    with pytest.raises(InvalidInput, match=reason):
        evaluate_incremental(draw(c, seed=5), change(c.logging))


def test_bad_labels_are_refused() -> None:
    log = draw(campaign(10), seed=6).log
    with pytest.raises(InvalidInput, match="lack column"):
        incremental_log(log, pd.DataFrame({"decision_id": ["d1"], "offer_id": ["o1"]}))
    with pytest.raises(InvalidInput, match="0 or 1"):
        incremental_log(log, pd.DataFrame({"decision_id": ["d1"], "offer_id": ["o1"], "met": [2]}))


def test_the_launch_verdict_judges_by_what_a_policy_causes() -> None:
    c = campaign(60_000)
    sure_things, causal = greedy(c.completion_reward), greedy(c.incremental_value)
    ilog = draw(c, seed=7)
    q1, q0 = VALUE * c.meet - COST * c.complete, VALUE * c.base
    better = compare_incremental(ilog, causal, sure_things, q_treated=q1, q_control=q0)
    assert better.method == "dr"
    assert better.launch, better.text
    worse = compare_incremental(ilog, sure_things, causal)
    assert worse.method == "snips"
    assert worse.outcome == "worse", worse.text
    same = compare_incremental(ilog, causal, causal)
    assert same.outcome == "cannot tell"
    assert same.difference == 0.0


def test_first_offers_are_judged_by_what_they_cause_against_the_best() -> None:
    truth = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "b", "c", "c"],
            "offer_id": ["o1", "o2"] * 3,
            "incremental_value": [10.0, -5.0, -2.0, -3.0, 1.0, 4.0],
        }
    )
    chosen = pd.DataFrame({"customer_id": ["a", "b", "c"], "offer_id": ["o2", None, "o2"]})
    got = caused_by_first_offers(chosen, truth)
    assert got["served"] == pytest.approx((-5.0 + 0.0 + 4.0) / 3)
    assert got["best"] == pytest.approx((10.0 + 0.0 + 4.0) / 3)  # b: nothing is worth sending
    assert got["sent"] == 2
    with pytest.raises(InvalidInput, match="not in the truth"):
        caused_by_first_offers(pd.DataFrame({"customer_id": ["z"], "offer_id": ["o1"]}), truth)


def test_a_candidate_sending_an_offer_no_label_measures_is_refused() -> None:
    """A control decision's row says nothing of an offer outside its campaign: counting it as "would not
    have met the condition" would credit the candidate with effects nobody measured."""
    ilog = draw(campaign(200), seed=8)
    control = int(np.flatnonzero(~ilog.treated)[0])
    met = ilog.met.copy()
    met[control, 1] = np.nan
    partial = IncrementalLog(log=ilog.log, met=met)
    sends_o2 = np.tile([0.0, 1.0, 0.0], (200, 1))
    with pytest.raises(InvalidInput, match="restrict the candidate to the arms"):
        evaluate_incremental(partial, sends_o2)
    sends_o1 = np.tile([1.0, 0.0, 0.0], (200, 1))
    assert np.isfinite(evaluate_incremental(partial, sends_o1)["ips"].value)


def test_customer_ids_match_whatever_their_type_in_the_truth() -> None:
    truth = pd.DataFrame({"customer_id": [1, 2], "offer_id": ["o1", "o1"], "incremental_value": [5.0, 1.0]})
    got = caused_by_first_offers(pd.DataFrame({"customer_id": ["1", "2"], "offer_id": ["o1", None]}), truth)
    assert got["served"] == pytest.approx(2.5)
    assert got["best"] == pytest.approx(3.0)
