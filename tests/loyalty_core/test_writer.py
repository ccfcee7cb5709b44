"""The write engine's deferred writes concern only the sessions that defer them."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session

from loyalty_core.writer import DeferredWritesSession, commit_deferred_writes


def test_the_commit_hook_is_scoped_to_deferring_sessions() -> None:
    assert event.contains(DeferredWritesSession, "before_commit", commit_deferred_writes)
    assert not event.contains(Session, "before_commit", commit_deferred_writes)
