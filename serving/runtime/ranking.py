"""The work behind ``/v1/score``, ``/v1/offers/rank`` and ``/v1/campaigns``: features in, decisions out.

Single-customer paths stay in numpy and plain Python (a one-row DataFrame costs more than the model): a row
from the in-memory online table, one ``predict`` over the customer's (offer) rows, ``models.policy`` for
eligibility, expected value and exploration. Only the customer's live state (tier, running activations,
recent contacts, for the frequency caps) comes from the database, in one short read.

Unknown customers (no online feature row yet, e.g. a member who joined after the last feature run) are
scored from an all-missing vector, the way LightGBM treats missing values, and flagged ``known: false``:
a newcomer still gets an answer (and exploration), and the caller can tell it apart.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from loyalty_core import (
    Conflict,
    DecisionRecord,
    NotFound,
    contacts_since,
    running_activations,
    tiers_at,
)
from models import (
    CustomerState,
    Ranking,
    allocate_campaign,
    contact_counts,
    eligibility_matrix,
    rank_for_customer,
)
from serving.runtime.inference import Scores
from serving.runtime.served_models import Snapshot
from serving.runtime.served_state import ScoringState, customer_ids_with_features

REASONS_PER_OFFER = 3


# --- /v1/score ----------------------------------------------------------------------------------------------


def customer_rows(snap: Snapshot, customer_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Feature vectors from the online table (all-missing for unknown ids) and which ids were known."""
    features = snap.features.value
    if len(customer_ids) == 1:
        row, found = features.vector(customer_ids[0])
        return row.reshape(1, -1), np.array([found])
    return features.online.get_many(customer_ids)


def score_answers(
    snap: Snapshot, customer_ids: Sequence[str], known: np.ndarray, scores: Scores
) -> list[dict[str, Any]]:
    """Per customer: churn probability, bonus multiplier, completable active offers most likely first (none
    when the snapshot scores churn alone)."""
    assert scores.churn is not None
    assert scores.multiplier is not None
    multipliers = scores.multiplier
    online = snap.features.value.online
    if snap.catalogue is None:
        ids: tuple[str, ...] = ()
        offers_at = np.empty(0, dtype=np.int64)
    else:
        ids = snap.catalogue.value.active_ids
        offers_at = np.flatnonzero(snap.catalogue.value.completable)
    uplift = scores.uplift
    out = []
    for i, cid in enumerate(customer_ids):
        p = scores.propensity[i]
        u = None if uplift is None else uplift[i]
        order = offers_at[np.argsort(-p[offers_at], kind="stable")].tolist()
        out.append(
            {
                "customer_id": cid,
                "churn_probability": float(scores.churn[i]),
                "bonus_multiplier": float(multipliers[i]),
                "offers": [
                    {
                        "offer_id": ids[j],
                        "propensity": float(p[j]),
                        "uplift": None if u is None else _num(u[j]),
                    }
                    for j in order
                ],
                "known": bool(known[i]),
                "features_as_of": online.as_of(cid) if known[i] else None,
            }
        )
    return out


def _num(x: float) -> float | None:
    return None if x != x else float(x)  # NaN: no estimate


# --- /v1/offers/rank ----------------------------------------------------------------------------------------


def rank_customer(
    state: ScoringState,
    snap: Snapshot,
    customer: CustomerState,
    *,
    customer_id: str,
    scores: Scores,
    known: bool,
    k: int,
    channel: str | None,
    now: dt.datetime,
) -> tuple[dict[str, Any], list[DecisionRecord]]:
    """The answer to a ranking request and the decisions to log (the served one, the shadow's).

    ``scores`` are the models' scores of the active offers for this one customer
    (``serving.runtime.inference``).
    """
    catalogue = snap.offer_catalogue
    p_list = scores.propensity[0].tolist()
    u_list = None if scores.uplift is None else scores.uplift[0].tolist()

    def rank(exploration: Any) -> Ranking:
        return rank_for_customer(
            catalogue.policy,
            customer,
            p_list,
            uplift=u_list,
            now=now,
            channel=channel,
            caps=state.caps,
            k=k,
            exploration=exploration,
            rng=state.rng,
        )

    served = rank(state.exploration)
    served = replace(served, offers=tuple(_with_reasons(snap, scores.offer_inputs[0], served)))
    versions = snap.versions
    decision_id = uuid.uuid4().hex
    by_offer = dict(zip(catalogue.active_ids, p_list, strict=True))

    record = DecisionRecord.from_ranking(
        served,
        customer_id=customer_id,
        made_at=now,
        channel=channel,
        model_versions=versions,
        decision_id=decision_id,
        k=k,
        scores=by_offer,
    )
    records = [record]
    if state.shadow is not None:
        records.append(record.shadow(rank(state.shadow), scores=by_offer))
    answer = {
        "decision_id": decision_id,
        "customer_id": customer_id,
        "policy": served.policy,
        "offers": [
            {
                "offer_id": o.offer_id,
                "rank": o.rank,
                "score": o.score,
                "expected_value": o.expected_value,
                "probability": o.probability,
                "source": o.source,
                "reasons": o.reasons,
            }
            for o in served.offers
        ],
        "model_versions": versions,
        "known": known,
        "features_as_of": snap.features.value.online.as_of(customer_id) if known else None,
    }
    return answer, records


def _with_reasons(snap: Snapshot, offer_inputs: np.ndarray, ranking: Ranking) -> list[Any]:
    """The chosen offers with their top reason codes: one TreeSHAP call over the slate's rows only, taken
    from the rows the offer model already scored (a chosen offer has a positive score, so it completes)."""
    if not ranking.offers:
        return []
    assert snap.offer_model is not None
    where = {oid: i for i, oid in enumerate(snap.offer_catalogue.completable_ids)}
    matrix = offer_inputs[[where[o.offer_id] for o in ranking.offers]]
    reasons = snap.offer_model.champion.scorer.explain(matrix, k=REASONS_PER_OFFER)
    return [
        replace(o, reasons=[r.as_dict() for r in rs]) for o, rs in zip(ranking.offers, reasons, strict=True)
    ]


# --- /v1/campaigns ------------------------------------------------------------------------------------------


def plan_campaign(
    state: ScoringState,
    snap: Snapshot,
    *,
    offer_id: str,
    budget: float | None,
    limit: int,
    channel: str | None,
    rank_by: str,
    now: dt.datetime,
) -> tuple[dict[str, Any], list[DecisionRecord]]:
    """Customers of the online table ranked for one offer within the budget (blocking: run it in a thread)."""
    assert snap.offer_model is not None
    catalogue = snap.offer_catalogue
    offer = catalogue.offer(offer_id)
    if offer is None:
        raise NotFound(f"unknown offer {offer_id!r}", code="unknown_offer")
    if not offer["active"]:
        raise Conflict(f"offer {offer_id!r} is withdrawn", code="offer_inactive")
    features = snap.features.value
    ids = customer_ids_with_features(state.reader, features.online.version)
    matrix, known = features.online.get_many(ids)
    ids = [c for c, k in zip(ids, known, strict=True) if k]
    matrix = matrix[known]
    uplift = None
    if offer["kind"] == "informational":
        p = np.zeros(len(ids))
    else:
        p, uplift = snap.offer_model.score_offer(matrix, offer_id)
    policy = catalogue.policy
    with state.reader.connect() as conn:
        tiers = tiers_at(conn, state.rules, now)
        running = running_activations(conn, now)
        contacts = contacts_since(conn, now - state.caps.window)
    row_of = {c: i for i, c in enumerate(ids)}
    active = np.zeros((len(ids), len(policy)), dtype=bool)
    for cid, oid in running:
        i, j = row_of.get(cid), policy.index.get(oid)
        if i is not None and j is not None:
            active[i, j] = True
    contacts_frame = pd.DataFrame(
        {
            "customer_id": [c.customer_id for c in contacts],
            "offer_id": [c.offer_id for c in contacts],
            "sent_at": pd.to_datetime([c.sent_at for c in contacts], utc=True),
            "channel": pd.Series([c.channel for c in contacts], dtype=object),
        }
    )
    codes, _slots = eligibility_matrix(
        policy,
        tier_rank=policy.tier_ranks([tiers.get(c) for c in ids]),
        active=active,
        counts=contact_counts(
            contacts_frame, ids, policy, now=now, window=state.caps.window, channel=channel
        ),
        channel=channel,
        caps=state.caps,
    )
    eligible = codes[:, policy.index[offer_id]] == 0
    plan = allocate_campaign(
        ids,
        p,
        value=float(offer["value"]),
        cost=float(offer["cost"]),
        uplift=uplift,
        eligible=eligible,
        budget=budget,
        limit=limit,
        rank_by="value_per_cost" if rank_by == "value_per_cost" else "value",
    )
    campaign_id = uuid.uuid4().hex[:16]
    policy_name = f"campaign:{campaign_id}"
    versions = snap.versions
    customers: list[dict[str, Any]] = []
    records: list[DecisionRecord] = []
    chosen = plan["customer_id"].astype(str).tolist()
    p_chosen = plan["p_complete"].to_numpy(dtype=np.float64).tolist()
    ev = plan["expected_value"].to_numpy(dtype=np.float64).tolist()
    cost = plan["expected_cost"].to_numpy(dtype=np.float64).tolist()
    cumulative = plan["cumulative_cost"].to_numpy(dtype=np.float64).tolist()
    source = plan["source"].astype(str).tolist()
    for i, cid in enumerate(chosen):
        decision_id = uuid.uuid4().hex
        slate = {
            "offer_id": offer_id,
            "rank": 1,
            "score": p_chosen[i],
            "expected_value": ev[i],
            "probability": 1.0,
            "source": source[i],
            "reasons": None,
        }
        records.append(
            DecisionRecord(
                decision_id=decision_id,
                customer_id=cid,
                made_at=now,
                policy=policy_name,
                offers=(slate,),
                probability_method="deterministic",
                channel=channel,
                model_versions=versions,
            )
        )
        customers.append(
            {
                "rank": i + 1,
                "customer_id": cid,
                "decision_id": decision_id,
                "p_complete": p_chosen[i],
                "expected_value": ev[i],
                "expected_cost": cost[i],
                "cumulative_cost": cumulative[i],
                "source": source[i],
            }
        )
    answer = {
        "campaign_id": campaign_id,
        "offer_id": offer_id,
        "customers": customers,
        "considered": len(ids),
        "eligible": int(eligible.sum()),
        "expected_value": float(sum(ev)),
        "expected_cost": float(sum(cost)),
        "model_versions": versions,
    }
    return answer, records
