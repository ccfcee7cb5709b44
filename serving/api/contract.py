"""What every route of the API promises beyond its schema: exact JSON numbers, and marked replays.

- **Exact numbers.** Starlette parses JSON numbers with a fraction into floats, so ``{"amount": 10.005}``
  reached the schema as the float nearest to it and ``10.0000000000000001`` as ``10.0``: an amount with more
  than two decimals could pass as a rounded one. ``ExactJSONRoute`` parses them as ``Decimal`` instead,
  so the schemas judge the value the client wrote. It also answers the parser's other failures (a number
  of thousands of digits, nesting deep enough to exhaust the stack) as the 400 ``malformed_json`` they are,
  instead of an unhandled error.
- **Marked replays.** A client that retries must be able to tell "done now" from "already done"; every
  write that can answer from an earlier request runs through ``write`` and gets ``Idempotent-Replayed:
  true`` when it did (``loyalty_core.run_write`` reports it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from loyalty_core import run_write

T = TypeVar("T")

REPLAYED_HEADER = "Idempotent-Replayed"


# One decoder for every request: ``json.loads`` with an argument builds a new decoder per call (~1 us).
_DECODER = json.JSONDecoder(parse_float=Decimal)


class ExactJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                # As ``json.loads`` reads bytes: UTF-8, or UTF-16/32 when the body says so.
                self._json = _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
            except json.JSONDecodeError:
                raise
            except (ValueError, RecursionError) as exc:  # bad UTF-8, 5,000-digit integers, [[[[...]]]] deep
                text = body.decode("utf-8", "replace")
                raise json.JSONDecodeError(_reason(exc), text, 0) from None
        return self._json


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return "a number is too long" if "digits" in str(exc) else "undecodable"


class ExactJSONRoute(APIRoute):
    """The API's route class: bodies parsed by ``ExactJSONRequest``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact(request: Request) -> Response:
            return await handler(ExactJSONRequest(request.scope, request.receive))

        return exact


def write(engine: Engine, response: Response, work: Callable[[Session], T]) -> T:
    """Run one ledger write in its transaction; mark the HTTP answer when it was a replay."""
    outcome = run_write(engine, work)
    if outcome.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return outcome.value
