"""What the scoring routes read: the champion models, the online features and the offers catalogue, each in
a hot-swappable ``Slot``, plus the policy settings.

A request takes one ``Snapshot`` (one ``slot.get()`` per slot) and uses it throughout, so its answer names
exactly the versions that produced it, however many reloads happen meanwhile. Loading happens off the event
loop (start-up waits for it up to ``LOYALTY_MODEL_LOAD_TIMEOUT_SECONDS``, then serves degraded while it
goes on); afterwards a background task asks every ``LOYALTY_MODEL_POLL_SECONDS`` whether the registry's
``champion`` alias moved, the online table was refreshed or the catalogue changed, and reloads what did.
``POST /v1/admin/models/reload`` reloads everything at once in the worker that answers it; the other workers
follow at their next poll.

A slot that never loaded makes the scoring routes answer 503 with the reason (``model_unavailable``) and
``/health`` say ``degraded``; the ledger routes need none of this and keep working.

Models are scored on one LightGBM thread per call: the service runs one worker per core, and a thread pool
per call would fight the other worker for the same cores.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.orm import Session

from loyalty_core import (
    HIDE_PARAMETERS,
    ConfigurationError,
    InvalidInput,
    Rules,
    Settings,
    Unavailable,
    list_offers,
)
from models import (
    CHAMPION,
    MARGIN_RATE,
    MULTIPLIER_FILE,
    UPLIFT_MODEL,
    Champion,
    ChurnInputs,
    EpsilonGreedy,
    Exploration,
    FrequencyCaps,
    MultiplierPolicy,
    OfferCatalog,
    OfferInputs,
    ThompsonSampling,
    UpliftScorers,
    _hull_steps,
    _multiplier_inputs,
    aliased_version,
    catalogue_frame,
    customer_value,
    load_champion,
    load_uplift,
    use_store,
)
from pipelines import ONLINE, FeatureConfig, OnlineFeatures, feature_version
from serving.errors import redacted_traceback
from serving.slots import Loaded, NotConfigured, Slot

log = logging.getLogger(__name__)

CHURN_MODEL = "loyalty-churn"
OFFER_MODEL = "loyalty-offer-propensity"
REQUIRED = ("churn", "offers", "features", "catalogue")


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
        gain, extra = _multiplier_inputs(self.policy, np.clip(churn, 0.0, 1.0), value, base)
        who, _step, to, _dk, ratio = _hull_steps(gain, extra)
        bar = max(self.threshold, self.policy.point_value)
        level = np.zeros(len(churn), dtype=np.int64)
        above = ratio > bar
        np.maximum.at(level, who[above], to[above])
        return np.asarray(self.policy.levels, dtype=np.float64)[level]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one request reads, taken once at its start."""

    churn: Loaded[ChurnModel] | None
    offers: Loaded[Champion] | None
    uplift: Loaded[UpliftScorers] | None
    features: Loaded[Features]
    catalogue: Loaded[Catalogue]
    multiplier: Loaded[MultiplierRule] | None
    offer_model: OfferModel | None

    @property
    def versions(self) -> dict[str, str]:
        """The version of everything this request used (models it did not need are left out)."""
        out = {"features": self.features.version, "catalogue": self.catalogue.version}
        for name, loaded in (
            ("churn", self.churn),
            ("offers", self.offers),
            ("uplift", self.uplift),
            ("multiplier", self.multiplier),
        ):
            if loaded is not None:
                out[name] = loaded.version
        return out


# --- policy settings ----------------------------------------------------------------------------------------


def parse_policy(spec: str, *, epsilon: float, setting: str) -> Exploration | None:
    """``epsilon_greedy`` (share ``epsilon``), ``epsilon_greedy:<share>``, ``greedy``, ``thompson``,
    ``thompson:beta``; ``none``/empty -> None. ``setting`` names the variable in error messages."""
    text = spec.strip().lower()
    if text in ("", "none", "off"):
        return None
    if text in ("thompson", "thompson:gaussian"):
        return ThompsonSampling()
    if text == "thompson:beta":
        return ThompsonSampling(posterior="beta")
    if text == "greedy":
        return EpsilonGreedy(0.0)
    if text == "epsilon_greedy":
        return EpsilonGreedy(epsilon)
    if text.startswith("epsilon_greedy:"):
        try:
            return EpsilonGreedy(float(text.partition(":")[2]))
        except (ValueError, InvalidInput) as exc:
            raise ConfigurationError(f"{setting} {spec!r}: the share must be in [0, 1]") from exc
    raise ConfigurationError(
        f"{setting} {spec!r} is not one of epsilon_greedy, epsilon_greedy:<share>, greedy, thompson, "
        "thompson:beta, none"
    )


# --- loaders ------------------------------------------------------------------------------------------------


def _model_slot(name: str, label: str, uri: str, build: Callable[[Champion], Any]) -> Slot[Any]:
    client_box: list[Any] = []

    def client() -> Any:
        if not client_box:
            from mlflow import MlflowClient

            client_box.append(MlflowClient(tracking_uri=uri, registry_uri=uri))
        return client_box[0]

    def load() -> tuple[Any, str]:
        champion = load_champion(name, tracking_uri=uri, num_threads=1)
        return build(champion), champion.version

    def probe() -> str | None:
        version = aliased_version(client(), name, CHAMPION, uri)
        return None if version is None else str(version.version)

    return Slot(label, load, probe)


UPLIFT_ABSENT = "no uplift champion: expected values use the propensity formula"


def _uplift_slot(uri: str) -> Slot[UpliftScorers]:
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


def _multiplier_slot(path: Path) -> Slot[MultiplierRule]:
    """The rule of the last ``loyalty score`` run; the default rule (no budget) until there is one."""

    def stamp() -> str:
        try:
            return f"m-{path.stat().st_mtime_ns}"
        except OSError:
            return "default"

    def load() -> tuple[MultiplierRule, str]:
        version = stamp()
        if version == "default":
            return MultiplierRule(MultiplierPolicy().point_value, MARGIN_RATE, MultiplierPolicy()), version
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


def _online_stamp(engine: Engine) -> str | None:
    with engine.connect() as conn:
        stamp = conn.execute(select(func.max(ONLINE.c.written_at))).scalar()
    return None if stamp is None else stamp.isoformat()


def _features_slot(engine: Engine, rules: Rules) -> Slot[Features]:
    catalogue = FeatureConfig.from_rules(rules).catalogue
    names = tuple(f.name for f in catalogue)
    version = feature_version(catalogue)

    def load() -> tuple[Features, str]:
        stamp = _online_stamp(engine)
        online = OnlineFeatures(engine, version=version, names=names).load()
        if len(online) == 0:
            raise Unavailable(
                f"the online feature table holds no customer of feature version {version}: "
                "run `loyalty features --as-of DATE` first"
            )
        return Features(online, names), stamp or "empty"

    return Slot("online features", load, lambda: _online_stamp(engine))


def _catalogue_rows(engine: Engine) -> list[dict[str, Any]]:
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


def _digest(rows: list[dict[str, Any]]) -> str:
    text = json.dumps(rows, sort_keys=True, default=str)
    return "c-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def _catalogue_slot(engine: Engine, rules: Rules) -> Slot[Catalogue]:
    tiers = tuple(t.name for t in rules.tiers)

    def load() -> tuple[Catalogue, str]:
        rows = _catalogue_rows(engine)
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
        return catalogue, _digest(rows)

    return Slot("offers catalogue", load, lambda: _digest(_catalogue_rows(engine)))


# --- the state ----------------------------------------------------------------------------------------------


class ScoringState:
    """The slots of one worker process, the policy settings and the per-worker random generator."""

    def __init__(self, engine: Engine, rules: Rules, settings: Settings) -> None:
        self.engine = engine
        self.rules = rules
        self.settings = settings
        self.reader = reader_engine(engine)
        self.names = tuple(f.name for f in FeatureConfig.from_rules(rules).catalogue)
        # MLflow resolves ``models:/`` downloads from its process-wide store, whatever the client says:
        # point it at ours (each worker process does this once, at start).
        uri = use_store(None)
        self.tracking_uri = uri
        names = self.names
        self.churn: Slot[ChurnModel] = _model_slot(
            CHURN_MODEL, "churn model", uri, lambda c: ChurnModel(c, ChurnInputs.for_scorer(c.scorer, names))
        )
        self.offers: Slot[Champion] = _model_slot(OFFER_MODEL, "offer model", uri, lambda c: c)
        self.uplift = _uplift_slot(uri)
        self.features = _features_slot(self.reader, rules)
        self.catalogue = _catalogue_slot(self.reader, rules)
        self.multiplier = _multiplier_slot(settings.multiplier_file or MULTIPLIER_FILE)
        epsilon = settings.exploration_epsilon
        served = parse_policy(settings.policy, epsilon=epsilon, setting="LOYALTY_POLICY")
        if served is None:
            raise ConfigurationError("LOYALTY_POLICY cannot be none: the service needs a policy to serve")
        self.exploration: Exploration = served
        self.shadow = parse_policy(settings.shadow_policy, epsilon=epsilon, setting="LOYALTY_SHADOW_POLICY")
        self.caps = FrequencyCaps(
            window=dt.timedelta(days=settings.cap_window_days),
            per_customer=settings.cap_per_customer,
            per_channel=settings.cap_per_channel,
            per_offer=settings.cap_per_offer,
        )
        self.rng = np.random.default_rng()
        self._offer_model: tuple[Any, ...] | None = None
        self._offer_model_error: tuple[Any, ...] | None = None  # (*key, Unavailable) of the last failure
        self._build_lock = threading.Lock()

    @property
    def slots(self) -> dict[str, Slot[Any]]:
        return {
            "churn": self.churn,
            "offers": self.offers,
            "uplift": self.uplift,
            "features": self.features,
            "catalogue": self.catalogue,
            "multiplier": self.multiplier,
        }

    # --- loading ------------------------------------------------------------------------------------------
    def reload(self) -> dict[str, dict[str, Any]]:
        """Load every slot afresh (blocking: call it in a thread); returns the statuses."""
        for slot in self.slots.values():
            slot.reload()
        return self.status()

    def refresh(self) -> None:
        """Reload the slots whose source changed, or that never loaded (blocking: call it in a thread)."""
        for slot in self.slots.values():
            slot.refresh_if_changed()

    def status(self) -> dict[str, dict[str, Any]]:
        """Each slot's status; the optional uplift model is ``absent`` (not degraded) when none exists."""
        out = {name: slot.status() for name, slot in self.slots.items()}
        if out["uplift"]["error"] == UPLIFT_ABSENT and out["uplift"]["version"] is None:
            out["uplift"]["status"] = "absent"
        return out

    def healthy(self) -> bool:
        statuses = self.status()
        return all(statuses[name]["status"] == "ok" for name in REQUIRED)

    async def poll(self) -> None:
        """Background task: ``refresh`` every ``model_poll_seconds`` (never raises; cancelled at shutdown)."""
        interval = self.settings.model_poll_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.refresh)
            except Exception as exc:  # a poll that fails must not end polling
                log.error("model poll failed\n%s", redacted_traceback(exc))

    # --- reading ------------------------------------------------------------------------------------------
    def catalogue_frame(self) -> pd.DataFrame:
        """Every offer, withdrawn ones too (rewards of old decisions need their value and cost)."""
        try:
            return self.catalogue.get().value.frame
        except Unavailable:
            return catalogue_frame(_catalogue_rows(self.reader))

    def snapshot(self, *, churn: bool, offers: bool) -> Snapshot:
        """One consistent view for a request; ``Unavailable`` (503) naming what is missing."""
        features = self.features.get()
        catalogue = self.catalogue.get()
        churn_loaded = self.churn.get() if churn else None
        multiplier = self.multiplier.get() if churn else None
        offers_loaded = self.offers.get() if offers else None
        uplift = self.uplift.current() if offers else None
        model = self._model_for(offers_loaded, uplift, catalogue) if offers_loaded is not None else None
        return Snapshot(churn_loaded, offers_loaded, uplift, features, catalogue, multiplier, model)

    def _model_for(
        self, offers: Loaded[Champion], uplift: Loaded[UpliftScorers] | None, catalogue: Loaded[Catalogue]
    ) -> OfferModel:
        """The input builders for this catalogue, built once per (offer model, uplift model, catalogue)."""
        key = (offers, uplift, catalogue)
        cached = self._offer_model
        if cached is not None and all(a is b for a, b in zip(cached[:3], key, strict=True)):
            model: OfferModel = cached[3]
            return model
        with self._build_lock:
            cached = self._offer_model
            if cached is not None and all(a is b for a, b in zip(cached[:3], key, strict=True)):
                model = cached[3]
                return model
            failed = self._offer_model_error
            if failed is not None and all(a is b for a, b in zip(failed[:3], key, strict=True)):
                # Known since the first request: neither rebuilt nor logged again (a fresh exception
                # each time: one instance raised again and again would grow its traceback).
                raise Unavailable(failed[3].message, code="model_unavailable")
            frame = catalogue.value.frame
            try:
                inputs = OfferInputs.for_scorer(offers.value.scorer, frame, self.names)
            except InvalidInput as exc:
                error = Unavailable(
                    f"offer model version {offers.version} cannot score this catalogue: {exc.message}",
                    code="model_unavailable",
                )
                log.error("%s", error.message)  # once per (model, catalogue): requests get the 503
                self._offer_model_error = (*key, error)
                raise error from exc
            scorers = None if uplift is None else uplift.value
            uplift_inputs = None
            if scorers is not None and tuple(scorers.features) != inputs.columns:
                try:
                    uplift_inputs = OfferInputs(self.names, frame, columns=scorers.features)
                except InvalidInput as exc:  # the optional model cannot help here: rank without it
                    log.warning("uplift model cannot score this catalogue: %s", exc.message)
                    scorers = None
            model = OfferModel(offers.value, inputs, scorers, uplift_inputs)
            self._offer_model = (*key, model)
            return model


def reader_engine(engine: Engine) -> Engine:
    """An engine for reads that never queue behind writers.

    On SQLite the main engine begins every transaction with ``BEGIN IMMEDIATE`` (the ledger reads then
    writes, and must hold the write lock from the start); a ranking or a feature load only reads, and in
    WAL mode a plain read sees a consistent snapshot without taking or waiting for that lock. Other
    databases read under their normal isolation: the main engine serves.
    """
    url = engine.url
    if engine.dialect.name != "sqlite" or url.database in (None, "", ":memory:"):
        return engine
    reader = create_engine(url, connect_args={"timeout": 30}, hide_parameters=HIDE_PARAMETERS)

    @event.listens_for(reader, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    return reader


def customer_ids_with_features(engine: Engine, version: str) -> list[str]:
    """Every customer with an online feature row of ``version`` (for campaigns over the whole base)."""
    q = select(ONLINE.c.customer_id).where(ONLINE.c.feature_version == version)
    with engine.connect() as conn:
        return [str(c) for c in conn.execute(q).scalars()]
