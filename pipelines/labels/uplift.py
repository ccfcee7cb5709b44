"""Uplift labels: per randomised campaign decision and per offer arm, did the customer meet the offer?

A campaign (decisions with ``policy = "campaign:<id>"``) assigned each customer one of its offers or the
no-offer control group (``offer_id`` NULL), at random, with the probability logged. What the uplift models
need from it, per decision and per offer arm ``o`` of its campaign (the offers some decision of the same
campaign got):

- a treated row when the decision sent ``o``, a control row for every arm when the decision was the
  control;
- ``met``, in both arms: a transaction in the validity ``[made_at, made_at + duration_days)`` met ``o``'s
  condition, decided with the offer's own rule as the ledger applies it
  (``loyalty_core.rules.OfferEffect.applies`` plus the threshold of bonus-points and cashback offers:
  matching ``txn_types``, ``categories``, ``amount >= threshold``), activated or not. Treated minus control
  on ``met`` is what sending the offer causes (the simulator's ``incremental_uplift``): the uplift
  learner's target (``models.jobs.uplift``);
- ``outcome``: for a treated row, the customer *completed* ``o`` in that window (a ``completed`` offer event
  of that customer and offer, so it also needs the activation); for a control row, ``met``. Treated minus
  control on it (the simulator's ``uplift``) mixes the activation funnel into the effect: a customer who
  buys anyway but never activates counts as harmed. It is kept for comparison.

Each row keeps the logged ``probability`` of the arm its decision was assigned (the control arm's for control
rows), which the uplift learner turns into inverse-probability weights. Informational offers have no
condition and never complete: they are not arms here. A row whose window ends after the data is left out
(its outcome is not known yet), as in ``labels.offer_response_labels``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, select

from loyalty_core import Decision, InvalidInput
from pipelines.features.cutoff import to_cutoff
from pipelines.features.frames import LedgerFrames
from pipelines.labels.outcomes import Cutoff, data_end

CAMPAIGN_PREFIX = "campaign:"
COLUMNS = (
    "decision_id",
    "customer_id",
    "policy",
    "made_at",
    "cutoff",
    "offer_id",
    "treated",
    "probability",
    "valid_until",
    "outcome",
    "met",
)


def read_decisions(
    bind: Engine | Connection, *, until: dt.datetime | None = None, policy_prefix: str = CAMPAIGN_PREFIX
) -> pd.DataFrame:
    """The campaign decisions (served ones) made before ``until``: ``decision_id, customer_id, made_at,
    policy, offer_id, probability, channel``; ``offer_id`` is null for the control group."""
    q = select(
        Decision.id.label("decision_id"),
        Decision.customer_id,
        Decision.made_at,
        Decision.policy,
        Decision.offer_id,
        Decision.probability,
        Decision.channel,
    ).where(Decision.policy.like(f"{policy_prefix}%"), Decision.served.is_(True))
    if until is not None:
        q = q.where(Decision.made_at < until)
    q = q.order_by(Decision.made_at, Decision.id)

    def run(conn: Connection) -> pd.DataFrame:
        return pd.read_sql(q, conn)

    if isinstance(bind, Connection):
        frame = run(bind)
    else:
        with bind.connect() as conn:
            frame = run(conn)
    frame["made_at"] = pd.to_datetime(frame["made_at"], utc=True).dt.as_unit("us")
    for col in ("decision_id", "customer_id", "policy", "offer_id", "channel"):
        frame[col] = frame[col].astype("str").where(frame[col].notna(), None)
    frame["probability"] = frame["probability"].astype(np.float64)
    return frame


def has_control(decisions: pd.DataFrame) -> bool:
    """Whether the log holds a randomised control group (what uplift needs)."""
    return bool(len(decisions)) and bool(decisions["offer_id"].isna().any())


def _rule(offer: Mapping[str, Any]) -> tuple[frozenset[str] | None, frozenset[str] | None, float]:
    def members(value: Any) -> frozenset[str] | None:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return None
        return frozenset(str(v) for v in value)

    threshold = 0.0
    if offer["kind"] in ("bonus_points", "cashback"):
        raw = offer.get("threshold")
        threshold = 0.0 if raw is None or pd.isna(raw) else float(raw)
    return members(offer.get("txn_types")), members(offer.get("categories")), threshold


def _sorted_hits(customer_id: np.ndarray, at: pd.Series | np.ndarray) -> pd.DataFrame:
    hits = pd.DataFrame(
        {
            "customer_id": np.asarray(customer_id, dtype=object).astype("str"),
            "at": pd.to_datetime(pd.Series(at), utc=True).dt.as_unit("us").to_numpy(),
        }
    )
    return hits.sort_values("at", kind="stable", ignore_index=True)


def _within(hits: pd.DataFrame, who: pd.DataFrame, duration: pd.Timedelta) -> np.ndarray:
    """For each row of ``who`` (customer_id, made_at): one of the customer's ``hits`` (customer_id, at;
    sorted by ``at``) falls in [made_at, made_at + duration). One ``merge_asof``, no loop over customers."""
    out = np.zeros(len(who), dtype=np.int64)
    if hits.empty or who.empty:
        return out
    asked = pd.DataFrame(
        {
            "customer_id": who["customer_id"].astype("str").to_numpy(),
            "made_at": pd.to_datetime(who["made_at"], utc=True).dt.as_unit("us").to_numpy(),
            "row": np.arange(len(who)),
        }
    ).sort_values("made_at", kind="stable")
    matched = pd.merge_asof(
        asked,
        hits,
        left_on="made_at",
        right_on="at",
        by="customer_id",
        direction="forward",
        allow_exact_matches=True,
    )
    met = (matched["at"].notna() & (matched["at"] < matched["made_at"] + duration)).to_numpy()
    out[matched["row"].to_numpy()] = met.astype(np.int64)
    return out


class _Transactions:
    """The transactions' columns as plain arrays once, and each offer's qualifying ones, sorted, once."""

    def __init__(self, txns: pd.DataFrame) -> None:
        self.customer = txns["customer_id"].to_numpy()
        self.at = txns["occurred_at"]
        self.amount = txns["amount"].to_numpy(dtype=np.float64)
        self.type = txns["type"].astype("str").to_numpy()
        self.category = txns["category"].astype("str").to_numpy()
        self._cache: dict[str, pd.DataFrame] = {}

    def meeting(self, offer_id: str, offer: Mapping[str, Any]) -> pd.DataFrame:
        """Transactions meeting the offer's condition (the ledger's rule): ``customer_id, at``, sorted."""
        if offer_id not in self._cache:
            types, categories, threshold = _rule(offer)
            keep = self.amount >= threshold - 1e-9
            if types is not None:
                keep &= np.isin(self.type, list(types))
            if categories is not None:
                keep &= np.isin(self.category, list(categories))
            self._cache[offer_id] = _sorted_hits(self.customer[keep], self.at[keep])
        return self._cache[offer_id]


def uplift_labels(
    frames: LedgerFrames,
    decisions: pd.DataFrame,
    catalogue: pd.DataFrame | Iterable[Mapping[str, Any]],
    *,
    made_from: Cutoff | None = None,
    made_until: Cutoff | None = None,
    end: Cutoff | None = None,
) -> pd.DataFrame:
    """One row per (campaign decision made in ``[made_from, made_until)``, offer arm): ``COLUMNS``.

    ``cutoff`` is the midnight (UTC) before ``made_at``: the features of a row are taken as of it, so they
    see nothing of the campaign. ``catalogue`` gives each offer's kind, duration and condition (a frame
    with ``offer_id`` or ``id``, or records with those fields).
    """
    cat = pd.DataFrame(list(catalogue)) if not isinstance(catalogue, pd.DataFrame) else catalogue
    if "offer_id" not in cat.columns and "id" in cat.columns:
        cat = cat.rename(columns={"id": "offer_id"})
    missing = [c for c in ("offer_id", "kind", "duration_days") if c not in cat.columns]
    if missing:
        raise InvalidInput(f"the catalogue lacks column(s) {', '.join(missing)}", field=missing[0])
    offers: dict[str, dict[str, Any]] = {
        str(r["offer_id"]): {str(k): v for k, v in r.items()} for r in cat.to_dict("records")
    }
    need = ["decision_id", "customer_id", "made_at", "policy", "offer_id", "probability"]
    absent = [c for c in need if c not in decisions.columns]
    if absent:
        raise InvalidInput(f"decisions lack column(s) {', '.join(absent)}", field=absent[0])
    d = decisions[decisions["policy"].astype("str").str.startswith(CAMPAIGN_PREFIX).to_numpy()]
    if made_from is not None:
        d = d[d["made_at"] >= to_cutoff(made_from)]
    if made_until is not None:
        d = d[d["made_at"] < to_cutoff(made_until)]
    last = to_cutoff(end) if end is not None else data_end(frames)
    parts: list[pd.DataFrame] = []
    txns = _Transactions(frames.transactions)
    ev = frames.offer_events
    done = ev[(ev["event"].astype("str") == "completed").to_numpy()]
    done_offer = done["offer_id"].astype("str").to_numpy()
    completions = {
        o: _sorted_hits(done["customer_id"].to_numpy()[done_offer == o], done["occurred_at"][done_offer == o])
        for o in offers
    }
    for policy, campaign in d.groupby("policy", sort=True):
        arms = sorted(
            o
            for o in pd.unique(campaign["offer_id"].dropna().astype("str"))
            if o in offers and offers[o]["kind"] != "informational"
        )
        control = campaign[campaign["offer_id"].isna().to_numpy()]
        for arm in arms:
            duration = pd.Timedelta(days=int(offers[arm]["duration_days"]))
            treated = campaign[(campaign["offer_id"] == arm).to_numpy()]
            for who, is_treated in ((treated, 1), (control, 0)):
                if who.empty:
                    continue
                met = _within(txns.meeting(arm, offers[arm]), who, duration)
                outcome = _within(completions[arm], who, duration) if is_treated else met
                made = pd.to_datetime(who["made_at"], utc=True).dt.as_unit("us")
                parts.append(
                    pd.DataFrame(
                        {
                            "decision_id": who["decision_id"].astype("str").to_numpy(),
                            "customer_id": who["customer_id"].astype("str").to_numpy(),
                            "policy": str(policy),
                            "made_at": made.to_numpy(),
                            "cutoff": made.dt.floor("D").to_numpy(),
                            "offer_id": arm,
                            "treated": np.full(len(who), is_treated, dtype=np.int64),
                            "probability": who["probability"].to_numpy(dtype=np.float64),
                            "valid_until": (made + duration).to_numpy(),
                            "outcome": outcome,
                            "met": met,
                        }
                    )
                )
    if not parts:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in COLUMNS})
    out = pd.concat(parts, ignore_index=True)
    for col in ("made_at", "cutoff", "valid_until"):
        out[col] = pd.to_datetime(out[col], utc=True).dt.as_unit("us")
    if last is None:
        return out.iloc[:0]
    out = out[out["valid_until"] <= last]
    return out.sort_values(["made_at", "decision_id", "offer_id"], kind="stable", ignore_index=True)
