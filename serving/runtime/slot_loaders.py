"""How each slot of the served state loads its value and tells that its source changed.

The models come from the MLflow registry (``champion`` alias), the features from the online table, the
catalogue from the ledger's offers, the multiplier rule from the file the last ``loyalty score`` wrote. A
probe answers a cheap stamp; the slot reloads only when it moves.

What a bank may not have at all (an offer champion, an offers catalogue, an uplift champion: a bank that
only has transactions trains churn alone) is ``NotConfigured``, so ``/health`` reads ``absent`` with the
reason rather than a failure; the messages below are shown to anonymous callers, so they name no path.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty_core import (
    InvalidInput,
    Rules,
    Unavailable,
    list_offers,
)
from models import (
    CHAMPION,
    UPLIFT_MODEL,
    Champion,
    MultiplierPolicy,
    OfferCatalog,
    UpliftScorers,
    aliased_version,
    catalogue_frame,
    job_params_in_use,
    load_champion,
    load_uplift,
)
from pipelines import ONLINE, FeatureConfig, OnlineFeatures, feature_version
from serving.runtime.served_models import Catalogue, Features, MultiplierRule
from serving.runtime.slots import NotConfigured, Slot

OFFERS_ABSENT = "no offer champion: the service scores churn only (train one with `loyalty train offers`)"
CATALOGUE_ABSENT = "no offers catalogue: the ledger holds no offer (import offers to rank them)"


def model_slot(
    name: str, label: str, uri: str, build: Callable[[Champion], Any], *, absent: str | None = None
) -> Slot[Any]:
    """A champion from the registry. ``absent``: the model is optional, and this says what the service does
    without it; no ``champion`` alias then reads as not configured instead of a failure."""
    client_box: list[Any] = []

    def client() -> Any:
        if not client_box:
            from mlflow import MlflowClient

            client_box.append(MlflowClient(tracking_uri=uri, registry_uri=uri))
        return client_box[0]

    def probe() -> str | None:
        version = aliased_version(client(), name, CHAMPION, uri)
        return None if version is None else str(version.version)

    def load() -> tuple[Any, str]:
        if absent is not None and probe() is None:
            raise NotConfigured(absent)
        champion = load_champion(name, tracking_uri=uri, num_threads=1)
        return build(champion), champion.version

    return Slot(label, load, probe)


UPLIFT_ABSENT = "no uplift champion: expected values use the propensity formula"


def uplift_slot(uri: str) -> Slot[UpliftScorers]:
    """Optional: without an uplift champion the policy falls back to propensity x (value - cost)."""
    client_box: list[Any] = []

    def probe() -> str | None:
        if not client_box:
            from mlflow import MlflowClient

            client_box.append(MlflowClient(tracking_uri=uri, registry_uri=uri))
        version = aliased_version(client_box[0], UPLIFT_MODEL, CHAMPION, uri)
        return None if version is None else str(version.version)

    def load() -> tuple[UpliftScorers, str]:
        if probe() is None:  # expected: the job promotes an uplift model only when it beats the propensity
            raise NotConfigured(UPLIFT_ABSENT)
        scorers = load_uplift(tracking_uri=uri, num_threads=1)
        return scorers, str(scorers.version)

    return Slot("uplift model", load, probe)


def multiplier_slot(path: Path) -> Slot[MultiplierRule]:
    """The rule of the last ``loyalty score`` run; the default rule (no budget) until there is one."""

    def stamp() -> str:
        try:
            return f"m-{path.stat().st_mtime_ns}"
        except OSError:
            return "default"

    def load() -> tuple[MultiplierRule, str]:
        version = stamp()
        if version == "default":
            return MultiplierRule(
                MultiplierPolicy().point_value, job_params_in_use().scoring.margin_rate, MultiplierPolicy()
            ), version
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            policy = MultiplierPolicy(
                levels=tuple(float(x) for x in doc["levels"]),
                effect=tuple(float(x) for x in doc["effect"]),
                point_value=float(doc["point_value"]),
            )
            rule = MultiplierRule(float(doc["threshold"]), float(doc["margin_rate"]), policy)
        except (OSError, ValueError, KeyError, TypeError, InvalidInput) as exc:
            raise Unavailable(f"the multiplier rule {path} cannot be read: {exc}") from exc
        return rule, version

    return Slot("multiplier rule", load, stamp)


def online_stamp(engine: Engine) -> str | None:
    with engine.connect() as conn:
        stamp = conn.execute(select(func.max(ONLINE.c.written_at))).scalar()
    return None if stamp is None else stamp.isoformat()


def features_slot(engine: Engine, rules: Rules) -> Slot[Features]:
    catalogue = FeatureConfig.from_rules(rules).catalogue
    names = tuple(f.name for f in catalogue)
    version = feature_version(catalogue)

    def load() -> tuple[Features, str]:
        stamp = online_stamp(engine)
        online = OnlineFeatures(engine, version=version, names=names).load()
        if len(online) == 0:
            raise Unavailable(
                f"the online feature table holds no customer of feature version {version}: "
                "run `loyalty features --as-of DATE` first"
            )
        return Features(online, names), stamp or "empty"

    return Slot("online features", load, lambda: online_stamp(engine))


def catalogue_rows(engine: Engine) -> list[dict[str, Any]]:
    with Session(engine) as session:
        return [
            {
                "offer_id": o.id,
                "name": o.name,
                "kind": o.kind,
                "multiplier": float(o.multiplier),
                "bonus_points": o.bonus_points,
                "threshold": None if o.threshold is None else float(o.threshold),
                "categories": o.categories,
                "txn_types": o.txn_types,
                "channels": o.channels,
                "duration_days": o.duration_days,
                "cost": float(o.cost),
                "value": float(o.value),
                "min_tier": o.min_tier,
                "active": o.active,
                "attributes": o.attributes,
            }
            for o in list_offers(session)
        ]


def catalogue_digest(rows: list[dict[str, Any]]) -> str:
    text = json.dumps(rows, sort_keys=True, default=str)
    return "c-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def catalogue_slot(engine: Engine, rules: Rules) -> Slot[Catalogue]:
    tiers = tuple(t.name for t in rules.tiers)

    def load() -> tuple[Catalogue, str]:
        rows = catalogue_rows(engine)
        if not rows:  # a bank without offers (churn alone): expected, not a failure
            raise NotConfigured(CATALOGUE_ABSENT)
        active = [r for r in rows if r["active"]]
        if not active:
            raise Unavailable(
                "the offers catalogue has no active offer: add one with PUT /v1/offers/{offer_id}"
            )
        catalogue = Catalogue(
            frame=catalogue_frame(rows),
            active_ids=tuple(r["offer_id"] for r in active),
            policy=OfferCatalog.from_records(active, tiers=tiers),
            completable=np.array([r["kind"] != "informational" for r in active], dtype=bool),
        )
        return catalogue, catalogue_digest(rows)

    return Slot("offers catalogue", load, lambda: catalogue_digest(catalogue_rows(engine)))
