"""The one place where failures become HTTP answers, all shaped ``{"error": {"code": ..., "message": ...}}``.

Callers branch on ``code``, so every path out of the service (a ledger refusal, a bad body, an unknown route,
an oversized upload, a bug) must produce the same shape; a second ad-hoc format would break their clients.
``loyalty_core`` never knows about HTTP: its ``LoyaltyError`` carries the status; only this module reads it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loyalty_core import LoyaltyError
from serving.runtime.redaction import redacted_traceback

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "unavailable",
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def error_response(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status)


def _field_name(loc: Sequence[int | str]) -> str:
    """``("body", "amount")`` → ``amount``; keeps ``query.as_of`` so the caller knows where to look."""
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_details(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Field and reason only: pydantic's ``input`` would echo the caller's (maybe personal) data back."""
    return [{"field": _field_name(e.get("loc", ())), "message": str(e.get("msg", "invalid"))} for e in errors]


# 503s of a dependency's state (a model that is not loaded): the state is logged where it changes (the model
# slot, once), not again on every request it refuses.
_STATE_CODES = frozenset({"model_unavailable", "shutting_down"})


async def _loyalty_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LoyaltyError)
    details = {k: v for k, v in exc.details.items() if isinstance(v, str | int | float | bool)}
    if exc.status >= 500 and exc.code not in _STATE_CODES:
        log.error("%s: %s", exc.code, exc.message)
    return error_response(exc.status, exc.code, exc.message, details or None)


def log_unexpected(request_line: str, exc: BaseException) -> None:
    log.error("unhandled error on %s\n%s", request_line, redacted_traceback(exc))


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        reason = next(
            (e.get("ctx", {}).get("error") for e in errors if e.get("type") == "json_invalid"), None
        )
        return error_response(
            400, "malformed_json", f"the request body is not valid JSON ({reason or 'decode error'})"
        )
    details = validation_details(errors)
    message = "; ".join(f"{d['field']}: {d['message']}" for d in details[:10]) or "invalid request"
    return error_response(422, "validation_error", message, details)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    response = error_response(exc.status_code, code, message)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


def _internal_error() -> JSONResponse:
    return error_response(500, "internal_error", "internal error; it has been logged")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """Last resort, for an error raised outside ``UnexpectedErrorMiddleware`` (in an outer middleware)."""
    route = getattr(request.scope.get("route"), "path", "unmatched")
    log_unexpected(f"{request.method} {route}", exc)
    return _internal_error()


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    """The one error shape, documented on every route so clients and contract tests know it."""

    error: ErrorDetail


_ERROR_MEANINGS = {
    400: "Malformed request (e.g. an unparsable Content-Length).",
    401: "No or unknown X-API-Key.",
    403: "The key's scope may not call this route.",
    404: "Unknown customer, transaction, offer or decision.",
    409: "Conflict: idempotency key reused with another body, insufficient points, offer not eligible...",
    413: "Request body too large.",
    422: "Invalid input; the message names the field.",
    503: "A dependency (database, model) is unavailable; the message says which and why.",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": meaning} for status, meaning in _ERROR_MEANINGS.items()
}


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(LoyaltyError, _loyalty_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


class UnexpectedErrorMiddleware:
    """Answer an unhandled error with a 500 of the error shape and keep the connection usable.

    Starlette's outermost middleware answers such an error too, but then raises it again for the server,
    and uvicorn, finding the response already sent, logs the raw traceback (database values included) and
    closes the connection without ``Connection: close``: a client reusing it sees its next request fail.
    Caught here instead, the error is logged once, redacted, the 500 goes out whole and the connection
    stays open for the next request. Only when the response had already started (nothing valid can follow)
    is an error raised on (a bare one: the server logs it), and the server ends the connection. Pure ASGI,
    like the other middlewares.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception as exc:
            route = getattr(scope.get("route"), "path", "unmatched")
            log_unexpected(f"{scope.get('method', '?')} {route}", exc)
            if started:  # the server must end the connection; it logs this, not the original text
                raise RuntimeError("response aborted by an unhandled error (logged above)") from None
            await _internal_error()(scope, receive, send)


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413 before the app buffers or parses them.

    A declared ``Content-Length`` is checked up front; a body without one (chunked) is read here up to the
    limit and replayed to the app, so no client can make a worker hold an unbounded body in memory. Pure ASGI
    on purpose: ``BaseHTTPMiddleware`` costs a task and a stream per request on the hottest path.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length: int | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    await _send_error(send, 400, "bad_request", "Content-Length is not a number")
                    return
                break
        if length is not None:
            if length > self.max_bytes:
                await self._too_large(send)
                return
            await self.app(scope, receive, send)
            return
        buffered = await self._read_capped(receive)
        if buffered is None:
            await self._too_large(send)
            return
        await self.app(scope, _replay(buffered, receive), send)

    async def _read_capped(self, receive: Receive) -> list[Message] | None:
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return None
            if not message.get("more_body", False):
                return messages

    async def _too_large(self, send: Send) -> None:
        await _send_error(
            send, 413, "payload_too_large", f"request body is larger than {self.max_bytes} bytes"
        )


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(error_body(code, message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 413:
        headers.append((b"connection", b"close"))  # the unread body must not be parsed as the next request
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
