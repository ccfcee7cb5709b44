"""``loyalty score --as-of DATE --out FILE``: every customer scored by the champions, in one file.

Per customer: ``churn_probability`` (churn champion), ``bonus_multiplier``
(``models.policy.allocate_multipliers`` over the whole base), the top ``k`` offers by expected value with
their propensity, uplift and expected value (``offer_1``, ``offer_1_propensity``, ``offer_1_uplift``,
``offer_1_expected_value``, ...) and, for the
``reasons_top`` riskiest customers (or everyone with ``reasons_all``), the top three reasons behind their
churn score in words (``churn_reasons``). Reason codes cost 2-8 ms per customer (TreeSHAP), the rest a few
microseconds, which is why they are limited by default.

The core, ``score_matrix``, is numpy end to end, chunk by chunk (``benchmarks/batch_scoring.py`` times it):

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
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine

from loyalty_core import DEFAULT_VAR, InvalidInput, Rules, Unavailable
from models.assemble import ChurnInputs, OfferInputs
from models.job_common import Progress, day, no_progress, parse_date, read_catalogue, timed, use_store
from models.policy import (
    NO_CAPS,
    ContactCounts,
    Exclusion,
    FrequencyCaps,
    MultiplierPolicy,
    OfferCatalog,
    active_matrix,
    allocate_multipliers,
    contact_counts,
    eligibility_matrix,
    expected_value,
)
from models.reasons import explain
from models.scorer import Scorer, load_champion
from pipelines import CHANNELS, FEATURE_NAMES, FeatureConfig, extract, pandas_features

log = logging.getLogger(__name__)

CHURN_MODEL = "loyalty-churn"
OFFER_MODEL = "loyalty-offer-propensity"
MULTIPLIER_FILE = DEFAULT_VAR / "policy" / "multiplier.json"
CHUNK = 20_000
TOP_K = 3
REASONS_TOP = 1000
DEFAULT_CAPS = FrequencyCaps()
MARGIN_RATE = 0.01  # bank margin per RUB of card spend (interchange): an assumption, see the module doc


@dataclass(frozen=True, slots=True, eq=False)
class ScoringModels:
    """The champions and their input builders, aligned with the offers to score (active, completable)."""

    churn: Scorer
    churn_inputs: ChurnInputs
    offers: Scorer
    offer_inputs: OfferInputs
    catalog: OfferCatalog  # the offers scored, in this order
    positions: np.ndarray  # their positions in offer_inputs.offer_ids
    uplift: Any = None  # models.uplift_job.UpliftScorers
    uplift_inputs: OfferInputs | None = None
    versions: dict[str, str] = field(default_factory=dict)
    compiled: bool = False  # every model scores through lleaves (models.compiled), not LightGBM's predict

    @classmethod
    def build(
        cls,
        churn: Scorer,
        offers: Scorer,
        catalogue: pd.DataFrame,
        *,
        uplift: Any = None,
        feature_names: Sequence[str] = FEATURE_NAMES,
        tiers: Sequence[str] = ("base", "silver", "gold"),
        versions: dict[str, str] | None = None,
        compile: bool = True,
    ) -> ScoringModels:
        """``compile``: score through the trees compiled to native code where lleaves can (the same scores,
        about four times faster; see ``models.compiled``)."""
        offer_inputs = OfferInputs.for_scorer(offers, catalogue, feature_names)
        active = catalogue["active"].fillna(True).astype(bool) if "active" in catalogue else True
        usable = catalogue[(catalogue["kind"] != "informational") & active].reset_index(drop=True)
        if usable.empty:
            raise InvalidInput("the catalogue has no active offer that can complete", field="offers")
        catalog = OfferCatalog.from_frame(usable, tiers=tiers)
        uplift_inputs = None
        if uplift is not None:
            same = tuple(uplift.features) == tuple(offer_inputs.columns)
            uplift_inputs = (
                offer_inputs if same else OfferInputs(feature_names, catalogue, columns=uplift.features)
            )
        scorers = [churn, offers, *((uplift.treated, uplift.control) if uplift is not None else ())]
        done = [s.compile() for s in scorers] if compile else [False]  # each one, even after a failure
        compiled = all(done)
        return cls(
            churn=churn,
            churn_inputs=ChurnInputs.for_scorer(churn, feature_names),
            offers=offers,
            offer_inputs=offer_inputs,
            catalog=catalog,
            positions=offer_inputs.offer_positions(list(catalog.offer_ids)),
            uplift=uplift,
            uplift_inputs=uplift_inputs,
            versions=dict(versions or {}),
            compiled=compiled,
        )


@dataclass(slots=True)
class ChunkScores:
    churn: np.ndarray  # (n,)
    propensity: np.ndarray  # (n, m), NaN where not scored (ineligible)
    uplift: np.ndarray | None  # (n, m)
    expected_value: np.ndarray  # (n, m), -inf where ineligible
    top: np.ndarray  # (n, k) positions in models.catalog, -1 = none


def channel_eligibility(catalog: OfferCatalog, preferred: np.ndarray) -> np.ndarray:
    """(n, m): the offer reaches the customer through their preferred channel (code in ``CHANNELS``;
    unknown or ``other`` means no restriction)."""
    table = np.ones((len(CHANNELS) + 1, len(catalog)), dtype=bool)
    for code, name in enumerate(CHANNELS):
        if name != "other":
            table[code] = catalog.channel_ok(name)
    codes = np.nan_to_num(np.asarray(preferred, dtype=np.float64), nan=-1).astype(np.int64)
    codes = np.where((codes < 0) | (codes >= len(CHANNELS)), len(CHANNELS), codes)
    return table[codes]


def score_matrix(
    models: ScoringModels,
    customers: np.ndarray,
    *,
    k: int = TOP_K,
    active: np.ndarray | None = None,
    counts: ContactCounts | None = None,
    caps: FrequencyCaps = NO_CAPS,
    timings: dict[str, float] | None = None,
) -> ChunkScores:
    """Churn, offer propensities, uplift, expected values and the top ``k`` offers for customer vectors
    (rows in the feature catalogue's order). Pure numpy; see the module docstring for the steps."""
    clock = _Clock(timings)
    names = models.churn_inputs.feature_names
    where = {n: i for i, n in enumerate(names)}
    n, m = len(customers), len(models.catalog)
    churn_x = models.churn_inputs.matrix(customers)
    clock("churn inputs")
    churn = models.churn.predict_proba(churn_x)
    clock("churn model")
    tier = (
        np.nan_to_num(customers[:, where["tier"]], nan=0).astype(np.int64) if "tier" in where else np.zeros(n)
    )
    codes, slots = eligibility_matrix(models.catalog, tier_rank=tier, active=active, counts=counts, caps=caps)
    if "preferred_channel" in where:
        by_channel = channel_eligibility(models.catalog, customers[:, where["preferred_channel"]])
        codes = np.where((codes == Exclusion.ELIGIBLE) & ~by_channel, np.int8(Exclusion.CHANNEL), codes)
    eligible = (codes == Exclusion.ELIGIBLE) & (slots > 0)[:, None]
    rows, cols = np.nonzero(eligible)
    clock("eligibility")
    propensity = np.full((n, m), np.nan)
    uplift = None
    if len(rows):
        x = models.offer_inputs.pairs_at(customers, rows, models.positions[cols])
        clock("offer inputs")
        propensity[rows, cols] = models.offers.predict_proba(x)
        clock("offer model")
        if models.uplift is not None and models.uplift_inputs is not None:
            ux = (
                x
                if models.uplift_inputs is models.offer_inputs
                else models.uplift_inputs.pairs_at(
                    customers,
                    rows,
                    models.uplift_inputs.offer_positions(list(models.catalog.offer_ids))[cols],
                )
            )
            uplift = np.full((n, m), np.nan)
            uplift[rows, cols] = np.clip(models.uplift.predict(ux), -1.0, 1.0)
            clock("uplift models")
    p = np.nan_to_num(propensity, nan=0.0)
    ev, _ = expected_value(p, models.catalog.value, models.catalog.cost, uplift)
    ev = np.where(eligible, ev, -np.inf)
    ranked = np.where(ev > 0, ev, -np.inf)
    # stable sort on -EV: ties keep catalogue order, as rank_offers does
    order = np.argsort(-ranked, axis=1, kind="stable")[:, : min(k, m)]
    top = np.where(np.isfinite(np.take_along_axis(ranked, order, axis=1)), order, -1)
    if top.shape[1] < k:
        top = np.hstack([top, np.full((n, k - top.shape[1]), -1)])
    clock("expected value, top k")
    return ChunkScores(churn=churn, propensity=propensity, uplift=uplift, expected_value=ev, top=top)


class _Clock:
    """Adds the time since the last call to ``timings[name]`` (a no-op without ``timings``)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def __call__(self, name: str) -> None:
        if self.timings is None:
            return
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self.last
        self.last = now


# --- the job ------------------------------------------------------------------------------------------------
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

    @property
    def customers_per_minute(self) -> float:
        core = self.seconds.get("score", 0.0)
        return self.customers / core * 60 if core > 0 else math.nan

    def lines(self) -> list[str]:
        mult = ", ".join(f"{m:g}x {c:,}" for m, c in sorted(self.multiplier_counts.items()))
        return [
            f"scored {self.customers:,} customers as of {day(self.as_of)} x {self.offers} offers "
            f"-> {self.out}",
            "models: " + ", ".join(f"{k} v{v}" for k, v in self.versions.items()),
            f"bonus multipliers: {mult}; cut-off {self.threshold:.4g} RUB kept per extra point "
            f"-> {self.multiplier_file}",
            f"reason codes for {self.reasons:,} customers (the riskiest; --reasons for everyone)",
            f"scoring core: {self.customers_per_minute:,.0f} customers/minute",
            "time: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items()),
        ]


def reason_text(scorer: Scorer, matrix: np.ndarray, k: int = 3) -> list[str]:
    """The top ``k`` reasons raising each churn score, in words, joined by "; "."""
    found = explain(
        scorer.contributions(matrix),
        matrix,
        scorer.features,
        scorer.reference,
        k=k,
    )
    return ["; ".join(r.phrase for r in reasons) for reasons in found]


def customer_value(
    features: np.ndarray, names: Sequence[str], churn: np.ndarray, margin_rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """(V, base points) of the multiplier policy, from the feature vectors (see the module docstring)."""
    where = {n: i for i, n in enumerate(names)}
    spend = (
        np.nan_to_num(features[:, where["txn_amount_365d"]], nan=0.0) if "txn_amount_365d" in where else 0.0
    )
    points = (
        np.nan_to_num(features[:, where["points_earned_30d"]], nan=0.0)
        if "points_earned_30d" in where
        else 0.0
    )
    value = np.maximum(np.asarray(spend, dtype=np.float64), 0.0) * margin_rate * np.ones(len(features))
    base = np.maximum(np.asarray(points, dtype=np.float64), 0.0) * (1.0 - churn)
    return value, base


def write_multiplier(path: Path, doc: dict[str, Any]) -> Path:
    """Write atomically (the service may be reading it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    tmp.replace(path)
    return path


def load_models(
    catalogue: pd.DataFrame, *, tracking_uri: str | None = None, uplift: bool = True
) -> ScoringModels:
    """The churn and offer champions (both required) and the uplift champion when there is one (and
    ``uplift``; without it expected values use the propensity formula). Their trees are compiled
    (``ScoringModels.build``)."""
    from models.uplift_job import load_uplift

    tracking_uri = use_store(tracking_uri)
    churn = load_champion(CHURN_MODEL, tracking_uri=tracking_uri)
    offers = load_champion(OFFER_MODEL, tracking_uri=tracking_uri)
    scorers = None
    if uplift:
        try:
            scorers = load_uplift(tracking_uri=tracking_uri)
        except Unavailable as exc:
            log.info("no uplift model (%s): expected values use the propensity formula", exc.message)
    versions = {CHURN_MODEL: churn.version, OFFER_MODEL: offers.version}
    if scorers is not None:
        versions["loyalty-offer-uplift"] = str(scorers.version)
    return ScoringModels.build(churn.scorer, offers.scorer, catalogue, uplift=scorers, versions=versions)


def score_all(
    engine: Engine,
    *,
    rules: Rules,
    as_of: Any,
    out: Path,
    k: int = TOP_K,
    reasons_top: int = REASONS_TOP,
    reasons_all: bool = False,
    multiplier_budget: float | None = None,
    margin_rate: float = MARGIN_RATE,
    caps: FrequencyCaps = DEFAULT_CAPS,
    multiplier_file: Path = MULTIPLIER_FILE,
    tracking_uri: str | None = None,
    models: ScoringModels | None = None,
    uplift: bool = True,
    chunk: int = CHUNK,
    progress: Progress | None = None,
) -> ScoreReport:
    """Score every customer known before ``as_of`` and write ``out`` (Parquet, or CSV for ``.csv``)."""
    tick = progress or no_progress
    cutoff = parse_date(as_of)
    if cutoff is None:
        raise InvalidInput("--as-of DATE is required", field="as_of")
    out = Path(out)
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise InvalidInput(f"--out {out}: give a .parquet or .csv file", field="out")
    if k < 1:
        raise InvalidInput("--top-k must be at least 1", field="top_k")
    seconds: dict[str, float] = {}
    with timed(seconds, "models"):
        catalogue = read_catalogue(engine)
        models = models or load_models(catalogue, tracking_uri=tracking_uri, uplift=uplift)
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
    active = _activations(frames, ids, models.catalog, now)
    counts = _contacts(frames, ids, models.catalog, now, caps)
    n = len(ids)
    churn = np.empty(n)
    top = np.full((n, k), -1, dtype=np.int64)
    top_p = np.full((n, k), np.nan)
    top_u = np.full((n, k), np.nan)
    top_ev = np.full((n, k), np.nan)
    with timed(seconds, "score"):
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            part = ContactCounts(
                counts.total[start:stop], counts.in_channel[start:stop], counts.per_offer[start:stop]
            )
            s = score_matrix(
                models, matrix[start:stop], k=k, active=active[start:stop], counts=part, caps=caps
            )
            churn[start:stop] = s.churn
            top[start:stop] = s.top
            picked = np.where(s.top >= 0, s.top, 0)
            has = s.top >= 0
            top_p[start:stop] = np.where(has, np.take_along_axis(s.propensity, picked, axis=1), np.nan)
            top_ev[start:stop] = np.where(has, np.take_along_axis(s.expected_value, picked, axis=1), np.nan)
            if s.uplift is not None:
                top_u[start:stop] = np.where(has, np.take_along_axis(s.uplift, picked, axis=1), np.nan)
            tick("score", stop - start, n)
        value, base = customer_value(matrix, FEATURE_NAMES, churn, margin_rate)
        allocation = allocate_multipliers(
            churn, value, base, policy=MultiplierPolicy(), budget=multiplier_budget
        )
    reasons: list[str | None] = [None] * n
    with timed(seconds, "reasons"):
        who = np.arange(n) if reasons_all else np.argsort(-churn, kind="stable")[: max(0, reasons_top)]
        if len(who):
            text = reason_text(models.churn, models.churn_inputs.matrix(matrix[who]))
            for i, t in zip(who.tolist(), text, strict=True):
                reasons[i] = t
        tick("reasons", 1, 1)
    with timed(seconds, "write"):
        offer_ids = np.asarray(models.catalog.offer_ids, dtype=object)
        columns: dict[str, Any] = {
            "customer_id": ids.to_numpy(),
            "churn_probability": churn,
            "bonus_multiplier": allocation.multiplier,
        }
        for j in range(k):
            names = offer_ids[np.maximum(top[:, j], 0)]
            names[top[:, j] < 0] = None
            columns[f"offer_{j + 1}"] = names
            columns[f"offer_{j + 1}_propensity"] = top_p[:, j]
            columns[f"offer_{j + 1}_uplift"] = top_u[:, j]
            columns[f"offer_{j + 1}_expected_value"] = top_ev[:, j]
        columns["churn_reasons"] = reasons
        frame = pd.DataFrame(columns)
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
            "written_at": dt.datetime.now(dt.UTC).isoformat(),
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".csv":
            frame.to_csv(out, index=False)
        else:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            meta = dict(table.schema.metadata or {})
            meta[b"loyalty.scores"] = json.dumps(
                {k_: v for k_, v in doc.items() if k_ != "written_at"}
            ).encode()
            pq.write_table(table.replace_schema_metadata(meta), out, compression="zstd")
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
        offers=len(models.catalog),
        versions=models.versions,
        multiplier_counts={float(a): int(b) for a, b in zip(levels, counts_by, strict=True)},
        threshold=allocation.threshold,
        multiplier_file=shared,
        reasons=sum(r is not None for r in reasons),
        example_customer=example,
        seconds=seconds,
    )


def _activations(frames: Any, ids: pd.Series, catalog: OfferCatalog, now: dt.datetime) -> np.ndarray:
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


def _contacts(
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
