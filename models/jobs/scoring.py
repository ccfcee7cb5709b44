"""``loyalty score --as-of DATE --out FILE``: every customer scored by the champions, in one file.

Parameters: ``[scoring]`` of ``models/jobs/parameters.toml`` (a request's values win).

Per customer: ``churn_probability`` (churn champion), ``bonus_multiplier``
(``models.policy.allocate_multipliers`` over the whole base), the top ``k`` offers by expected value with
their propensity, uplift and expected value (``offer_1``, ``offer_1_propensity``, ``offer_1_uplift``,
``offer_1_expected_value``, ...) and, for the
``reasons_top`` riskiest customers (or everyone with ``reasons_all``), the top three reasons behind their
churn score in words (``churn_reasons``). Reason codes cost 2-8 ms per customer (TreeSHAP), the rest a few
microseconds, which is why they are limited by default.

The core, ``models.jobs.scoring_steps.score_matrix``, is numpy end to end, chunk by chunk
(``benchmarks/batch_scoring.py`` times it):

1. churn: ``ChurnInputs.matrix`` -> ``Scorer.predict_proba``;
2. eligibility as the online policy decides it (``models.policy.eligibility_matrix``: inactive, tier, running
   activation, frequency caps) plus the offer's channels against the customer's preferred channel (the
   channel a batch campaign reaches them through). Only eligible pairs of completable offers are scored:
   pruning pairs before the offer model is what keeps the offer model within the scoring budget;
3. offers: ``OfferInputs.pairs_at`` over the eligible pairs -> propensity; with an uplift champion, its two
   scorers on the same matrix -> uplift;
4. ``expected_value`` (uplift x value - propensity x cost, propensity x (value - cost) without uplift) and
   the top ``k`` eligible offers with a positive value, best first, ties in catalogue order: what
   ``rank_offers`` shows online without exploration.

Multipliers. A customer's value ``V`` is the bank's margin on their spend over the next year, taken as
``margin_rate`` x their spend of the last 365 days; the points they would earn at 1x in the period are their
points of the last 30 days x (1 - churn probability). Both are stated assumptions of this job (a CLV model
would replace the first). The allocation's shadow price (``threshold``) is written to
``var/policy/multiplier.json`` and beside the output (``FILE.multiplier.json``): ``multiplier_for`` applies
it to one customer at request time, so the service follows the batch's budget.

Churn alone. A bank that only has transactions has no offers catalogue and trains no offer model; only the
churn champion is required. Without an offer champion (or without an offer that can complete) the job
scores churn, multipliers and reasons, leaves every offer column out of the file and says so
(``ScoreReport.offers_absent``, the report's first lines, the Parquet metadata's ``offers_absent``). An
offer champion that exists but cannot be loaded still fails the run: that is a fault to fix, not a bank
without offers.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine

from loyalty_core import DEFAULT_VAR, InvalidInput, Rules, Unavailable
from models.jobs.common import Progress, day, no_progress, parse_date, timed
from models.jobs.params import job_params_in_use
from models.jobs.reads import read_catalogue
from models.jobs.requests import ScoreRequest
from models.jobs.scoring_steps import (
    ScoringModels,
    ScoringSlices,
    churn_reasons,
    customer_value,
    score_base,
    score_frame,
)
from models.policy import (
    ContactCounts,
    FrequencyCaps,
    MultiplierPolicy,
    OfferCatalog,
    active_matrix,
    allocate_multipliers,
    contact_counts,
)
from models.registry.champions import CHAMPION, aliased_version, load_champion
from models.registry.store import use_store
from models.registry.uplift_model import load_uplift
from models.registry.uplift_scorers import UPLIFT_MODEL
from pipelines import FEATURE_NAMES, FeatureConfig, extract, pandas_features

log = logging.getLogger(__name__)

CHURN_MODEL = "loyalty-churn"
OFFER_MODEL = "loyalty-offer-propensity"
MULTIPLIER_FILE = DEFAULT_VAR / "policy" / "multiplier.json"
NO_OFFER_CHAMPION = "no offer champion: churn only (train one with `loyalty train offers`)"
NO_CATALOGUE = "no offers catalogue: churn only (import offers, then `loyalty train offers`)"
NO_USABLE_OFFER = "the catalogue has no active offer that can complete: churn only"


@dataclass
class ScoreReport:
    as_of: pd.Timestamp
    out: Path
    customers: int
    offers: int
    versions: dict[str, str]
    multiplier_counts: dict[float, int]
    threshold: float
    multiplier_file: Path
    reasons: int
    example_customer: str | None = None  # the riskiest customer with an offer to show (demos, docs)
    seconds: dict[str, float] = field(default_factory=dict)
    offers_absent: str | None = None  # why no offer was scored (churn alone); None when offers were

    @property
    def customers_per_minute(self) -> float:
        core = self.seconds.get("score", 0.0)
        return self.customers / core * 60 if core > 0 else math.nan

    def lines(self) -> list[str]:
        mult = ", ".join(f"{m:g}x {c:,}" for m, c in sorted(self.multiplier_counts.items()))
        what = f"x {self.offers} offers" if self.offers_absent is None else "(churn only)"
        absent = [] if self.offers_absent is None else [f"{self.offers_absent}; no offer columns written"]
        return [
            f"scored {self.customers:,} customers as of {day(self.as_of)} {what} -> {self.out}",
            *absent,
            "models: " + ", ".join(f"{k} v{v}" for k, v in self.versions.items()),
            f"bonus multipliers: {mult}; cut-off {self.threshold:.4g} RUB kept per extra point "
            f"-> {self.multiplier_file}",
            f"reason codes for {self.reasons:,} customers (the riskiest; --reasons for everyone)",
            f"scoring core: {self.customers_per_minute:,.0f} customers/minute",
            "time: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items()),
        ]


def write_multiplier(path: Path, doc: dict[str, Any]) -> Path:
    """Write atomically (the service may be reading it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    tmp.replace(path)
    return path


def load_models(
    catalogue: pd.DataFrame | None, *, tracking_uri: str | None = None, uplift: bool = True
) -> ScoringModels:
    """The churn champion (required), the offer champion when there is one and ``catalogue`` (None: the
    ledger has no offers) has an offer it can score, and the uplift champion when there is one (and
    ``uplift``; without it expected values use the propensity formula). Their trees are compiled
    (``ScoringModels.build``). Churn alone says why (``ScoringModels.offers_absent``)."""
    tracking_uri = use_store(tracking_uri)
    churn = load_champion(CHURN_MODEL, tracking_uri=tracking_uri)
    versions = {CHURN_MODEL: churn.version}
    absent = offers_absent(catalogue, tracking_uri)
    if absent is not None or catalogue is None:
        reason = absent or NO_CATALOGUE
        log.info("%s", reason)
        return ScoringModels.churn_only(churn.scorer, reason=reason, versions=versions)
    offers = load_champion(OFFER_MODEL, tracking_uri=tracking_uri)
    scorers = None
    if uplift:
        try:
            scorers = load_uplift(tracking_uri=tracking_uri)
        except Unavailable as exc:
            log.info("no uplift model (%s): expected values use the propensity formula", exc.message)
    versions[OFFER_MODEL] = offers.version
    if scorers is not None:
        versions[UPLIFT_MODEL] = str(scorers.version)
    return ScoringModels.build(churn.scorer, offers.scorer, catalogue, uplift=scorers, versions=versions)


def offers_absent(catalogue: pd.DataFrame | None, tracking_uri: str) -> str | None:
    """Why offers cannot be scored (no offer champion, no catalogue, no offer that can complete), or None.

    Asks the registry for the alias only: a champion that exists but fails to load is left to
    ``load_champion`` to report, so it fails the run instead of passing for a bank without offers.
    """
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    if aliased_version(client, OFFER_MODEL, CHAMPION, tracking_uri) is None:
        return NO_OFFER_CHAMPION
    if catalogue is None or catalogue.empty:
        return NO_CATALOGUE
    active = catalogue["active"].fillna(True).astype(bool) if "active" in catalogue else True
    if not ((catalogue["kind"] != "informational") & active).any():
        return NO_USABLE_OFFER
    return None


def catalogue_or_none(engine: Engine) -> pd.DataFrame | None:
    """The offers catalogue, or None when the ledger has none (a bank that only has transactions)."""
    try:
        return read_catalogue(engine)
    except InvalidInput:  # read_catalogue's one refusal: the table is empty
        return None


def score_all(
    engine: Engine,
    *,
    rules: Rules,
    request: ScoreRequest,
    models: ScoringModels | None = None,
    tracking_uri: str | None = None,
    progress: Progress | None = None,
) -> ScoreReport:
    """Score every customer known before ``request.as_of`` and write ``request.out`` (Parquet, or CSV for
    ``.csv``). ``models``: champions already loaded (benchmarks, tests); by default the registry's."""
    tick = progress or no_progress
    params = job_params_in_use().scoring
    k = params.top_k if request.k is None else request.k
    reasons_top = params.reasons_top if request.reasons_top is None else request.reasons_top
    margin_rate = params.margin_rate if request.margin_rate is None else request.margin_rate
    chunk = params.chunk if request.chunk is None else request.chunk
    multiplier_file = request.multiplier_file or MULTIPLIER_FILE
    caps, multiplier_budget = request.caps, request.multiplier_budget
    cutoff = parse_date(request.as_of)
    if cutoff is None:
        raise InvalidInput("--as-of DATE is required", field="as_of")
    out = Path(request.out)
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise InvalidInput(f"--out {out}: give a .parquet or .csv file", field="out")
    if k < 1:
        raise InvalidInput("--top-k must be at least 1", field="top_k")
    seconds: dict[str, float] = {}
    with timed(seconds, "models"):
        catalogue = catalogue_or_none(engine) if models is None else None
        models = models or load_models(catalogue, tracking_uri=tracking_uri, uplift=request.uplift)
    tick("extract", 0, None)
    with timed(seconds, "features"):
        frames = extract(engine, rules=rules, until=cutoff.to_pydatetime())
        features = pandas_features(frames, cutoff, FeatureConfig.from_rules(rules))
    tick("extract", 1, 1)
    if features.empty:
        raise InvalidInput(f"no customer is known before {day(cutoff)}", field="as_of")
    ids = features["customer_id"].astype("str")
    matrix = np.ascontiguousarray(features[list(FEATURE_NAMES)].to_numpy(dtype=np.float64, na_value=np.nan))
    now = cutoff.to_pydatetime()
    n = len(ids)
    if models.catalog is None:  # churn alone: no offer to be eligible for
        active = np.zeros((n, 0), dtype=bool)
        counts = ContactCounts(np.zeros(n), np.zeros(n), np.zeros((n, 0)))
    else:
        active = activation_matrix(frames, ids, models.catalog, now)
        counts = contact_matrix(frames, ids, models.catalog, now, caps)
    with timed(seconds, "score"):
        scores = score_base(
            models, matrix, ScoringSlices(active, counts), k=k, caps=caps, chunk=chunk, progress=tick
        )
        churn, top = scores.churn, scores.top
        value, base = customer_value(matrix, FEATURE_NAMES, churn, margin_rate)
        allocation = allocate_multipliers(
            churn, value, base, policy=MultiplierPolicy(), budget=multiplier_budget
        )
    with timed(seconds, "reasons"):
        reasons = churn_reasons(models, matrix, churn, everyone=request.reasons_all, top=reasons_top)
        tick("reasons", 1, 1)
    with timed(seconds, "write"):
        offer_ids = None if models.catalog is None else models.catalog.offer_ids
        frame = score_frame(ids, scores, offer_ids, allocation.multiplier, reasons)
        doc = {
            "as_of": cutoff.isoformat(),
            "threshold": allocation.threshold,
            "point_value": MultiplierPolicy().point_value,
            "levels": list(MultiplierPolicy().levels),
            "effect": list(MultiplierPolicy().effect),
            "budget": multiplier_budget,
            "spent": allocation.spent,
            "margin_rate": margin_rate,
            "customers": n,
            "models": models.versions,
            "offers_absent": models.offers_absent,
            "written_at": dt.datetime.now(dt.UTC).isoformat(),
        }
        write_scores(out, frame, doc)
        beside = out.with_name(out.name + ".multiplier.json")
        write_multiplier(beside, doc)
        shared = write_multiplier(multiplier_file, doc)
    levels, counts_by = np.unique(allocation.multiplier, return_counts=True)
    with_offer = np.flatnonzero(top[:, 0] >= 0)
    pool = with_offer if len(with_offer) else np.arange(n)
    example = str(ids.iloc[int(pool[np.argmax(churn[pool])])])
    return ScoreReport(
        as_of=cutoff,
        out=out,
        customers=n,
        offers=models.offer_count,
        versions=models.versions,
        multiplier_counts={float(a): int(b) for a, b in zip(levels, counts_by, strict=True)},
        threshold=allocation.threshold,
        multiplier_file=shared,
        reasons=sum(r is not None for r in reasons),
        example_customer=example,
        seconds=seconds,
        offers_absent=models.offers_absent,
    )


def write_scores(out: Path, frame: pd.DataFrame, doc: dict[str, Any]) -> None:
    """The scores file: CSV, or Parquet carrying the run's figures (``doc``, less its clock) as metadata."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        frame.to_csv(out, index=False)
        return
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"loyalty.scores"] = json.dumps({k: v for k, v in doc.items() if k != "written_at"}).encode()
    pq.write_table(table.replace_schema_metadata(meta), out, compression="zstd")


def activation_matrix(frames: Any, ids: pd.Series, catalog: OfferCatalog, now: dt.datetime) -> np.ndarray:
    acts = frames.activations
    return active_matrix(
        pd.DataFrame(
            {
                "customer_id": acts["customer_id"].astype("str"),
                "offer_id": acts["offer_id"].astype("str"),
                "activated_at": acts["activated_at"],
                "expires_at": acts["expires_at"],
            }
        ),
        pd.Index(ids),
        catalog,
        now=now,
    )


def contact_matrix(
    frames: Any, ids: pd.Series, catalog: OfferCatalog, now: dt.datetime, caps: FrequencyCaps
) -> ContactCounts:
    ev = frames.offer_events
    sent = ev[(ev["event"].astype("str") == "sent").to_numpy()]
    contacts = pd.DataFrame(
        {
            "customer_id": sent["customer_id"].astype("str"),
            "offer_id": sent["offer_id"].astype("str"),
            "sent_at": sent["occurred_at"],
            "channel": sent["channel"].astype("str"),
        }
    )
    return contact_counts(contacts, pd.Index(ids), catalog, now=now, window=caps.window)
