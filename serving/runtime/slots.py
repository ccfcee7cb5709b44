"""Hot-swappable holders for what the scoring routes need: models from the registry, the online features.

A request reads ``slot.get()`` once and keeps that object for its whole life, so a reload that swaps the
reference in between never mixes two model versions in one answer and never makes a request wait. A reload
that fails keeps the previous value serving and records the error (``/health`` reports it to an admin key);
a slot that never loaded raises ``Unavailable`` (HTTP 503 with the reason) on the scoring routes, while the
ledger routes, which need no model, keep working. The raw text of an unexpected load error (paths, SQL)
stays in the log and the admin's view; callers refused with 503 read only what kind of failure it was.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from loyalty_core import LoyaltyError, Unavailable
from serving.runtime.redaction import describe_error

log = logging.getLogger(__name__)
T = TypeVar("T")


class NotConfigured(Unavailable):
    """An optional value that is not set up (no uplift or offer champion, no offers catalogue): an expected
    state, not a failure.

    Its slot logs it once at INFO as "not configured", where a failure is a WARNING "load failed", and its
    status reads ``absent`` (with the message as the reason) while nothing is served; callers that need the
    value still get the 503 of ``Unavailable``. The message is shown to anonymous ``/health`` callers too:
    keep paths and addresses out of it.
    """


@dataclass(frozen=True, slots=True)
class Loaded(Generic[T]):
    value: T
    version: str
    loaded_at: dt.datetime


class Slot(Generic[T]):
    """One named value, loaded by ``loader() -> (value, version)`` and replaced atomically on reload.

    ``probe() -> version`` (optional) answers cheaply which version *should* be served (e.g. the registry's
    ``champion`` alias); ``refresh_if_changed`` reloads only when it differs from what is loaded.
    """

    def __init__(
        self,
        name: str,
        loader: Callable[[], tuple[T, str]],
        probe: Callable[[], str | None] | None = None,
    ) -> None:
        self.name = name
        self._loader = loader
        self._probe = probe
        self._current: Loaded[T] | None = None
        self._error: str | None = None  # why the last load failed, in full: for logs and admins only
        self._reason: str | None = None  # the same for callers refused with 503: no raw exception text
        self._probe_error: str | None = None
        self._absent = False  # the last load found the value not configured (``NotConfigured``)
        self._lock = threading.Lock()  # one reload at a time; readers never take it

    def reload(self) -> bool:
        """Load afresh; True when a new value is now served. Never raises: failures are kept for /health.

        A failure is logged when it is new (a first failure, or another error than the last one), not at
        every poll that meets it again; a recovery is logged too. Requests refused meanwhile log nothing.
        """
        with self._lock:
            try:
                value, version = self._loader()
            except NotConfigured as exc:
                self._failed(exc.message, exc.message, logging.INFO, what="not configured")
                self._absent = True
            except LoyaltyError as exc:  # an anticipated state, its message written for people
                # ``public``: the message without what only an operator should see (paths, store URIs,
                # the underlying exception's text).
                public = exc.details.get("public")
                self._failed(exc.message, public if isinstance(public, str) else exc.message, logging.WARNING)
            except Exception as exc:  # a broken artifact must not take the service down
                detail = describe_error(exc)
                self._failed(detail, f"it failed to load ({type(exc).__name__})", logging.ERROR)
            else:
                self._current = Loaded(value, version, dt.datetime.now(dt.UTC))
                self._error = self._reason = None
                self._absent = False
                log.info("%s: serving version %s", self.name, version)
                return True
            return False

    def _failed(self, detail: str, reason: str, level: int, what: str = "load failed") -> None:
        if detail != self._error:
            serving = self._current
            state = f"still serving version {serving.version}" if serving is not None else "not available"
            log.log(level, "%s: %s (%s): %s", self.name, what, state, detail)
        else:
            log.debug("%s: %s again: %s", self.name, what, detail)
        self._error, self._reason = detail, reason
        self._absent = False

    def refresh_if_changed(self) -> bool:
        """Reload when the probe names another version than the one served (or nothing is served yet)."""
        if self._probe is None:
            return False
        try:
            wanted = self._probe()
        except Exception as exc:
            detail = exc.message if isinstance(exc, LoyaltyError) else describe_error(exc)
            if detail != self._probe_error:  # once per outage, not at every poll
                log.warning("%s: cannot check for a new version: %s", self.name, detail)
            self._probe_error = detail
            return False
        if self._probe_error is not None:
            log.info("%s: the version check works again", self.name)
            self._probe_error = None
        current = self._current
        if wanted is None or (current is not None and current.version == wanted):
            return False
        return self.reload()

    def get(self) -> Loaded[T]:
        current = self._current
        if current is None:
            reason = self._reason or "not loaded yet"
            raise Unavailable(f"{self.name} is not available: {reason}", code="model_unavailable")
        return current

    def current(self) -> Loaded[T] | None:
        """What is served now, or None: for optional values, whose absence is no error."""
        return self._current

    def absent_reason(self) -> str | None:
        """Why nothing is served when that is an expected state (``NotConfigured``), else None."""
        return self._reason if self._absent and self._current is None else None

    def status(self) -> dict[str, Any]:
        """``ok``, ``degraded`` (a load failed), or ``absent`` (not configured, nothing served)."""
        current = self._current
        if current is None and self._absent:
            state = "absent"
        else:
            state = "ok" if current is not None and self._error is None else "degraded"
        return {
            "status": state,
            "version": current.version if current is not None else None,
            "loaded_at": current.loaded_at.isoformat() if current is not None else None,
            "error": self._error,
        }
