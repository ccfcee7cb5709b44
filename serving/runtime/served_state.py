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

Churn alone. The offer champion and the offers catalogue are optional: a bank that only has transactions
trains churn alone. Without an offer champion (its slot ``absent``, not failed) ``/v1/score`` answers churn
and multipliers with no offers and says why (``offers_absent``), the offer routes answer 503 with that
reason, and ``/health`` stays ``ok`` and lists what is served (``serves``). An offer champion that exists
but failed to load is a fault: ``/v1/score`` answers 503 as before and ``/health`` is ``degraded``.

Models are scored on one LightGBM thread per call: the service runs one worker per core, and a thread pool
per call would fight the other worker for the same cores.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, create_engine, event, select

from loyalty_core import (
    HIDE_PARAMETERS,
    ConfigurationError,
    InvalidInput,
    Rules,
    Settings,
    Unavailable,
)
from models import (
    MULTIPLIER_FILE,
    Champion,
    ChurnInputs,
    EpsilonGreedy,
    Exploration,
    FrequencyCaps,
    OfferInputs,
    ThompsonSampling,
    UpliftScorers,
    catalogue_frame,
    use_store,
)
from pipelines import ONLINE, FeatureConfig
from serving.runtime.redaction import redacted_traceback
from serving.runtime.served_models import Catalogue, ChurnModel, OfferModel, Snapshot
from serving.runtime.slot_loaders import (
    OFFERS_ABSENT,
    catalogue_rows,
    catalogue_slot,
    features_slot,
    model_slot,
    multiplier_slot,
    uplift_slot,
)
from serving.runtime.slots import Loaded, Slot

log = logging.getLogger(__name__)

CHURN_MODEL = "loyalty-churn"
OFFER_MODEL = "loyalty-offer-propensity"
REQUIRED = ("churn", "features")  # the offer side is required only when an offer champion exists


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
        self.churn: Slot[ChurnModel] = model_slot(
            CHURN_MODEL, "churn model", uri, lambda c: ChurnModel(c, ChurnInputs.for_scorer(c.scorer, names))
        )
        self.offers: Slot[Champion] = model_slot(
            OFFER_MODEL, "offer model", uri, lambda c: c, absent=OFFERS_ABSENT
        )
        self.uplift = uplift_slot(uri)
        self.features = features_slot(self.reader, rules)
        self.catalogue = catalogue_slot(self.reader, rules)
        self.multiplier = multiplier_slot(settings.multiplier_file or MULTIPLIER_FILE)
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
        """Each slot's status; an optional one (uplift, offer model, catalogue) is ``absent`` (with the
        reason) when it does not exist, which is not a failure."""
        return {name: slot.status() for name, slot in self.slots.items()}

    def healthy(self) -> bool:
        """Churn and the features served, and the offer side either served or absent by design (no offer
        champion); an offer champion without a catalogue to rank cannot serve, so that is degraded."""
        return health_of(self.status())

    def serves(self) -> list[str]:
        """What the scoring routes can answer now: ``churn`` (``/v1/score``), ``offers`` (ranking,
        campaigns, the offers of ``/v1/score``), ``uplift`` (expected values from the uplift model)."""
        return served_parts(self.status())

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
            return catalogue_frame(catalogue_rows(self.reader))

    def snapshot(self, *, churn: bool, offers: bool, offers_if_served: bool = False) -> Snapshot:
        """One consistent view for a request; ``Unavailable`` (503) naming what is missing.

        ``offers_if_served`` (``/v1/score``): the offers too, unless there is no offer champion at all;
        then churn alone, and the snapshot says why (``offers_absent``).
        """
        absent = self.offers.absent_reason() if offers_if_served and not offers else None
        want_offers = offers or (offers_if_served and absent is None)
        offers_loaded = self.offers.get() if want_offers else None  # first: its reason matters most
        features = self.features.get()
        churn_loaded = self.churn.get() if churn else None
        multiplier = self.multiplier.get() if churn else None
        catalogue = self.catalogue.get() if want_offers else None
        uplift = self.uplift.current() if want_offers else None
        model = (
            self._model_for(offers_loaded, uplift, catalogue)
            if offers_loaded is not None and catalogue is not None
            else None
        )
        return Snapshot(churn_loaded, offers_loaded, uplift, features, catalogue, multiplier, model, absent)

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


def health_of(statuses: dict[str, dict[str, Any]]) -> bool:
    """``ScoringState.healthy`` on statuses already taken (one reading for the whole probe)."""

    def state(name: str) -> str:
        return str(statuses[name]["status"])

    if any(state(name) != "ok" for name in REQUIRED):
        return False
    if state("offers") == "absent":  # churn alone, by design: a catalogue may exist or not
        return state("catalogue") in ("ok", "absent")
    return state("offers") == "ok" and state("catalogue") == "ok"


def served_parts(statuses: dict[str, dict[str, Any]]) -> list[str]:
    """``ScoringState.serves`` on statuses already taken."""

    def up(*names: str) -> bool:
        return all(statuses[name]["version"] is not None for name in names)

    parts = []
    if up("churn", "features"):
        parts.append("churn")
    if up("offers", "features", "catalogue"):
        parts.append("offers")
        if up("uplift"):
            parts.append("uplift")
    return parts


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
