"""Hot-swappable holders for what the scoring routes need: models from the registry, the online features.

A request reads ``slot.get()`` once and keeps that object for its whole life, so a reload that swaps the
reference in between never mixes two model versions in one answer and never makes a request wait. A reload
that fails keeps the previous value serving and records the error (``/health`` reports it); a slot that never
loaded raises ``Unavailable`` (HTTP 503 with the reason) on the scoring routes, while the ledger routes, which
need no model, keep working.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from loyalty_core.errors import LoyaltyError, Unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


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
        self._error: str | None = None
        self._lock = threading.Lock()  # one reload at a time; readers never take it

    def reload(self) -> bool:
        """Load afresh; True when a new value is now served. Never raises: failures are kept for /health."""
        with self._lock:
            try:
                value, version = self._loader()
            except LoyaltyError as exc:
                self._error = exc.message
            except Exception as exc:  # a broken artifact must not take the service down
                self._error = f"{type(exc).__name__}: {exc}"
            else:
                self._current = Loaded(value, version, dt.datetime.now(dt.UTC))
                self._error = None
                log.info("%s: serving version %s", self.name, version)
                return True
            log.warning("%s: load failed, %s", self.name, self._error)
            return False

    def refresh_if_changed(self) -> bool:
        """Reload when the probe names another version than the one served (or nothing is served yet)."""
        if self._probe is None:
            return False
        try:
            wanted = self._probe()
        except Exception as exc:
            log.warning("%s: cannot check for a new version: %s", self.name, exc)
            return False
        current = self._current
        if wanted is None or (current is not None and current.version == wanted):
            return False
        return self.reload()

    def get(self) -> Loaded[T]:
        current = self._current
        if current is None:
            reason = self._error or "not loaded"
            raise Unavailable(f"{self.name} is not available: {reason}", code="model_unavailable")
        return current

    def current(self) -> Loaded[T] | None:
        """What is served now, or None: for optional values, whose absence is no error."""
        return self._current

    def status(self) -> dict[str, Any]:
        current = self._current
        return {
            "status": "ok" if current is not None and self._error is None else "degraded",
            "version": current.version if current is not None else None,
            "loaded_at": current.loaded_at.isoformat() if current is not None else None,
            "error": self._error,
        }
