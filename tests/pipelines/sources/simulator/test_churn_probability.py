"""The true churn probability matches the labels it claims and moves the right way."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from loyalty_core import (
    InvalidInput,
)
from pipelines.sources.simulator.churn_probability import ChurnTraits, churn_label_probability
from pipelines.sources.simulator.config import DAY, NEVER, SimConfig, make_calendar
from pipelines.sources.simulator.truth import churn_truth
from tests.pipelines.sources.simulator.conftest import START, History


def test_true_churn_probability_matches_the_labels_it_claims(history: History) -> None:
    """``churn_truth`` against the churn labels of the history itself (no purchase or bill payment in the
    window): 1 for every customer gone before the cutoff, and for the others the expected number of
    churners equals the observed one within 4 standard errors (given the latent state, labels are
    independent Bernoulli draws), over three cutoffs. The truth also ranks them almost perfectly."""
    from sklearn.metrics import roc_auc_score

    qualifying = history.txns[history.txns["type"].isin(["purchase", "bill_payment"])]
    joined = pd.to_datetime(history.customers["joined_on"]).dt.tz_localize("UTC")
    expected, observed, variance = 0.0, 0, 0.0
    for day in (30, 60, 90):
        cutoff = START + pd.Timedelta(days=day)
        truth = churn_truth(history.path, cutoff.to_pydatetime(), 60)
        assert truth["customer_id"].tolist() == history.customers["customer_id"].tolist()
        assert truth["p_churn"].between(0, 1).all()
        known = truth[(joined < cutoff).to_numpy()].merge(history.truth[["customer_id", "churn_at"]])
        at = qualifying["occurred_at"]
        window = qualifying[(at >= cutoff) & (at < cutoff + pd.Timedelta(days=60))]
        y = (~known["customer_id"].isin(window["customer_id"])).to_numpy()
        gone = (known["churn_at"] <= cutoff).to_numpy()
        assert gone.sum() > 20
        assert (known.loc[gone, "p_churn"] == 1.0).all()
        assert y[gone].all()
        p = known.loc[~gone, "p_churn"].to_numpy()
        expected += float(p.sum())
        observed += int(y[~gone].sum())
        variance += float((p * (1 - p)).sum())
        assert roc_auc_score(y, known["p_churn"]) > 0.99
    assert observed > 20
    assert abs(observed - expected) <= 4 * math.sqrt(variance), (observed, expected, math.sqrt(variance))


def test_true_churn_probability_moves_the_right_way() -> None:
    """One customer at a time, each differing from a base customer in one trait, over a 60-day window."""
    cal = make_calendar(SimConfig(customers=1, days=200, seed=0))
    cutoff = 100
    base = {
        "activity_rate": 0.05,
        "transfer_share": 0.2,
        "salary_day": 10,
        "salary_boost": 0.5,
        "bill_day": 12,
        "bill_regularity": 0.3,
        "has_bill": (True, False, False),
        "pays_taxes": False,
        "churn_hazard": 0.002,
        "churn_decay": False,
        "decay_days": 30.0,
        "churn_at": NEVER,
    }
    at = (cutoff + 10) * DAY  # a churn drawn for 10 days after the cutoff
    variants = {
        "base": {},
        "gone": {"churn_at": (cutoff - 5) * DAY},
        "gone at the cutoff": {"churn_at": cutoff * DAY},
        "busier": {"activity_rate": 0.2},
        "riskier": {"churn_hazard": 0.01},
        "fading": {"churn_decay": True, "churn_at": at},  # fading began 20 days before the cutoff
        "decays later": {"churn_decay": True},  # any churn to come fades first: less sudden silence
        "stops on a drawn day": {"churn_at": at},  # a drawn churn that does not fade is not known yet
        "pays bills": {"bill_regularity": 0.95, "has_bill": (True, True, True)},
        "nothing to pay with": {"activity_rate": 0.0, "has_bill": (False, False, False)},
    }
    rows = [{**base, **v} for v in variants.values()]
    traits = ChurnTraits(
        **{k: np.array([r[k] for r in rows]) for k in base if k != "has_bill"},
        has_bill=np.array([r["has_bill"] for r in rows]),
    )
    p = dict(zip(variants, churn_label_probability(cal, traits, cutoff, 60), strict=True))
    assert p["gone"] == p["gone at the cutoff"] == p["nothing to pay with"] == 1.0
    assert 0 < p["busier"] < p["base"] < p["riskier"] < 1
    assert p["base"] < p["fading"] < 1
    assert p["decays later"] < p["base"]
    assert p["stops on a drawn day"] == p["base"]
    assert p["pays bills"] < p["base"] / 5
    # a longer window can only hold more activity
    longer = churn_label_probability(cal, traits, cutoff, 90)
    assert (longer <= churn_label_probability(cal, traits, cutoff, 60) + 1e-12).all()
    # a campaign that multiplied the hazard (a sleeping dog who saw an offer) until the next one
    one = ChurnTraits(**{f: getattr(traits, f)[:1] for f in ChurnTraits.__slots__})
    annoyed = churn_label_probability(
        cal,
        one,
        cutoff,
        60,
        hazard_factor=np.array([2.5]),
        factor_from=np.array([(cutoff - 3) * DAY]),
        factor_until=np.array([(cutoff + 25) * DAY]),
    )
    assert annoyed[0] > p["base"]
    with pytest.raises(InvalidInput, match="not within"):
        churn_label_probability(cal, traits, 150, 60)
