"""The truth written apart from the bank's tables, and read back (``churn_truth``) for evaluation."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from loyalty_core import OFFER_KINDS, InvalidInput
from pipelines.sources.simulator.arrow import id_array, name_array, time_array
from pipelines.sources.simulator.campaigns import DecisionLog, OfferTruth
from pipelines.sources.simulator.churn_probability import ChurnTraits, churn_label_probability
from pipelines.sources.simulator.config import DAY, NEVER, Array, Calendar, SimConfig, make_calendar
from pipelines.sources.simulator.output import is_simulator_output
from pipelines.sources.simulator.population import Population
from pipelines.sources.simulator.world import (
    BILL_KINDS,
    CATALOGUE,
    CATEGORY_NAMES,
    PURCHASE_CATEGORIES,
    SEGMENTS,
    Campaign,
)


def truth_customers_table(cal: Calendar, pop: Population, churn_at: Array, ids: pa.Array) -> pa.Table:
    never = churn_at == NEVER
    columns: dict[str, Any] = {
        "customer_id": ids,
        "churn_at": time_array(cal, np.where(never, 0, churn_at), missing=never),
        "churn_hazard": pop.churn_hazard,
        "activity_rate": pop.activity_rate,
        "salary_day": pa.array(pop.salary_day.astype(np.int16), pa.int16()),
        "bill_regularity": pop.bill_regularity,
    }
    for col, k in enumerate(PURCHASE_CATEGORIES):
        columns[f"taste_{CATEGORY_NAMES[k]}"] = pop.taste[:, col]
    for i, kind in enumerate(OFFER_KINDS):
        columns[f"resp_{kind}"] = pop.resp[:, i]
    columns["multiplier_sensitivity"] = pop.multiplier_sensitivity
    columns["segment"] = name_array(SEGMENTS, pop.segment)
    # Beyond the contract: the rest of the latent state, for whoever wants to check a model against it.
    columns["churn_type"] = pc.if_else(
        pa.array(never),
        pa.scalar(None, pa.string()),
        name_array(("stop", "decay"), pop.churn_decay.astype(np.int64)),
    )
    columns["churn_decay"] = pop.churn_decay  # for everyone: whether a churn to come will fade first
    columns["decay_days"] = pop.decay_days
    columns["transfer_share"] = pop.transfer_share
    columns["salary_boost"] = pop.salary_boost
    columns["bill_day"] = pa.array(pop.bill_day.astype(np.int16), pa.int16())
    for b, k in enumerate(BILL_KINDS):
        columns[f"has_{CATEGORY_NAMES[k]}"] = pop.has_bill[:, b]
    columns["pays_taxes"] = pop.pays_taxes
    columns["view_probability"] = pop.view_prob
    for i, kind in enumerate(OFFER_KINDS[:3]):
        columns[f"activation_{kind}"] = pop.activation_prob[:, i]
    return pa.table({k: v if isinstance(v, pa.Array) else pa.array(v) for k, v in columns.items()})


def offer_effects_table(truth: OfferTruth, ids: pa.Array) -> pa.Table:
    n, m = truth.p_control.shape
    cost = np.array([float(o.cost) for o in CATALOGUE])
    value = np.array([float(o.value) for o in CATALOGUE])
    uplift = truth.p_treated - truth.p_control
    incremental = truth.p_meet - truth.p_control
    return pa.table(
        {
            "customer_id": ids.take(pa.array(np.repeat(np.arange(n), m))),
            "offer_id": name_array([o.offer_id for o in CATALOGUE], np.tile(np.arange(m), n)),
            "p_complete_treated": truth.p_treated.ravel(),
            "p_complete_control": truth.p_control.ravel(),
            "uplift": uplift.ravel(),
            "expected_incremental_value": (uplift * value - truth.p_treated * cost).ravel(),
            # Beyond the contract: uplift in *meeting the condition* (activated or not), the part of a
            # completion the offer really caused, and the value that follows from it.
            "p_meet_treated": truth.p_meet.ravel(),
            "incremental_uplift": incremental.ravel(),
            "incremental_value": (incremental * value - truth.p_treated * cost).ravel(),
        }
    )


def truth_decisions_table(
    campaigns: list[Campaign], log: DecisionLog, ids: pa.Array, truth: OfferTruth, incremental_txn: Array
) -> pa.Table:
    treated = log.offer >= 0
    o = np.maximum(log.offer, 0)
    has_inc = incremental_txn > 0
    return pa.table(
        {
            "decision_id": ids,
            "campaign_id": name_array([c.campaign_id for c in campaigns], log.campaign),
            "p_complete_treated": pa.array(truth.p_treated[log.customer, o], mask=~treated),
            "p_complete_control": pa.array(truth.p_control[log.customer, o], mask=~treated),
            "hazard_factor": log.hazard_factor.astype(np.float64),
            "incremental_transaction_id": pc.if_else(
                pa.array(has_inc), id_array("T", incremental_txn, 10), pa.scalar(None, pa.string())
            ),
        }
    ).sort_by([("decision_id", "ascending")])


# --- the run -----------------------------------------------------------------------------------------------


def output_root(path: Path) -> Path:
    """The simulator output that a ``--truth`` path names: the output itself or its ``truth/``."""
    for candidate in (path, *([path.parent] if path.name == "truth" else [])):
        if is_simulator_output(candidate):
            return candidate
    raise InvalidInput(f"--truth {path}: not a simulator output (no manifest.json there)", field="truth")


def truth_file(path: Path, name: str) -> Path:
    """The truth file ``name`` of a simulator output named by ``path`` (the output, or its truth/ itself)."""
    for candidate in (path / name, path / "truth" / name):
        if candidate.is_file():
            return candidate
    raise InvalidInput(f"--truth {path}: no {name} there or under truth/", field="truth")


def _seconds(at: pd.Series, start: dt.datetime) -> Array:
    """Seconds from the start of the history; -1 where there is no time."""
    stamps = pd.to_datetime(at, utc=True)
    seconds = (stamps - pd.Timestamp(start)).dt.total_seconds()
    return np.asarray(np.where(stamps.isna(), -1, np.floor(seconds.fillna(-1))), dtype=np.int64)


def _factor_in_force(
    root: Path, meta: dict[str, Any], start: dt.datetime, as_of: dt.datetime, customers: pd.Series
) -> tuple[Array, Array, Array]:
    """(hazard factor, from, until: seconds) per customer: what the campaign in force at ``as_of`` does to
    their churn hazard (``run_campaigns``: from the view, or the activation that lowered it, to the next
    campaign's start); factor 1 without a decision before ``as_of``."""
    n = len(customers)
    factor, since, until = np.ones(n), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    decisions = pd.read_parquet(root / "decisions.parquet", columns=["decision_id", "customer_id", "made_at"])
    made = pd.to_datetime(decisions["made_at"], utc=True)
    decisions = decisions[(made < pd.Timestamp(as_of)).to_numpy()]
    if decisions.empty:
        return factor, since, until
    latest = decisions.sort_values("made_at", kind="stable").groupby("customer_id").tail(1)
    effects = pd.read_parquet(
        root / "truth" / "decisions.parquet", columns=["decision_id", "campaign_id", "hazard_factor"]
    )
    latest = latest.merge(effects, on="decision_id", how="inner")
    latest = latest[(latest["hazard_factor"] != 1.0).to_numpy()]
    events = pd.read_parquet(root / "offer_events.parquet", columns=["decision_id", "event", "occurred_at"])
    events = events[events["decision_id"].isin(latest["decision_id"]).to_numpy()]
    kind = events["event"].astype("str").to_numpy()

    def first(event: str) -> Array:
        mine = events[kind == event].groupby("decision_id")["occurred_at"].min()
        return _seconds(latest["decision_id"].map(mine), start)

    viewed, activated = first("viewed"), first("activated")
    # A sleeping dog's hazard rises from the view; a responder's falls from the activation (the view for an
    # informational offer, which nothing activates).
    respond = np.where((latest["hazard_factor"].to_numpy() > 1) | (activated < 0), viewed, activated)
    campaign_starts = [_seconds(pd.Series([c["start"]]), start)[0] for c in meta["campaigns"]]
    order = {c["id"]: i for i, c in enumerate(meta["campaigns"])}
    ends = [*campaign_starts[1:], int(meta["days"]) * DAY]
    pos = pd.Index(customers).get_indexer(pd.Index(latest["customer_id"]))
    ok = (pos >= 0) & (respond >= 0)
    factor[pos[ok]] = latest["hazard_factor"].to_numpy()[ok]
    since[pos[ok]] = respond[ok]
    until[pos[ok]] = np.array([ends[order[c]] for c in latest["campaign_id"]], dtype=np.int64)[ok]
    return factor, since, until


def churn_truth(path: Path, as_of: dt.datetime, horizon_days: int) -> pd.DataFrame:
    """``customer_id, p_churn``: every customer's true probability of the churn label as of ``as_of`` (a
    midnight UTC), no purchase or bill payment in ``[as_of, as_of + horizon_days)``, given their latent
    state then (``churn_probability.churn_label_probability``, where its approximations are listed)."""
    root = output_root(path)
    meta = json.loads((root / "manifest.json").read_text())
    start = dt.datetime.fromisoformat(meta["start"])
    offset = as_of - start
    if offset % dt.timedelta(days=1):
        raise InvalidInput(f"the churn truth is per whole day: {as_of.isoformat()} is not a midnight UTC")
    config = SimConfig(customers=int(meta["customers"]), days=int(meta["days"]), seed=0, start=start.date())
    truth = pd.read_parquet(root / "truth" / "customers.parquet")
    if "churn_decay" not in truth.columns:
        raise InvalidInput(
            f"--truth {path}: written by an older simulator (no churn_decay); run `loyalty simulate` again",
            field="truth",
        )
    churn_at = _seconds(truth["churn_at"], start)
    traits = ChurnTraits(
        activity_rate=truth["activity_rate"].to_numpy(np.float64),
        transfer_share=truth["transfer_share"].to_numpy(np.float64),
        salary_day=truth["salary_day"].to_numpy(np.int64),
        salary_boost=truth["salary_boost"].to_numpy(np.float64),
        bill_day=truth["bill_day"].to_numpy(np.int64),
        bill_regularity=truth["bill_regularity"].to_numpy(np.float64),
        has_bill=np.stack([truth[f"has_{CATEGORY_NAMES[k]}"].to_numpy(bool) for k in BILL_KINDS], axis=1),
        pays_taxes=truth["pays_taxes"].to_numpy(bool),
        churn_hazard=truth["churn_hazard"].to_numpy(np.float64),
        churn_decay=truth["churn_decay"].to_numpy(bool),
        decay_days=truth["decay_days"].to_numpy(np.float64),
        churn_at=np.where(churn_at < 0, NEVER, churn_at),
    )
    customers = truth["customer_id"].astype("str")
    factor, since, until = _factor_in_force(root, meta, start, as_of, customers)
    p = churn_label_probability(
        make_calendar(config),
        traits,
        offset.days,
        horizon_days,
        hazard_factor=factor,
        factor_from=since,
        factor_until=until,
    )
    return pd.DataFrame({"customer_id": customers.to_numpy(), "p_churn": p})
