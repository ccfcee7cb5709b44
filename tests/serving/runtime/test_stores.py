"""``open_ledger``: how a command reaches the ledger, refusing a missing or unknown schema in words."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from loyalty_core import Unavailable, make_engine
from serving.runtime.stores import open_ledger


def test_open_ledger_missing_file_is_refused_without_creating_it(tmp_path: Path) -> None:
    db = tmp_path / "absent.db"
    with pytest.raises(Unavailable, match=r"no ledger database at .* yet: run `loyalty init` to create it"):
        open_ledger(f"sqlite:///{db}")
    assert not db.exists()


def test_open_ledger_empty_database_says_run_init(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    make_engine(f"sqlite:///{db}").dispose()
    db.touch()
    with pytest.raises(Unavailable, match=r"has no ledger schema yet: run `loyalty init`"):
        open_ledger(f"sqlite:///{db}")


def test_open_ledger_migrated_database_answers_an_engine(engine: Engine) -> None:
    opened = open_ledger(str(engine.url))
    try:
        with opened.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        opened.dispose()
