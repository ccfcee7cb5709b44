"""The scoring job's pure core: the champions ready to score, and ``score_matrix``, numpy end to end from
customer vectors to churn, offer propensities, uplift, expected values and the top offers (see
``models.jobs.scoring`` for the steps; ``benchmarks/batch_scoring.py`` times them), plus the customer value
of the multiplier policy and the churn reasons in words.

Without an offer model (a bank that only has transactions trains churn alone) the same steps score churn
only: ``ScoringModels.churn_only`` holds no offer side, and ``score_frame`` leaves the offer columns out
rather than writing empty ones a reader could take for "no offer is worth sending".
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from loyalty_core import InvalidInput
from models.inputs import ChurnInputs, OfferInputs
from models.jobs.common import Progress, no_progress
from models.policy import (
    NO_CAPS,
    ContactCounts,
    Exclusion,
    FrequencyCaps,
    OfferCatalog,
    eligibility_matrix,
    expected_value,
)
from models.reasons import explain
from models.scorer.scorer import Scorer
from pipelines import CHANNELS, FEATURE_NAMES


@dataclass(frozen=True, slots=True, eq=False)
class ScoringModels:
    """The champions and their input builders, aligned with the offers to score (active, completable).

    The offer side (``offers``, ``offer_inputs``, ``catalog``) is None for churn alone, and
    ``offers_absent`` then says why (no offer champion, no catalogue), for the report and the file's
    metadata.
    """

    churn: Scorer
    churn_inputs: ChurnInputs
    offers: Scorer | None
    offer_inputs: OfferInputs | None
    catalog: OfferCatalog | None  # the offers scored, in this order
    positions: np.ndarray  # their positions in offer_inputs.offer_ids
    uplift: Any = None  # models.registry.uplift_model.UpliftScorers
    uplift_inputs: OfferInputs | None = None
    versions: dict[str, str] = field(default_factory=dict)
    compiled: bool = (
        False  # every model scores through lleaves (models.scorer.compiled), not LightGBM's predict
    )
    offers_absent: str | None = None  # why there is no offer side (None: there is one)

    @classmethod
    def churn_only(
        cls,
        churn: Scorer,
        *,
        reason: str,
        feature_names: Sequence[str] = FEATURE_NAMES,
        versions: dict[str, str] | None = None,
        compile: bool = True,
    ) -> ScoringModels:
        """The churn champion alone (``reason``: why offers are not scored, e.g. "no offer champion")."""
        return cls(
            churn=churn,
            churn_inputs=ChurnInputs.for_scorer(churn, feature_names),
            offers=None,
            offer_inputs=None,
            catalog=None,
            positions=np.empty(0, dtype=np.int64),
            versions=dict(versions or {}),
            compiled=churn.compile() if compile else False,
            offers_absent=reason,
        )

    @property
    def offer_count(self) -> int:
        """How many offers are scored (0 for churn alone)."""
        return 0 if self.catalog is None else len(self.catalog)

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
        about four times faster; see ``models.scorer.compiled``)."""
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
    k: int = 3,
    active: np.ndarray | None = None,
    counts: ContactCounts | None = None,
    caps: FrequencyCaps = NO_CAPS,
    timings: dict[str, float] | None = None,
) -> ChunkScores:
    """Churn, offer propensities, uplift, expected values and the top ``k`` offers for customer vectors
    (rows in the feature catalogue's order). Pure numpy; see the module docstring for the steps."""
    clock = Clock(timings)
    names = models.churn_inputs.feature_names
    where = {n: i for i, n in enumerate(names)}
    n, m = len(customers), models.offer_count
    churn_x = models.churn_inputs.matrix(customers)
    clock("churn inputs")
    churn = models.churn.predict_proba(churn_x)
    clock("churn model")
    if models.offers is None or models.offer_inputs is None or models.catalog is None:
        return ChunkScores(
            churn=churn,
            propensity=np.empty((n, 0)),
            uplift=None,
            expected_value=np.empty((n, 0)),
            top=np.full((n, k), -1, dtype=np.int64),
        )
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


class Clock:
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


@dataclass(frozen=True, slots=True)
class ScoringSlices:
    """Per customer (rows of the feature matrix): running activations and past contacts, for eligibility."""

    active: np.ndarray
    counts: ContactCounts

    def rows(self, start: int, stop: int) -> tuple[np.ndarray, ContactCounts]:
        counts = self.counts
        part = ContactCounts(
            counts.total[start:stop], counts.in_channel[start:stop], counts.per_offer[start:stop]
        )
        return self.active[start:stop], part


@dataclass(slots=True)
class TopOffers:
    """The whole base scored: churn, and the top ``k`` offers (positions in the catalog, -1 = none) with
    their propensity, uplift and expected value (NaN where there is no offer)."""

    churn: np.ndarray
    top: np.ndarray
    propensity: np.ndarray
    uplift: np.ndarray
    expected_value: np.ndarray


def score_base(
    models: ScoringModels,
    matrix: np.ndarray,
    slices: ScoringSlices,
    *,
    k: int,
    caps: FrequencyCaps,
    chunk: int,
    progress: Progress = no_progress,
) -> TopOffers:
    """``score_matrix`` chunk by chunk over every customer, keeping each one's top ``k`` offers."""
    n = len(matrix)
    out = TopOffers(
        churn=np.empty(n),
        top=np.full((n, k), -1, dtype=np.int64),
        propensity=np.full((n, k), np.nan),
        uplift=np.full((n, k), np.nan),
        expected_value=np.full((n, k), np.nan),
    )
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        active, counts = slices.rows(start, stop)
        s = score_matrix(models, matrix[start:stop], k=k, active=active, counts=counts, caps=caps)
        out.churn[start:stop] = s.churn
        progress("score", stop - start, n)
        if models.catalog is None:  # churn alone: no offer to keep
            continue
        out.top[start:stop] = s.top
        picked = np.where(s.top >= 0, s.top, 0)
        has = s.top >= 0
        out.propensity[start:stop] = np.where(has, np.take_along_axis(s.propensity, picked, axis=1), np.nan)
        out.expected_value[start:stop] = np.where(
            has, np.take_along_axis(s.expected_value, picked, axis=1), np.nan
        )
        if s.uplift is not None:
            out.uplift[start:stop] = np.where(has, np.take_along_axis(s.uplift, picked, axis=1), np.nan)
    return out


def churn_reasons(
    models: ScoringModels, matrix: np.ndarray, churn: np.ndarray, *, everyone: bool, top: int
) -> list[str | None]:
    """The churn reasons in words of every customer (``everyone``) or of the ``top`` riskiest; None for the
    others (reason codes cost milliseconds each)."""
    n = len(matrix)
    reasons: list[str | None] = [None] * n
    who = np.arange(n) if everyone else np.argsort(-churn, kind="stable")[: max(0, top)]
    if len(who):
        text = reason_text(models.churn, models.churn_inputs.matrix(matrix[who]))
        for i, t in zip(who.tolist(), text, strict=True):
            reasons[i] = t
    return reasons


def score_frame(
    ids: pd.Series,
    scores: TopOffers,
    offer_ids: Sequence[str] | None,
    multiplier: np.ndarray,
    reasons: Sequence[str | None],
) -> pd.DataFrame:
    """The scores file's rows: one per customer, its offers in columns ``offer_1``, ``offer_1_uplift``...

    ``offer_ids`` None (churn alone): no offer column at all, so the file cannot be read as "scored, and
    no offer was worth sending"; the report and the Parquet metadata say why they are absent.
    """
    names_of = np.asarray(offer_ids, dtype=object)
    columns: dict[str, Any] = {
        "customer_id": ids.to_numpy(),
        "churn_probability": scores.churn,
        "bonus_multiplier": multiplier,
    }
    top = scores.top
    for j in range(top.shape[1] if offer_ids is not None else 0):
        names = names_of[np.maximum(top[:, j], 0)]
        names[top[:, j] < 0] = None
        columns[f"offer_{j + 1}"] = names
        columns[f"offer_{j + 1}_propensity"] = scores.propensity[:, j]
        columns[f"offer_{j + 1}_uplift"] = scores.uplift[:, j]
        columns[f"offer_{j + 1}_expected_value"] = scores.expected_value[:, j]
    columns["churn_reasons"] = list(reasons)
    return pd.DataFrame(columns)
