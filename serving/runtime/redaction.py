"""Error text safe for a log line or an admin's eyes: what failed and why, never the values that were sent.

The model slots log a failed load, health reports it and the error handlers log a bug's traceback: all of
them describe an exception through here, so no path out of the service quotes a customer's data.
"""

from __future__ import annotations

import traceback

from fastapi.exceptions import RequestValidationError, ResponseValidationError
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError, StatementError

_DRIVER_MODULES = ("sqlite3", "psycopg", "psycopg2", "asyncpg")


def describe_error(exc: BaseException) -> str:
    """``Type: message`` safe for a log line or an admin's eyes: never a value that was sent to the database.

    A database error's text holds more than its cause: SQLAlchemy appends the statement's parameters, and
    PostgreSQL's ``DETAIL`` line quotes the row (``Key (id)=(c-42) already exists``, ``Failing row contains
    (...)``). Of those only the first line (the database's own message) and the statement (placeholders,
    no values) are kept. A validation error keeps its fields and reasons, never the input it rejected.
    """
    name = type(exc).__name__
    if isinstance(exc, SQLAlchemyError) or type(exc).__module__.split(".")[0] in _DRIVER_MODULES:
        orig = getattr(exc, "orig", None)
        cause = orig if isinstance(orig, BaseException) else exc
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        text = f"{name}: ({type(cause).__name__}) {first}" if cause is not exc else f"{name}: {first}"
        if isinstance(exc, StatementError) and exc.statement:
            text += f" [SQL: {' '.join(exc.statement.split())[:300]}]"
        return text
    if isinstance(exc, ValidationError | ResponseValidationError | RequestValidationError):
        errors = list(exc.errors())
        reasons = "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg', '')}" for e in errors[:5])
        return f"{name}: {len(errors)} error(s): {reasons}"
    return f"{name}: {exc}"


def redacted_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` and of its causes, each exception's text as ``describe_error`` gives it."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    parts: list[str] = []
    for i, item in enumerate(reversed(chain)):
        if i:
            parts.append("\nThe above exception led to the following one:\n\n")
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_tb(item.__traceback__))
        parts.append(describe_error(item) + "\n")
    return "".join(parts).rstrip()
