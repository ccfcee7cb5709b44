"""Schemathesis over the service's own OpenAPI document: no 5xx, no response that breaks its schema.

Two services are fuzzed:

- an empty database with an empty model registry, where the scoring routes' only 5xx allowed is their
  documented 503 ``model_unavailable``;
- the complete simulated world (history, features, offers, champions), on SQLite and on PostgreSQL (the
  same rows copied), where no 5xx is allowed at all. With each role's key, every route that role may call
  is fuzzed (examples, coverage and fuzzing phases), every route it may not call must answer 403 with the
  error shape, and the stateful phase chains calls with the ids earlier answers returned (hold → capture or
  void, posting → reversal, rank → activate → feedback...).

Generated ids are mostly random, so most calls would stop at 404: customer and offer ids in generated
bodies and paths are swapped, half of the time, for ones the world holds, so the fuzzing reaches the
ledger, the features and the models. Hypothesis runs derandomized: CI replays the same cases every run.

Schemathesis parametrises at collection time, so both schemas are loaded at import from the empty app (the
document does not depend on the data); what only the world's fixtures know (its service, its ids, the key
of the role under test) reaches the world schema's hooks through ``TARGET``.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, positive_data_acceptance
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from loyalty_core import Settings, make_engine, migrate
from serving.app import create_app
from tests.conftest import fresh_pg_database
from tests.serving.conftest import API_KEYS, KEYS, NO_MULTIPLIER_RULE, World, copy_ledger, use_mlflow_store

# --- who may call what (API.md); admin may call everything -------------------------------------------------

CORE, MARKETING, ADMIN = "core", "marketing", "admin"
OPEN = frozenset({CORE, MARKETING, ADMIN})
SCOPES: dict[str, frozenset[str]] = {
    "GET /health": OPEN,
    "GET /metrics": OPEN,
    "POST /v1/transactions": frozenset({CORE, ADMIN}),
    "POST /v1/transactions/{transaction_id}/reversal": frozenset({CORE, ADMIN}),
    "POST /v1/redemptions": frozenset({CORE, ADMIN}),
    "POST /v1/activities": frozenset({CORE, ADMIN}),
    "POST /v1/holds": frozenset({CORE, ADMIN}),
    "POST /v1/holds/{hold_id}/capture": frozenset({CORE, ADMIN}),
    "POST /v1/holds/{hold_id}/void": frozenset({CORE, ADMIN}),
    "GET /v1/customers/{customer_id}": OPEN,
    "GET /v1/customers/{customer_id}/balance": OPEN,
    "POST /v1/score": frozenset({CORE, ADMIN}),
    "POST /v1/offers/{offer_id}/activate": frozenset({CORE, ADMIN}),
    "POST /v1/feedback": OPEN,
    "POST /v1/offers/rank": frozenset({MARKETING, ADMIN}),
    "POST /v1/campaigns": frozenset({MARKETING, ADMIN}),
    "GET /v1/offers": frozenset({MARKETING, ADMIN}),
    "PUT /v1/offers/{offer_id}": frozenset({ADMIN}),
    "POST /v1/admin/postings/{transaction_id}/release": frozenset({ADMIN}),
    "POST /v1/admin/postings/{transaction_id}/reject": frozenset({ADMIN}),
    "POST /v1/admin/redemptions/{redemption_id}/release": frozenset({ADMIN}),
    "POST /v1/admin/redemptions/{redemption_id}/reject": frozenset({ADMIN}),
    "POST /v1/admin/models/reload": frozenset({ADMIN}),
    "GET /v1/admin/shadow": frozenset({ADMIN}),
}


def may_call(role: str, label: str) -> bool:
    """Whether ``role``'s key may call the operation ``label`` (a new route must be added to SCOPES)."""
    assert label in SCOPES, f"{label} is not in SCOPES: say which roles may call it"
    return role in SCOPES[label]


def least_privileged_key(label: str) -> str:
    """The key a real caller of ``label`` would hold: core or marketing before admin."""
    for role in (CORE, MARKETING, ADMIN):
        if may_call(role, label):
            return KEYS[role]
    raise AssertionError(label)  # pragma: no cover - every route admits admin


# --- checks --------------------------------------------------------------------------------------------

SCORING_ROUTES = {"/v1/score", "/v1/offers/rank", "/v1/campaigns"}


def no_server_error_but_missing_models(ctx: Any, response: Any, case: Any) -> bool | None:
    """As ``not_a_server_error``, except a scoring route's documented 503 while no model is loaded."""
    if response.status_code == 503 and case.operation.path in SCORING_ROUTES:
        assert response.json()["error"]["code"] == "model_unavailable", response.text
        return None
    return not_a_server_error(ctx, response, case)


def forbidden_with_the_error_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    """A known key without the route's scope gets 403 ``forbidden``, whatever the request holds.

    Only a body the service cannot read at all (not JSON, or over the size limit) may be refused first, and
    only a request without a known key gets 401.
    """
    body = response.json()
    assert isinstance(body, dict), response.text
    assert set(body) == {"error"}, response.text
    if response.request.method != case.operation.method.upper():  # the coverage phase tries other methods
        assert response.status_code == 405, f"{response.status_code}: {response.text}"
        return None
    if response.status_code in (400, 413):  # the body is read (and refused) before the key is looked at
        assert body["error"]["code"] in ("malformed_json", "bad_request", "payload_too_large"), response.text
        return None
    if response.request.headers.get("X-API-Key") not in KEYS.values():  # a case without (a real) key
        assert response.status_code == 401, f"{response.status_code}: {response.text}"
        assert body["error"]["code"] == "unauthorized", response.text
        return None
    assert response.status_code == 403, f"{response.status_code}: {response.text}"
    assert body["error"]["code"] == "forbidden", response.text
    assert isinstance(body["error"]["message"], str), response.text
    assert body["error"]["message"], response.text
    return None


FORBIDDEN_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    forbidden_with_the_error_shape,
]


# --- the empty service ------------------------------------------------------------------------------------

_DB = Path(tempfile.mkdtemp(prefix="loyalty-fuzz-")) / "fuzz.db"
APP = create_app(
    Settings(
        database_url=f"sqlite:///{_DB}",
        api_keys=API_KEYS,
        multiplier_file=NO_MULTIPLIER_RULE,
    )
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.auth()
class AdminKey:
    """Schemathesis' own auth hook, so its auth checks know which requests carry a key and which do not."""

    def get(self, case: Any, context: Any) -> str:
        return KEYS[ADMIN]

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "X-API-Key": data}


@pytest.fixture(scope="module")
def _empty_app() -> Iterator[None]:
    engine = make_engine(f"sqlite:///{_DB}")
    migrate(engine)
    engine.dispose()
    with TestClient(APP):  # runs the lifespan: app.state holds the engine and batcher while the cases run
        yield


# Derandomized: the same cases on every run, so a CI failure replays exactly and a green run stays green.
SETTINGS = settings(
    max_examples=25, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


# Every default check but one: a schema-valid body may still break a business rule (a currency the rules
# do not accept, a decision that does not exist), which is a documented 4xx, not a contract violation.


@pytest.mark.usefixtures("_empty_app")
@schema.parametrize()
@SETTINGS
def test_without_models_no_server_errors_and_responses_match_the_schema(case: Any) -> None:
    case.call_and_validate(
        excluded_checks=[positive_data_acceptance, not_a_server_error],
        additional_checks=[no_server_error_but_missing_models],
    )


# --- the complete world, on both backends -------------------------------------------------------------------

# OpenAPI links schemathesis cannot infer from names alone: a ranking's decision and offers feed the
# activation and the feedback; a launched campaign's decisions feed the feedback; an earning's customer
# holds and redeems.
_FIRST_OFFER = "$response.body#/offers/0/offer_id"
EXTRA_LINKS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("/v1/offers/rank", "post"): {
        "ActivateRanked": {
            "operationRef": "#/paths/~1v1~1offers~1{offer_id}~1activate/post",
            "parameters": {"path.offer_id": _FIRST_OFFER},
            "requestBody": {
                "customer_id": "$response.body#/customer_id",
                "decision_id": "$response.body#/decision_id",
            },
            "x-schemathesis": {"merge_body": True},
        },
        "FeedbackOnRanked": {
            "operationRef": "#/paths/~1v1~1feedback/post",
            "requestBody": {"decision_id": "$response.body#/decision_id", "offer_id": _FIRST_OFFER},
            "x-schemathesis": {"merge_body": True},
        },
    },
    # The world's points have passed their expiry date (its history ends months ago), so a hold or a
    # redemption needs points earned now: chain them after an earning of the same customer.
    ("/v1/transactions", "post"): {
        "HoldEarned": {
            "operationRef": "#/paths/~1v1~1holds/post",
            "requestBody": {"customer_id": "$response.body#/customer_id"},
            "x-schemathesis": {"merge_body": True},
        },
        "RedeemEarned": {
            "operationRef": "#/paths/~1v1~1redemptions/post",
            "requestBody": {"customer_id": "$response.body#/customer_id"},
            "x-schemathesis": {"merge_body": True},
        },
    },
    ("/v1/campaigns", "post"): {
        "FeedbackOnLaunched": {
            "operationRef": "#/paths/~1v1~1feedback/post",
            "requestBody": {
                "decision_id": "$response.body#/customers/0/decision_id",
                "offer_id": "$response.body#/offer_id",
            },
            "x-schemathesis": {"merge_body": True},
        },
    },
}


def with_links(document: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(document)
    for (path, method), links in EXTRA_LINKS.items():
        response = document["paths"][path][method]["responses"]["200"]
        response.setdefault("links", {}).update(links)
    return document


@dataclass
class Target:
    """What the world schema's hooks need and only fixtures know (schemathesis parametrises at collection
    time, before any fixture runs): the service, the caller's key for each route, the world's ids."""

    app: FastAPI | None = None
    key: Callable[[str], str] = lambda label: KEYS[ADMIN]
    customers: tuple[str, ...] = ()
    offers: tuple[str, ...] = ()


TARGET = Target()


async def world_service(scope: Any, receive: Any, send: Any) -> None:
    """The world's service of the test running now, as one ASGI app for schemathesis' calls and probes."""
    assert TARGET.app is not None, "no world service is running: the test must use the world_app fixture"
    await TARGET.app(scope, receive, send)


world_schema = schemathesis.openapi.from_dict(with_links(APP.openapi()))  # the same document, links added
world_schema.app = world_service
# Chains need requests that get through: the stateless tests send the invalid ones.
world_schema.config.phases.stateful.generation.modes = [GenerationMode.POSITIVE]


# Asked afresh for every case (schemathesis would keep a key for minutes, and the next role's tests send it).
@world_schema.auth(refresh_interval=None).skip_for(path="/metrics")
class TargetKey:
    def get(self, case: Any, context: Any) -> str:
        return TARGET.key(case.operation.label)

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "X-API-Key": data}


def _resolved(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = world_schema.raw_schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _field_schemas(operation: Any, location: str) -> dict[str, dict[str, Any]]:
    """The JSON schema of each path parameter or top-level body field of ``operation``."""
    raw = operation.definition.raw
    if location == "path":
        return {p["name"]: p["schema"] for p in raw.get("parameters", []) if p["in"] == "path"}
    body = raw.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    return {name: _resolved(field) for name, field in _resolved(body).get("properties", {}).items()}


_FRESH_ID = st.from_regex(r"\A[a-z0-9][a-z0-9-]{7,31}\Z")


def _realistic() -> dict[str, st.SearchStrategy[Any]]:
    """Values a real caller would send, per field name: the world's customers and offers, fresh ids of
    plain characters, an accepted currency, recent times, amounts of two decimals, modest points."""
    now = dt.datetime.now(dt.UTC)
    recent = [
        (now - dt.timedelta(days=days, minutes=minutes)).isoformat()
        for days in (0, 1, 30, 200)
        for minutes in (0, 7)
    ]
    values: dict[str, st.SearchStrategy[Any]] = {
        "occurred_at": st.sampled_from(recent),
        "currency": st.sampled_from(["RUB", "EUR", "USD"]),
        "amount": st.decimals("0.01", "50000", places=2).map(str),
        "points": st.integers(1, 5),  # what a transfer earns (5): a hold after an earning gets through
    }
    values |= dict.fromkeys(
        ("transaction_id", "reversal_id", "redemption_id", "hold_id", "activity_id"), _FRESH_ID
    )
    if TARGET.customers:
        values["customer_id"] = st.sampled_from(TARGET.customers)
    if TARGET.offers:
        values["offer_id"] = st.sampled_from(TARGET.offers)
    return values


# Hooks run after links fill a case: feedback's offer comes from the decision it answers (any other offer
# is refused as not offered), so a world offer must not replace it.
NOT_STEERED = {("POST /v1/feedback", "offer_id")}


def _mostly(realistic: st.SearchStrategy[Any], generated: Any) -> st.SearchStrategy[Any]:
    """The realistic value four times in five (a request is only as valid as its worst field)."""
    return st.integers(0, 4).flatmap(lambda pick: st.just(generated) if pick == 0 else realistic)


def _steer(context: Any, values: Any, location: str) -> st.SearchStrategy[Any]:
    """``values`` with each field that has a realistic counterpart swapped for it, most of the time.

    Random ids miss the world's customers and offers, and random text, times and amounts mostly break a
    business rule (an unknown currency, a date before 1970, a third decimal): without this the fuzzing
    would stop at 404 and 422 before the ledger and the models. Only a value its field's schema accepts
    is swapped: an invalid one is what a negative case tests, and stays.
    """
    if not isinstance(values, dict):
        return st.just(values)
    schemas = _field_schemas(context.operation, location)
    fields = {
        name: _mostly(realistic, values[name])
        for name, realistic in _realistic().items()
        if name in values
        and (context.operation.label, name) not in NOT_STEERED
        and Draft202012Validator(schemas.get(name, {})).is_valid(values[name])
    }
    if not fields:
        return st.just(values)
    return st.fixed_dictionaries(fields).map(lambda drawn: {**values, **drawn})


@world_schema.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    return _steer(context, body, "body")


@world_schema.hook
def flatmap_path_parameters(context: Any, path_parameters: Any) -> st.SearchStrategy[Any]:
    return _steer(context, path_parameters, "path")


@contextlib.contextmanager
def _serving(world: World, url: str) -> Iterator[FastAPI]:
    """The service on the ledger at ``url`` with the world's champions loaded, as ``TARGET`` for the hooks."""
    app = create_app(
        Settings(
            database_url=url,
            api_keys=API_KEYS,
            model_poll_seconds=0,
            multiplier_file=world.multiplier,
        )
    )
    previous = (TARGET.app, TARGET.customers, TARGET.offers)
    with pytest.MonkeyPatch.context() as mp:
        use_mlflow_store(mp, world.mlflow_uri)
        with TestClient(app) as client:
            assert app.state.scoring.healthy(), app.state.scoring.status()
            offers = client.get("/v1/offers", headers={"X-API-Key": KEYS[ADMIN]}).json()
            TARGET.app, TARGET.customers = app, world.customers
            TARGET.offers = tuple(offer["offer_id"] for offer in offers)
            assert TARGET.offers, "the world has no offers to rank"
            try:
                yield app
            finally:
                TARGET.app, TARGET.customers, TARGET.offers = previous


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world_app(
    request: pytest.FixtureRequest, world: World, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FastAPI]:
    """The service on a copy of the simulated world (SQLite file or PostgreSQL database), champions loaded."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("fuzz-world") / "loyalty.db"
        shutil.copyfile(world.db, path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_world").url.render_as_string(hide_password=False)
    with _serving(world, url) as app:
        yield app


@pytest.fixture
def own_world_app(
    request: pytest.FixtureRequest, world_app: FastAPI, world: World, tmp_path: Path
) -> Iterator[FastAPI]:
    """A fresh copy of the world for one stateful run, on the same database kind as ``world_app``.

    Every stateful run draws the same derandomized chains; on a shared ledger a later run finds the ids of
    an earlier one taken (409 ``idempotency_conflict`` for bodies dated by the clock) and, depending on the
    hour, never gets an earning through: a test that passed or failed by the time of day.
    """
    if request.node.callspec.params["world_app"] == "sqlite":
        path = tmp_path / "loyalty.db"
        shutil.copyfile(world.db, path)
        with _serving(world, f"sqlite:///{path}") as app:
            yield app
        return
    with fresh_pg_database("loyalty_stateful") as engine:
        source = make_engine(f"sqlite:///{world.db}")
        try:
            copy_ledger(source, engine)
        finally:
            source.dispose()
        with _serving(world, engine.url.render_as_string(hide_password=False)) as app:
            yield app


@pytest.fixture(params=[CORE, MARKETING, ADMIN])
def role(request: pytest.FixtureRequest, world_app: FastAPI) -> Iterator[str]:
    """Every generated request of the test carries this role's key."""
    role = str(request.param)
    TARGET.key = lambda label: KEYS[role]
    yield role
    TARGET.key = Target.key


@world_schema.parametrize()
@SETTINGS
def test_world_no_server_errors_and_responses_match_the_schema(
    case: Any, world_app: FastAPI, role: str
) -> None:
    """Every route with every role's key: the full contract where the role may call the route, a 403 with
    the error shape (and nothing else) where it may not."""
    # The examples and coverage phases build their cases at collection, before this role's fixture ran.
    if (case.headers or {}).get("X-API-Key") in KEYS.values():
        case.headers["X-API-Key"] = KEYS[role]
    if may_call(role, case.operation.label):
        case.call_and_validate(excluded_checks=[positive_data_acceptance])
    else:
        case.validate_response(case.call(), checks=FORBIDDEN_CHECKS)


# --- the stateful phase ---------------------------------------------------------------------------------

STATEFUL = settings(
    max_examples=30,
    stateful_step_count=8,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    suppress_health_check=list(HealthCheck),
)
ROUNDS = 3
# Chains that must get through in every run, or the phase proves little: a ranking, the offer it proposed
# activated, a campaign, an earning (which holds, redemptions and reversals follow). Feedback, holds and
# their captures get through in some runs only (the service's state differs from run to run).
MUST_ANSWER = {
    "POST /v1/offers/rank",
    "POST /v1/offers/{offer_id}/activate",
    "POST /v1/campaigns",
    "POST /v1/transactions",
}


@dataclass
class Journal:
    """What a stateful run saw, across its rounds: the routes that answered 2xx, and every failure."""

    answered: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


JOURNAL = Journal()


class WorldWorkflow(world_schema.as_state_machine()):  # type: ignore[misc]
    """Chains of calls linked by the ids earlier answers returned, against the world's service."""

    def after_call(self, response: Any, case: Any) -> None:
        super().after_call(response, case)
        if 200 <= response.status_code < 300:
            JOURNAL.answered[case.operation.label] += 1

    def validate_response(
        self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
    ) -> None:
        try:
            case.validate_response(
                response,
                excluded_checks=[positive_data_acceptance],
                transport_kwargs=kwargs,
                recorder=self.recorder,
            )
        except FailureGroup as exc:  # kept, in case Hypothesis cannot replay the run that found it
            JOURNAL.failures.append(str(exc))
            raise


@pytest.mark.parametrize("keys", ["admin", "least-privileged"])
def test_world_stateful_no_server_errors_and_responses_match_the_schema(
    own_world_app: FastAPI, keys: str
) -> None:
    """With the admin key, then with the key a real caller of each route holds (marketing ranks, core
    activates the offer ranked, core and marketing send feedback).

    The service keeps what every scenario wrote, so when Hypothesis replays a prefix of choices the answers
    (and the values links take from them) may differ, and it stops with ``FlakyStrategyDefinition``: not a
    finding (schemathesis' own runner treats it so), but the end of that round; the next one starts afresh.
    A failure found before such an end is kept in the journal and fails the test all the same.
    """
    JOURNAL.answered.clear()
    JOURNAL.failures.clear()
    TARGET.key = least_privileged_key if keys == "least-privileged" else Target.key
    try:
        for _ in range(ROUNDS):
            try:
                WorldWorkflow.run(settings=STATEFUL)
            except hypothesis.errors.FlakyStrategyDefinition:
                continue
    finally:
        TARGET.key = Target.key
    assert not JOURNAL.failures, "\n".join(JOURNAL.failures)
    assert set(JOURNAL.answered) >= MUST_ANSWER, f"never answered 2xx: {MUST_ANSWER - set(JOURNAL.answered)}"
