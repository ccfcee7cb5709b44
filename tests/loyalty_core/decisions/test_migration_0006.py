"""Migration 0006 moves a decision's context out of ``model_versions`` into typed columns, and back."""

from __future__ import annotations

import json
from pathlib import Path

from alembic import command
from sqlalchemy import text

from loyalty_core import alembic_config, make_engine


def test_old_rows_carry_their_context_both_ways(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")

    def to(revision: str, down: bool = False) -> None:
        with engine.begin() as connection:
            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(cfg, revision)

    to("0005")
    old = {
        "offers": "3",
        "probability_method": "exact",
        "k": 2,
        "candidates": {"a": [0.5, 0.1], "b": [0.5, 0.2]},
        "shadow_of": "d1",
    }
    with engine.begin() as conn:
        for did, versions in (("d1.shadow", old), ("plain", {"offers": "3"}), ("none", None)):
            conn.execute(
                text(
                    "INSERT INTO decisions (id, customer_id, made_at, policy, probability, served, "
                    "model_versions) VALUES (:id, 'c', '2026-01-05 00:00:00', 'p', 1.0, 0, :mv)"
                ),
                {"id": did, "mv": None if versions is None else json.dumps(versions)},
            )
    to("head")
    with engine.connect() as conn:
        rows = {
            r[0]: r[1:]
            for r in conn.execute(text("SELECT id, model_versions, k, candidates, shadow_of FROM decisions"))
        }
    versions, k, candidates, shadow_of = rows["d1.shadow"]
    assert json.loads(versions) == {"offers": "3", "probability_method": "exact"}
    assert (k, json.loads(candidates), shadow_of) == (2, old["candidates"], "d1")
    assert json.loads(rows["plain"][0]) == {"offers": "3"}
    assert rows["plain"][1:] == (None, None, None)
    assert rows["none"] == (None, None, None, None)
    to("0005", down=True)
    with engine.connect() as conn:
        back = conn.execute(text("SELECT model_versions FROM decisions WHERE id = 'd1.shadow'")).scalar_one()
    assert json.loads(back) == old
    engine.dispose()
