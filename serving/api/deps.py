"""Dependencies as ``Annotated`` aliases, so an endpoint's signature says what it uses and who may call it.

The engine, rules, keys and batcher are built once in the lifespan and kept on ``app.state``; these read them
back. Reading ``app.state`` is ``async`` (no thread hop); only the session, which does I/O, is a plain
generator that FastAPI runs in its thread pool next to the plain ``def`` endpoints that use it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from loyalty_core import Rules, Settings, text_problem
from serving.api.security import Caller, api_key_header, require_scope
from serving.runtime.batcher import PostingBatcher
from serving.runtime.decision_writer import DecisionWriter
from serving.runtime.facts import FactsReader
from serving.runtime.inference import InferenceBatcher
from serving.runtime.served_state import ScoringState


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def get_rules(request: Request) -> Rules:
    rules: Rules = request.app.state.rules
    return rules


async def get_batcher(request: Request) -> PostingBatcher:
    batcher: PostingBatcher = request.app.state.batcher
    return batcher


async def get_scoring(request: Request) -> ScoringState:
    scoring: ScoringState = request.app.state.scoring
    return scoring


@dataclass(frozen=True, slots=True)
class Services:
    """What the scoring and decision routes use, as one dependency: each resolved dependency costs a few
    microseconds per request, on routes whose whole budget is a few hundred."""

    scoring: ScoringState
    inference: InferenceBatcher
    facts: FactsReader
    writer: DecisionWriter


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """A read session; writes go through ``loyalty_core.in_transaction``, which owns its session and its
    retries."""
    with Session(engine) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
RulesDep = Annotated[Rules, Depends(get_rules)]
BatcherDep = Annotated[PostingBatcher, Depends(get_batcher)]
SessionDep = Annotated[Session, Depends(get_session)]
ScoringDep = Annotated[ScoringState, Depends(get_scoring)]
ServicesDep = Annotated[Services, Depends(get_services)]


def refuse_unstorable_parameters(request: Request) -> None:
    """422 for a path or query value holding NUL or another control character, on every route.

    Path and query strings reach the database as lookups (``GET /v1/customers/c%00``), and PostgreSQL text
    cannot hold NUL: without this the request would end in a 500 there. The typed parameters say the same
    in the OpenAPI document; this check holds for every parameter, typed or not, of every route with a caller.
    """
    errors = [
        {"type": "value_error", "loc": (where, name), "msg": problem, "input": None}
        for where, items in (
            ("path", request.path_params.items()),
            ("query", request.query_params.multi_items()),
        )
        for name, value in items
        if isinstance(value, str) and (problem := text_problem(value)) is not None
    ]
    if errors:
        raise RequestValidationError(errors)


def caller_with_scope(*scopes: str) -> Callable[[Request, str | None], Awaitable[Caller]]:
    """``security.require_scope`` plus ``refuse_unstorable_parameters``, in one dependency (each costs)."""
    check_scope = require_scope(*scopes)

    async def dependency(request: Request, key: Annotated[str | None, Security(api_key_header)]) -> Caller:
        caller = await check_scope(request, key)
        if request.scope.get("path_params") or request.scope.get("query_string"):
            refuse_unstorable_parameters(request)
        return caller

    return dependency


CoreCaller = Annotated[Caller, Depends(caller_with_scope("core"))]
MarketingCaller = Annotated[Caller, Depends(caller_with_scope("marketing"))]
ReaderCaller = Annotated[Caller, Depends(caller_with_scope("core", "marketing"))]
AdminCaller = Annotated[Caller, Depends(caller_with_scope("admin"))]
