"""What the slots hold: the champion models, the online features, the offers catalogue and the multiplier
rule, each wrapped with what a request needs to score with it, and the ``Snapshot`` one request reads.

A request takes one ``Snapshot`` and uses it throughout, so its answer names exactly the versions that
produced it, however many reloads happen meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from loyalty_core import Unavailable
from models import (
    Champion,
    ChurnInputs,
    MultiplierPolicy,
    OfferCatalog,
    OfferInputs,
    UpliftScorers,
    customer_value,
    hull_steps,
    multiplier_inputs,
)
from pipelines import OnlineFeatures
from serving.runtime.slots import Loaded

# --- what the slots hold ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class ChurnModel:
    champion: Champion
    inputs: ChurnInputs


@dataclass(frozen=True, slots=True, eq=False)
class Features:
    online: OnlineFeatures
    names: tuple[str, ...]

    def vector(self, customer_id: str) -> tuple[np.ndarray, bool]:
        """The customer's vector, or the all-missing cold-start vector (and False) for an unknown one."""
        row = self.online.get(customer_id)
        if row is None:
            return np.full(len(self.names), np.nan), False
        return row, True


@dataclass(frozen=True, slots=True, eq=False)
class Catalogue:
    """The offers table: every offer (withdrawn too, for rewards and campaigns) and the active ones."""

    frame: pd.DataFrame  # ``models.assemble.catalogue_frame`` of every offer
    active_ids: tuple[str, ...]
    policy: OfferCatalog  # the active offers, positions aligned with ``active_ids``
    completable: np.ndarray  # per active offer: False for informational offers (they never complete)

    @property
    def completable_at(self) -> np.ndarray:
        return np.flatnonzero(self.completable)

    @property
    def completable_ids(self) -> list[str]:
        return [self.active_ids[j] for j in self.completable_at]

    def offer(self, offer_id: str) -> dict[str, Any] | None:
        hit = self.frame[self.frame["offer_id"] == offer_id]
        return None if hit.empty else dict(hit.iloc[0])


class OfferScores(NamedTuple):
    propensity: np.ndarray  # (n, active offers), 0 where the offer cannot complete
    uplift: np.ndarray | None  # (n, active offers), NaN where there is no estimate; None without a model
    inputs: np.ndarray  # (n, completable offers, inputs): the rows the offer model scored


@dataclass(frozen=True, slots=True, eq=False)
class OfferModel:
    """The offer model's champion (and the uplift champion, when there is one) with their input builders
    for one catalogue version."""

    champion: Champion
    inputs: OfferInputs
    uplift: UpliftScorers | None = None
    uplift_inputs: OfferInputs | None = None

    def score(self, customers: np.ndarray, catalogue: Catalogue) -> OfferScores:
        """Propensities (and uplift) of every active offer for each customer: one predict call per model."""
        n, m = len(customers), len(catalogue.active_ids)
        propensity = np.zeros((n, m))
        uplift = None if self.uplift is None else np.full((n, m), np.nan)
        ok = catalogue.completable_at
        width = len(self.inputs.columns)
        if n == 0 or len(ok) == 0:
            return OfferScores(propensity, uplift, np.empty((n, len(ok), width)))
        ids = catalogue.completable_ids
        matrix = self.inputs.matrix(customers, ids)
        propensity[:, ok] = self.champion.scorer.predict_proba(matrix).reshape(n, len(ok))
        if self.uplift is not None and uplift is not None:
            x = matrix if self.uplift_inputs is None else self.uplift_inputs.matrix(customers, ids)
            uplift[:, ok] = np.clip(self.uplift.predict(x), -1.0, 1.0).reshape(n, len(ok))
        return OfferScores(propensity, uplift, matrix.reshape(n, len(ok), width))

    def score_offer(self, customers: np.ndarray, offer_id: str) -> tuple[np.ndarray, np.ndarray | None]:
        """One offer for many customers (campaigns): propensity and uplift (None without a model)."""
        matrix = self.inputs.matrix(customers, [offer_id])
        p = self.champion.scorer.predict_proba(matrix)
        if self.uplift is None:
            return p, None
        x = matrix if self.uplift_inputs is None else self.uplift_inputs.matrix(customers, [offer_id])
        return p, np.clip(self.uplift.predict(x), -1.0, 1.0)


@dataclass(frozen=True, slots=True, eq=False)
class MultiplierRule:
    """``models.policy.multiplier_for`` with the budget's shadow price of the last ``loyalty score`` run."""

    threshold: float
    margin_rate: float
    policy: MultiplierPolicy

    def apply(self, churn: np.ndarray, customers: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """``multiplier_for`` of every customer at once (one customer alone costs ~100 us of numpy calls).

        Each customer climbs their hull of multiplier steps while a step keeps more than ``threshold`` per
        extra point; along a hull the ratios fall, so the steps taken are those above the bar and the level
        is the highest they reach (a test checks this against ``multiplier_for``, customer by customer).
        """
        value, base = customer_value(customers, names, churn, self.margin_rate)
        gain, extra = multiplier_inputs(self.policy, np.clip(churn, 0.0, 1.0), value, base)
        who, _step, to, _dk, ratio = hull_steps(gain, extra)
        bar = max(self.threshold, self.policy.point_value)
        level = np.zeros(len(churn), dtype=np.int64)
        above = ratio > bar
        np.maximum.at(level, who[above], to[above])
        return np.asarray(self.policy.levels, dtype=np.float64)[level]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one request reads, taken once at its start.

    ``catalogue`` and ``offer_model`` are None when the request scores churn alone (a bank without an
    offer champion); ``offers_absent`` then says why, for the answer.
    """

    churn: Loaded[ChurnModel] | None
    offers: Loaded[Champion] | None
    uplift: Loaded[UpliftScorers] | None
    features: Loaded[Features]
    catalogue: Loaded[Catalogue] | None
    multiplier: Loaded[MultiplierRule] | None
    offer_model: OfferModel | None
    offers_absent: str | None = None

    @property
    def offer_catalogue(self) -> Catalogue:
        """The catalogue of a request that ranks offers (``Unavailable`` if this one took none)."""
        if self.catalogue is None:
            why = self.offers_absent or "no offers catalogue"
            raise Unavailable(f"offers are not served: {why}", code="model_unavailable")
        return self.catalogue.value

    @property
    def versions(self) -> dict[str, str]:
        """The version of everything this request used (models it did not need are left out)."""
        out = {"features": self.features.version}
        if self.catalogue is not None:
            out["catalogue"] = self.catalogue.version
        for name, loaded in (
            ("churn", self.churn),
            ("offers", self.offers),
            ("uplift", self.uplift),
            ("multiplier", self.multiplier),
        ):
            if loaded is not None:
                out[name] = loaded.version
        return out
