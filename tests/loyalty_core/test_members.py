"""The member's columns are named once, from the table, for every statement that reads or writes them."""

from __future__ import annotations

from dataclasses import fields

from loyalty_core.members import NEW_MEMBER_SQL, STATE_COLUMNS, WRITTEN_COLUMNS, MemberState
from loyalty_core.schema import MEMBERS


def test_member_state_holds_every_column_but_the_enrolment_time() -> None:
    assert [f.name for f in fields(MemberState) if f.name != "dirty"] == list(STATE_COLUMNS)
    assert set(STATE_COLUMNS) | {"created_at"} == {c.name for c in MEMBERS.c}


def test_a_new_member_starts_with_a_value_for_every_written_column() -> None:
    assert tuple(NEW_MEMBER_SQL) == WRITTEN_COLUMNS
