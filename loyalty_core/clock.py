"""The ledger's clock: every operation dates what it records with one aware UTC instant."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
