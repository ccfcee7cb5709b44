"""API keys and scopes.

Keys live in memory only as SHA-256 digests, so a heap dump or a stray ``repr`` never shows one. A presented
key is compared with ``hmac.compare_digest`` against every stored digest, without stopping at the first match,
so the time taken says nothing about which key (or how much of one) matched. Keys are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import APIKeyHeader

from loyalty_core import ConfigurationError, Forbidden, Unauthorized

SCOPES = ("core", "marketing", "admin")
ADMIN = "admin"

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="A key from LOYALTY_API_KEYS.")


@dataclass(frozen=True, slots=True)
class ApiKeys:
    digests: tuple[tuple[bytes, frozenset[str]], ...]

    def scopes_of(self, presented: str) -> frozenset[str] | None:
        """The scopes granted to ``presented``, or None when it is no known key."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        granted: set[str] = set()
        matched = False
        for stored, scopes in self.digests:
            if hmac.compare_digest(stored, digest):  # no early exit: constant work whatever matches
                granted |= scopes
                matched = True
        return frozenset(granted) if matched else None


def parse_api_keys(spec: str) -> ApiKeys:
    """``core:KEY1,marketing:KEY2,admin:KEY3`` → digests; a key listed under several scopes gets them all.

    A malformed entry stops start-up: a service that silently ignored a key would lock out its caller.
    """
    by_digest: dict[bytes, set[str]] = {}
    for position, raw in enumerate(spec.split(","), start=1):
        item = raw.strip()
        if not item:
            continue
        scope, sep, key = item.partition(":")
        scope, key = scope.strip(), key.strip()
        if not sep or not key:
            raise ConfigurationError(f"LOYALTY_API_KEYS entry {position} is not scope:key")
        if scope not in SCOPES:
            raise ConfigurationError(
                f"LOYALTY_API_KEYS entry {position} has unknown scope {scope!r} (use {', '.join(SCOPES)})"
            )
        by_digest.setdefault(hashlib.sha256(key.encode()).digest(), set()).add(scope)
    if not by_digest:
        raise ConfigurationError("LOYALTY_API_KEYS holds no key: every protected route would refuse everyone")
    return ApiKeys(tuple((d, frozenset(s)) for d, s in by_digest.items()))


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, as far as the ledger's audit trail is concerned: the scope, never the key."""

    scope: str

    @property
    def actor(self) -> str:
        return f"api:{self.scope}"


def require_scope(*scopes: str) -> Callable[[Request, str | None], Awaitable[Caller]]:
    """A dependency admitting keys holding any of ``scopes`` (admin is admitted everywhere).

    ``async`` although it awaits nothing: FastAPI runs plain ``def`` dependencies in a thread pool, a hop
    that would cost more than the check itself on every request.
    """
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes {sorted(unknown)}")
    wanted = (*scopes, ADMIN)

    async def dependency(request: Request, key: Annotated[str | None, Security(api_key_header)]) -> Caller:
        if not key:
            raise Unauthorized("missing X-API-Key header", code="unauthorized")
        keys: ApiKeys = request.app.state.api_keys
        granted = keys.scopes_of(key)
        if granted is None:
            raise Unauthorized("unknown API key", code="unauthorized")
        for scope in wanted:
            if scope in granted:
                return Caller(scope)
        raise Forbidden(f"this key lacks the scope for this route (needs one of: {', '.join(scopes)})")

    return dependency
