"""The bank-history simulator: the output contract, determinism, the ledger's rules, the truth it claims."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from loyalty_core import (
    DEFAULT_RULES,
    InvalidInput,
    OfferEffect,
    compute_earning,
    fraud_reason_for_earning,
    load_rules,
    note_posting,
)
from pipelines.sources.history import ingest_history
from pipelines.sources.simulator.churn_probability import ChurnTraits, churn_label_probability
from pipelines.sources.simulator.config import DAY, NEVER, SimConfig, make_calendar
from pipelines.sources.simulator.transactions import Rows, within_ledger_limits
from pipelines.sources.simulator.truth import churn_truth
from pipelines.sources.simulator.writer import simulate
from serving import cli_app as app

RULES = load_rules(DEFAULT_RULES)
START = pd.Timestamp("2025-01-01", tz="UTC")
MONEY = pa.decimal128(18, 2)
TS = pa.timestamp("us", tz="UTC")
TEXT = pa.string()
TEXTS = pa.list_(pa.string())
F64 = pa.float64()
PURCHASE_CATEGORIES = (
    "groceries",
    "restaurants",
    "online",
    "pharmacy",
    "fuel",
    "clothing",
    "entertainment",
    "electronics",
    "travel",
)
CONTRACT = {
    "customers.parquet": {
        "customer_id": TEXT,
        "joined_on": pa.date32(),
        "birth_year": pa.int16(),
        "gender": TEXT,
        "region": TEXT,
        "income_band": TEXT,
        "income": MONEY,
        "channel": TEXT,
    },
    "offers.parquet": {
        "offer_id": TEXT,
        "name": TEXT,
        "kind": TEXT,
        "multiplier": pa.decimal128(10, 4),
        "bonus_points": pa.int32(),
        "threshold": MONEY,
        "categories": TEXTS,
        "txn_types": TEXTS,
        "channels": TEXTS,
        "duration_days": pa.int32(),
        "cost": MONEY,
        "value": MONEY,
        "min_tier": TEXT,
    },
    "decisions.parquet": {
        "decision_id": TEXT,
        "customer_id": TEXT,
        "made_at": TS,
        "policy": TEXT,
        "offer_id": TEXT,
        "probability": F64,
        "channel": TEXT,
    },
    "offer_events.parquet": {
        "event_id": TEXT,
        "customer_id": TEXT,
        "offer_id": TEXT,
        "event": TEXT,
        "occurred_at": TS,
        "channel": TEXT,
        "decision_id": TEXT,
    },
    "transactions.parquet": {
        "transaction_id": TEXT,
        "customer_id": TEXT,
        "occurred_at": TS,
        "type": TEXT,
        "amount": MONEY,
        "category": TEXT,
        "channel": TEXT,
        "currency": TEXT,
        "region": TEXT,
    },
    "truth/customers.parquet": {
        "customer_id": TEXT,
        "churn_at": TS,
        "churn_hazard": F64,
        "activity_rate": F64,
        "salary_day": pa.int16(),
        "bill_regularity": F64,
        **{f"taste_{c}": F64 for c in PURCHASE_CATEGORIES},
        "resp_multiplier": F64,
        "resp_bonus_points": F64,
        "resp_cashback": F64,
        "resp_informational": F64,
        "multiplier_sensitivity": F64,
        "segment": TEXT,
    },
    "truth/offer_effects.parquet": {
        "customer_id": TEXT,
        "offer_id": TEXT,
        "p_complete_treated": F64,
        "p_complete_control": F64,
        "uplift": F64,
        "expected_incremental_value": F64,
    },
}


class History:
    """One simulated directory, its frames read once."""

    def __init__(self, path: Path, days: int) -> None:
        self.path = path
        self.end = START + pd.Timedelta(days=days)
        self.manifest = json.loads((path / "manifest.json").read_text())

        def read(name: str) -> pd.DataFrame:
            return pq.read_table(path / name).to_pandas()

        self.customers = read("customers.parquet")
        self.offers = read("offers.parquet").set_index("offer_id")
        self.decisions = read("decisions.parquet")
        self.events = read("offer_events.parquet")
        self.txns = read("transactions.parquet")
        self.truth = read("truth/customers.parquet")
        self.effects = read("truth/offer_effects.parquet")
        self.duration = self.offers["duration_days"].astype(int)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    """Large enough for the statistical checks (about 1,000 offers sent per offer kind), still ~2 s."""
    out = tmp_path_factory.mktemp("sim") / "h"
    simulate(SimConfig(customers=1500, days=150, seed=11), out)
    return History(out, 150)


def file_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- contract and determinism -------------------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_history(tmp_path: Path) -> None:
    config = SimConfig(customers=300, days=120, seed=5)
    simulate(config, tmp_path / "a")
    simulate(config, tmp_path / "b")
    simulate(SimConfig(customers=300, days=120, seed=6), tmp_path / "c")
    a, b, c = (file_bytes(tmp_path / x) for x in "abc")
    assert set(a) == {*CONTRACT, "manifest.json", "truth/decisions.parquet"}
    assert a == b
    assert a["transactions.parquet"] != c["transactions.parquet"]
    assert a["truth/customers.parquet"] != c["truth/customers.parquet"]
    assert json.loads(a["manifest.json"])["seed"] == 5
    assert json.loads(c["manifest.json"])["seed"] == 6


def test_every_file_has_the_contract_schema(history: History) -> None:
    for name, columns in CONTRACT.items():
        schema = pq.read_schema(history.path / name)
        actual = {f.name: f.type for f in schema}
        for column, expected in columns.items():
            assert column in actual, f"{name} lacks {column}"
            assert actual[column] == expected, f"{name}.{column} is {actual[column]}, not {expected}"
    rows = history.manifest["rows"]
    for name in CONTRACT:
        assert rows[name] == pq.ParquetFile(history.path / name).metadata.num_rows
    assert history.manifest["customers"] == 1500
    assert history.manifest["start"] == "2025-01-01T00:00:00+00:00"
    assert history.manifest["end"] == "2025-05-31T00:00:00+00:00"


def test_customers_and_offers_are_plausible(history: History) -> None:
    c = history.customers
    assert c["customer_id"].tolist() == [f"C{i:07d}" for i in range(1, 1501)]
    assert set(c["gender"]) == {"F", "M"}
    assert set(c["income_band"]) == {"low", "middle", "upper_middle", "high"}
    assert set(c["channel"]) == {"app", "web", "branch", "pos"}
    assert c["region"].value_counts().index[0] == "Moscow"
    assert 8 <= c["region"].nunique() <= 15
    assert (c["income"].map(Decimal) > 0).all()
    assert ((2025 - c["birth_year"]).between(18, 85)).all()
    kinds = history.offers["kind"]
    assert 8 <= len(kinds) <= 12
    assert set(kinds) == {"multiplier", "bonus_points", "cashback", "informational"}
    threshold_kinds = kinds.isin(["bonus_points", "cashback"])
    assert history.offers.loc[threshold_kinds, "threshold"].notna().all()
    assert (history.offers.loc[kinds != "multiplier", "multiplier"] == Decimal(1)).all()


# --- transactions ------------------------------------------------------------------------------------------


def test_transactions_are_sorted_unique_and_well_formed(history: History) -> None:
    t = history.txns
    assert len(t) > 50_000
    assert t["transaction_id"].is_unique
    assert t["occurred_at"].is_monotonic_increasing
    same_time = t["occurred_at"].eq(t["occurred_at"].shift())
    assert (t["transaction_id"][same_time] > t["transaction_id"].shift()[same_time]).all()
    amounts = t["amount"].map(Decimal)
    assert (amounts > 0).all()
    assert (amounts < Decimal(5_000_000)).all()
    assert all(a == a.quantize(Decimal("0.01")) for a in amounts)
    assert t["occurred_at"].min() >= START
    assert t["occurred_at"].max() < history.end
    assert set(t["type"]) == {"purchase", "bill_payment", "transfer"}
    assert set(t["channel"]) <= {"app", "web", "branch", "pos"}
    assert set(t["currency"]) == {"RUB"}
    by_type = t.groupby("type")["category"].agg(set)
    assert by_type["purchase"] <= set(PURCHASE_CATEGORIES)
    assert by_type["bill_payment"] <= {"utilities", "mobile", "internet", "taxes"}
    assert by_type["transfer"] == {"p2p"}
    # Realistic rhythms: 0.3 to 1.5 transactions a day, busier Friday and Saturday than Sunday.
    per_day = len(t) / (1500 * 150)
    assert 0.3 <= per_day <= 1.5
    weekday = t["occurred_at"].dt.day_of_week.value_counts()
    assert weekday[4] > weekday[6]
    assert weekday[5] > weekday[6]


def test_no_transaction_after_churn_or_before_joining(history: History) -> None:
    t = history.txns.merge(history.truth[["customer_id", "churn_at"]], on="customer_id")
    churned = t["churn_at"].notna()
    assert churned.any()
    assert (t.loc[churned, "occurred_at"] < t.loc[churned, "churn_at"]).all()
    joined = t["customer_id"].map(history.customers.set_index("customer_id")["joined_on"])
    assert (t["occurred_at"].dt.date >= joined).all()
    churn = history.truth["churn_at"].dropna()
    assert ((churn >= START) & (churn < history.end)).all()


def test_no_transaction_would_be_held_by_the_ledger(history: History) -> None:
    """Replay each customer's transactions through the ledger's own fraud check (velocity, unusual amount)."""
    limits = RULES.fraud
    t = history.txns.sort_values(["customer_id", "occurred_at", "transaction_id"], kind="stable")
    seconds = t["occurred_at"].astype("int64").to_numpy() // 1_000_000
    customer = t["customer_id"].to_numpy()
    # Velocity, directly: the 31st transaction of a customer never falls within an hour of the 1st.
    m = limits.velocity_max
    same = customer[m:] == customer[:-m]
    assert (seconds[m:][same] - seconds[:-m][same] >= limits.velocity_window.total_seconds()).all()
    recent: list[int] = []
    count, total, current = 0, Decimal(0), None
    for cid, at, amount in zip(customer, t["occurred_at"], t["amount"], strict=True):
        if cid != current:
            recent, count, total, current = [], 0, Decimal(0), cid
        when = at.to_pydatetime()
        reason = fraud_reason_for_earning(
            limits, amount=amount, occurred_at=when, recent_times=recent, txn_count=count, amount_sum=total
        )
        assert reason is None, f"{cid} at {when}: {reason}"
        note_posting(recent, when, limits)
        count, total = count + 1, total + amount


def test_bursts_and_outliers_are_brought_within_the_ledger_limits() -> None:
    """A burst of 45 transactions in 8 minutes and a 1,000,000 RUB outlier after small ones: after
    ``within_ledger_limits`` the ledger's own check lets every remaining transaction through."""
    burst_t = np.arange(45) * 10
    small_t = 10_000 + np.arange(13) * 600
    c = np.concatenate([np.zeros(45, dtype=np.int64), np.ones(13, dtype=np.int64)])
    t = np.concatenate([burst_t, small_t])
    cents = np.concatenate([np.full(45, 50_000), np.full(12, 10_000), [100_000_000]])
    zeros = np.zeros(len(c), dtype=np.int64)
    rows = Rows(c=c, t=t, type=zeros, cat=zeros, ch=zeros, reg=zeros, cents=cents, inc=zeros - 1)
    kept = within_ledger_limits(rows, RULES.fraud)
    assert (kept.c == 0).sum() == RULES.fraud.velocity_max  # the 31st and later within the hour are dropped
    assert kept.cents[-1] < 50 * 100 * 100
    assert kept.cents[-1] > 0
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    for customer in (0, 1):
        recent: list[int] = []
        count, total = 0, Decimal(0)
        for at, amount in zip(kept.t[kept.c == customer], kept.cents[kept.c == customer], strict=True):
            when, money = start + dt.timedelta(seconds=int(at)), Decimal(int(amount)) / 100
            reason = fraud_reason_for_earning(
                RULES.fraud,
                amount=money,
                occurred_at=when,
                recent_times=recent,
                txn_count=count,
                amount_sum=total,
            )
            assert reason is None
            note_posting(recent, when, RULES.fraud)
            count, total = count + 1, total + money


# --- campaigns and the offer funnel ------------------------------------------------------------------------


def test_funnel_order_and_validity_windows(history: History) -> None:
    e = history.events
    assert e["event_id"].is_unique
    assert e["occurred_at"].is_monotonic_increasing
    assert not e.duplicated(["decision_id", "event"]).any()
    wide = e.pivot(index="decision_id", columns="event", values="occurred_at")
    offer = e.drop_duplicates("decision_id").set_index("decision_id")["offer_id"]
    window = pd.to_timedelta(offer.map(history.duration), unit="D").reindex(wide.index)
    kind = offer.map(history.offers["kind"]).reindex(wide.index)
    assert wide["sent"].notna().all()
    viewed, activated, completed = wide["viewed"], wide["activated"], wide["completed"]
    assert (viewed.dropna() >= wide["sent"][viewed.notna()]).all()
    assert (viewed.dropna() < (wide["sent"] + window)[viewed.notna()]).all()
    assert viewed[activated.notna()].notna().all(), "activated without being viewed"
    assert (activated.dropna() >= viewed[activated.notna()]).all()
    assert (activated.dropna() < (wide["sent"] + window)[activated.notna()]).all()
    assert activated[completed.notna()].notna().all(), "completed without being activated"
    # The ledger's window: from the activation, for the offer's duration.
    assert (completed.dropna() >= activated[completed.notna()]).all()
    assert (completed.dropna() < (activated + window)[completed.notna()]).all()
    assert wide.loc[kind == "informational", ["activated", "completed"]].isna().all().all()
    control = history.decisions.loc[history.decisions["offer_id"].isna(), "decision_id"]
    assert len(control)
    assert not e["decision_id"].isin(control).any()
    assert (
        e["offer_id"] == e["decision_id"].map(history.decisions.set_index("decision_id")["offer_id"])
    ).all()
    counts = e["event"].value_counts()
    assert counts["sent"] > counts["viewed"] > counts["activated"] > counts["completed"] > 0


def test_completions_are_what_the_ledger_rules_decide(history: History) -> None:
    """Recompute every completion with ``compute_earning`` over each activation's window and compare."""
    t = history.txns.sort_values(["occurred_at", "transaction_id"], kind="stable")
    by_customer = dict(iter(t.groupby("customer_id", sort=False)))  # a GroupBy has a .keys attribute
    acts = history.events[history.events["event"] == "activated"]
    expected: set[tuple[str, pd.Timestamp]] = set()
    for aid, a in enumerate(acts.itertuples()):
        offer = history.offers.loc[a.offer_id]
        effect = OfferEffect(
            activation_id=aid,
            kind=offer["kind"],
            multiplier=offer["multiplier"],
            bonus_points=int(offer["bonus_points"]),
            threshold=offer["threshold"],
            categories=frozenset(offer["categories"]) if offer["categories"] is not None else None,
            txn_types=frozenset(offer["txn_types"]) if offer["txn_types"] is not None else None,
            completed=False,
        )
        mine = by_customer.get(a.customer_id)
        if mine is None:
            continue
        until = a.occurred_at + pd.Timedelta(days=int(offer["duration_days"]))
        window = mine[(mine["occurred_at"] >= a.occurred_at) & (mine["occurred_at"] < until)]
        for txn in window.itertuples():
            earning = compute_earning(
                RULES,
                txn_type=txn.type,
                amount=txn.amount,
                category=txn.category,
                tier_spend=Decimal(0),
                offers=[effect],
            )
            if aid in earning.completed_activation_ids:
                expected.add((a.decision_id, txn.occurred_at))
                break
    done = history.events[history.events["event"] == "completed"]
    assert len(expected) > 100
    assert set(zip(done["decision_id"], done["occurred_at"], strict=True)) == expected


def test_assignment_probabilities_are_the_ones_used(history: History) -> None:
    """Logged probabilities are the campaign's per-channel arm probabilities, and arms come up that often."""
    d = history.decisions
    campaigns = {c["policy"]: c for c in history.manifest["campaigns"]}
    assert len(campaigns) == 5
    assert set(d["policy"]) == set(campaigns)
    distinct: set[float] = set()
    for policy, camp in campaigns.items():
        mine = d[d["policy"] == policy]
        arms = {a["offer_id"]: a["probability"] for a in camp["arms"]}
        assert len(mine) == camp["customers"]
        assert mine["customer_id"].is_unique
        for channel in ("app", "web", "branch", "pos"):
            assert math.isclose(sum(p[channel] for p in arms.values()), 1.0)
        logged = [
            arms[o][ch]
            for o, ch in zip(mine["offer_id"].replace({np.nan: None}), mine["channel"], strict=True)
        ]
        assert np.array_equal(mine["probability"].to_numpy(), np.array(logged))
        for offer_id, by_channel in arms.items():
            p = mine["channel"].map(by_channel).to_numpy()
            chosen = (mine["offer_id"] == offer_id) if offer_id else mine["offer_id"].isna()
            sd = math.sqrt(float((p * (1 - p)).sum()))
            assert abs(chosen.sum() - p.sum()) <= 4.5 * sd + 1, (policy, offer_id, chosen.sum(), p.sum())
            distinct.update(by_channel.values())
    assert len(distinct) > 20  # probabilities vary across campaigns, arms and channel groups
    assert d["offer_id"].isna().mean() == pytest.approx(0.25, abs=0.1)


def _fits(history: History, made: pd.Series, days: pd.Series) -> pd.Series:
    """Decisions whose whole completion horizon (send + activation + validity) ends inside the history."""
    return made + pd.to_timedelta(2 * days + 1, unit="D") <= history.end


def test_completion_rates_match_the_truth(history: History) -> None:
    """Per offer kind, completed / sent equals the mean true p_complete_treated, within sampling error.

    The truth is for a customer in base state, so customers who churned (and decayed before it) are left out,
    as are decisions whose completion horizon runs past the end of the history. Given the customers'
    traits, outcomes are independent Bernoulli draws: the tolerance is 4 standard errors plus 0.02.
    """
    d = history.decisions
    stay = set(history.truth.loc[history.truth["churn_at"].isna(), "customer_id"])
    sent = d[d["offer_id"].notna() & d["customer_id"].isin(stay)].copy()
    sent = sent[_fits(history, sent["made_at"], sent["offer_id"].map(history.duration))]
    done = set(history.events.loc[history.events["event"] == "completed", "decision_id"])
    sent["done"] = sent["decision_id"].isin(done)
    sent = sent.merge(history.effects, on=["customer_id", "offer_id"])
    sent["kind"] = sent["offer_id"].map(history.offers["kind"])
    for kind, g in sent.groupby("kind"):
        p = g["p_complete_treated"].to_numpy()
        if kind == "informational":
            assert not g["done"].any()
            assert (p == 0).all()
            continue
        tolerance = 4 * math.sqrt(float((p * (1 - p)).sum())) / len(g) + 0.02
        assert len(g) > 300, kind
        assert abs(g["done"].mean() - p.mean()) <= tolerance, (kind, g["done"].mean(), p.mean(), tolerance)


def test_control_group_meets_offer_conditions_as_the_truth_says(history: History) -> None:
    """No-offer group: the share meeting each offer's condition in its validity = mean p_complete_control."""
    d = history.decisions
    stay = set(history.truth.loc[history.truth["churn_at"].isna(), "customer_id"])
    control = d[d["offer_id"].isna() & d["customer_id"].isin(stay)][["decision_id", "customer_id", "made_at"]]
    t = history.txns[history.txns["customer_id"].isin(control["customer_id"])]
    t = t.merge(control, on="customer_id")
    t["amount"] = t["amount"].map(float)
    checked = 0
    for offer_id, offer in history.offers.iterrows():
        if offer["kind"] == "informational":
            continue
        days = int(offer["duration_days"])
        mine = control[_fits(history, control["made_at"], pd.Series(days, index=control.index))]
        w = t[t["decision_id"].isin(mine["decision_id"])]
        w = w[
            (w["occurred_at"] >= w["made_at"]) & (w["occurred_at"] < w["made_at"] + pd.Timedelta(days=days))
        ]
        if offer["txn_types"] is not None:
            w = w[w["type"].isin(list(offer["txn_types"]))]
        if offer["categories"] is not None:
            w = w[w["category"].isin(list(offer["categories"]))]
        if offer["kind"] in ("bonus_points", "cashback"):
            w = w[w["amount"] >= float(offer["threshold"])]
        met = mine["decision_id"].isin(set(w["decision_id"]))
        truth = history.effects[history.effects["offer_id"] == offer_id].set_index("customer_id")
        p = mine["customer_id"].map(truth["p_complete_control"]).to_numpy()
        # 0.03 allows for the bill-day phase (campaigns start near the same day of each month).
        tolerance = 4 * math.sqrt(float((p * (1 - p)).sum())) / len(mine) + 0.03
        assert abs(met.mean() - p.mean()) <= tolerance, (offer_id, met.mean(), p.mean(), tolerance)
        checked += 1
    assert checked == 10


def test_truth_tables_are_consistent(history: History) -> None:
    truth, effects = history.truth, history.effects
    tastes = truth[[f"taste_{c}" for c in PURCHASE_CATEGORIES]].sum(axis=1)
    assert np.allclose(tastes, 1.0)
    assert set(truth["segment"]) == {"persuadable", "sure_thing", "lost_cause", "sleeping_dog"}
    assert truth["salary_day"].between(1, 28).all()
    churned = truth["churn_type"].notna()
    assert truth["churn_decay"].notna().all()  # for everyone, not only those who churned in the history
    assert (truth.loc[churned, "churn_decay"] == (truth.loc[churned, "churn_type"] == "decay")).all()
    assert len(effects) == 1500 * len(history.offers)
    p = effects[["p_complete_treated", "p_complete_control", "p_meet_treated"]]
    assert ((p >= 0) & (p <= 1)).all().all()
    assert np.allclose(effects["uplift"], effects["p_complete_treated"] - effects["p_complete_control"])
    value = effects["offer_id"].map(history.offers["value"].map(float))
    cost = effects["offer_id"].map(history.offers["cost"].map(float))
    eiv = effects["uplift"] * value - effects["p_complete_treated"] * cost
    assert np.allclose(effects["expected_incremental_value"], eiv)
    info = effects["offer_id"].map(history.offers["kind"]) == "informational"
    assert (effects.loc[info, ["p_complete_treated", "p_complete_control"]] == 0).all().all()
    # Persuadables gain from offers more than sure things, who would have bought anyway.
    seg = effects["customer_id"].map(truth.set_index("customer_id")["segment"])
    gain = effects.loc[~info, "incremental_uplift"].groupby(seg[~info]).mean()
    assert gain["persuadable"] > 0.02 > abs(gain["sure_thing"])
    # Every incremental transaction recorded in the truth exists.
    extra = pq.read_table(history.path / "truth" / "decisions.parquet").to_pandas()
    ids = extra["incremental_transaction_id"].dropna()
    assert len(ids) > 50
    assert ids.isin(history.txns["transaction_id"]).all()


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


def test_a_history_without_campaigns_is_still_complete(tmp_path: Path) -> None:
    simulate(SimConfig(customers=5, days=2, seed=1), tmp_path / "h")
    assert pq.read_table(tmp_path / "h" / "decisions.parquet").num_rows == 0
    assert pq.read_schema(tmp_path / "h" / "offer_events.parquet").field("occurred_at").type == TS
    assert json.loads((tmp_path / "h" / "manifest.json").read_text())["campaigns"] == []


def test_the_ledger_agrees_with_the_history(engine: Engine, tmp_path: Path) -> None:
    """Load a history through ``loyalty ingest``'s loader: nothing held or rejected, the same completions."""
    simulate(SimConfig(customers=150, days=75, seed=3), tmp_path / "h")
    report = ingest_history(engine, tmp_path / "h", rules=RULES)
    assert report.transactions is not None
    assert (report.transactions.held, report.transactions.rejected) == (0, 0)
    assert report.transactions.posted == report.transactions.rows_read > 0
    assert report.completions_expected > 5
    assert report.completions_agree


# --- validation and the command line ------------------------------------------------------------------------


def test_bad_configurations_are_refused(tmp_path: Path) -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for config, field in (
        (SimConfig(customers=0, days=10, seed=1), "customers"),
        (SimConfig(customers=10, days=0, seed=1), "days"),
        (SimConfig(customers=10, days=10, seed=-1), "seed"),
        (SimConfig(customers=10, days=366, seed=1), "start"),
    ):
        with pytest.raises(InvalidInput) as caught:
            simulate(config, tmp_path / "out", now=now)
        assert caught.value.details["field"] == field
    assert not (tmp_path / "out").exists()


def test_simulate_command_writes_the_history(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "h"
    args = [
        "simulate",
        "--customers",
        "50",
        "--days",
        "40",
        "--seed",
        "2",
        "--end",
        "2025-06-01",
        "--out",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "50 customers over 40 days (2025-04-22 to 2025-06-01)" in result.output
    assert f"-> {out}" in result.output
    assert {p.name for p in out.iterdir()} >= {"manifest.json", "transactions.parquet", "truth"}
    first = file_bytes(out)
    again = runner.invoke(app, args)  # an earlier simulator output is replaced without --force
    assert again.exit_code == 0, again.output
    assert file_bytes(out) == first


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--customers", "0"], "customers must be between 1"),
        (["--days", "0"], "days must be between 1"),
        (["--start", "2025-02-30"], "is not a date"),
        (["--start", "2099-01-01"], "in the future"),
        (["--end", "2099-01-01"], "in the future"),
        (["--end", "2025-13-01"], "--end '2025-13-01' is not a date"),
        (["--start", "2025-01-01", "--end", "2025-06-01"], "not both"),
        (["--seed", "-3"], "seed must be a non-negative"),
    ],
)
def test_simulate_command_refuses_bad_arguments(tmp_path: Path, args: list[str], reason: str) -> None:
    result = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path / "h"), *args])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [lines[0]], result.output
    assert lines[0].startswith("error:"), result.output
    assert reason in lines[0], result.output


def test_simulate_command_ends_the_history_today_by_default(tmp_path: Path) -> None:
    """Without a date the bank stops where today begins (UTC), so live postings continue it."""
    out = tmp_path / "h"
    result = CliRunner().invoke(app, ["simulate", "--customers", "5", "--days", "10", "--out", str(out)])
    assert result.exit_code == 0, result.output
    today = dt.datetime.now(dt.UTC).date()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["end"] == dt.datetime(today.year, today.month, today.day, tzinfo=dt.UTC).isoformat()
    assert manifest["start"].startswith((today - dt.timedelta(days=10)).isoformat())


def test_simulate_command_keeps_out_of_foreign_directories(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    runner = CliRunner()
    args = ["simulate", "--customers", "20", "--days", "20", "--out", str(out)]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1
    assert "not empty" in refused.output
    assert "--force" in refused.output
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    forced = runner.invoke(app, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert (out / "notes.txt").read_text() == "keep me"
    assert (out / "transactions.parquet").is_file()
    (tmp_path / "file").write_text("x")
    not_a_dir = runner.invoke(app, ["simulate", "--out", str(tmp_path / "file")])
    assert not_a_dir.exit_code == 1
    assert "not a directory" in not_a_dir.output


def test_offer_funnel_and_decisions_agree_on_customers(history: History) -> None:
    decisions = history.decisions.set_index("decision_id")
    e = history.events
    assert (e["customer_id"] == e["decision_id"].map(decisions["customer_id"])).all()
    assert (e["channel"] == e["decision_id"].map(decisions["channel"])).all()
    sent = e[e["event"] == "sent"]
    made = sent["decision_id"].map(decisions["made_at"])
    assert ((sent["occurred_at"] - made) < pd.Timedelta(hours=2)).all()
    per_customer: dict[str, int] = defaultdict(int)
    for cid in decisions["customer_id"]:
        per_customer[cid] += 1
    assert max(per_customer.values()) <= len(history.manifest["campaigns"])
