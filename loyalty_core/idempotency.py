"""Idempotency on the caller's ids: a replay returns the first answer and says so; another body is a 409.

Every operation stores its first answer on its journal entry, with a fingerprint of the request
(``request_hash``), unique on ``(kind, ext_id)``. A repeated id is answered from there, one request or a
whole batch at a time, by the same rule (``answer_again``); the check runs under the member's lock, so two
requests with one id never both write.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from loyalty_core.errors import Conflict
from loyalty_core.schema import ENTRIES
from loyalty_core.sql import chunks

_REPLAYED = "loyalty.replayed"
# Built once: constructing the statement on every batch cost more than running it.
_PRIOR = select(ENTRIES.c.ext_id, ENTRIES.c.request_hash, ENTRIES.c.response).where(
    ENTRIES.c.kind == bindparam("kind"), ENTRIES.c.ext_id.in_(bindparam("ids", expanding=True))
)
# The same read as driver SQL, for a PostgreSQL round trip shared with the member locks; parameters
# (kind, ids).
PRIOR_ENTRIES_PG = "SELECT ext_id, request_hash, response FROM entries WHERE kind = %s AND ext_id = ANY(%s)"


def request_hash(*parts: object) -> str:
    """A stable fingerprint of a request body: a replay must match it exactly, field by field."""
    canon = "\x1f".join(
        "" if p is None else p.isoformat() if isinstance(p, dt.datetime) else str(p) for p in parts
    )
    return hashlib.sha256(canon.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Prior:
    """What an earlier request with this id recorded: its fingerprint and its answer."""

    ext_id: str
    request_hash: str
    response: Any

    def __post_init__(self) -> None:
        if isinstance(self.response, str):  # the driver may leave JSON as text
            object.__setattr__(self, "response", json.loads(self.response))


def prior_entries(session: Session, kind: str, ext_ids: Sequence[str]) -> dict[str, Prior]:
    """The entries already recorded for these ids of one kind, by id."""
    connection = session.connection()
    return {
        r.ext_id: Prior(r.ext_id, r.request_hash, r.response)
        for part in chunks(ext_ids, 5000)
        for r in connection.execute(_PRIOR, {"kind": kind, "ids": list(part)})
    }


def conflict(label: str, ext_id: str) -> Conflict:
    return Conflict(
        f"{label} id {ext_id!r} was already used with a different request body", code="idempotency_conflict"
    )


def answer_again(prior: Prior, req_hash: str, label: str) -> dict[str, Any]:
    """The first answer for a repeated id, if the request is the same; a ``Conflict`` (409) if not."""
    if prior.request_hash != req_hash:
        raise conflict(label, prior.ext_id)
    return dict(prior.response)


def replay(session: Session, kind: str, ext_id: str, req_hash: str) -> dict[str, Any] | None:
    """The first answer if ``ext_id`` was already used for ``kind`` (marking the transaction a replay)."""
    prior = prior_entries(session, kind, [ext_id]).get(ext_id)
    if prior is None:
        return None
    answer = answer_again(prior, req_hash, kind)
    mark_replayed(session)
    return answer


def mark_replayed(session: Session) -> None:
    """Note that this transaction answered from what an earlier request recorded, not from new work.

    Callers must be able to tell a replay from a first answer (``Idempotent-Replayed``), whichever operation
    answered: ``replay`` marks every stored-entry answer; operations idempotent in other ways (an activation
    asked for again) call this themselves.
    """
    session.info[_REPLAYED] = True


def was_replayed(session: Session) -> bool:
    return bool(session.info.get(_REPLAYED, False))
