"""One exception family for the whole platform.

Every layer raises these; only ``serving`` turns them into HTTP answers (in one handler), and the CLI turns
them into a one-line message and a non-zero exit code. Each class carries a stable machine-readable ``code``
so that callers can branch on it without parsing messages.
"""

from __future__ import annotations

from typing import Any


class LoyaltyError(Exception):
    """Base of every error the platform raises on purpose."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class InvalidInput(LoyaltyError):
    """The request or file is malformed: the caller must change it before retrying."""

    code = "invalid_input"
    status = 422


class NotFound(LoyaltyError):
    code = "not_found"
    status = 404


class Conflict(LoyaltyError):
    """The request clashes with what is already recorded (same id, other body; wrong state)."""

    code = "conflict"
    status = 409


class InsufficientPoints(Conflict):
    code = "insufficient_points"


class Unauthorized(LoyaltyError):
    code = "unauthorized"
    status = 401


class Forbidden(LoyaltyError):
    code = "forbidden"
    status = 403


class Unavailable(LoyaltyError):
    """A dependency (model, database) is missing or broken; retrying later may help."""

    code = "unavailable"
    status = 503


class ConfigurationError(LoyaltyError):
    """A settings value or rules file is wrong; raised at start-up so nothing runs half-configured."""

    code = "configuration_error"
    status = 500
