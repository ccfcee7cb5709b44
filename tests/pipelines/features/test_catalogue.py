"""The feature catalogue as data: the docs it generates and `loyalty features --list`."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from pipelines.features import catalogue_markdown
from serving import cli_app as app

DOCS = Path(__file__).resolve().parents[3] / "docs" / "features.md"


def test_docs_list_the_current_catalogue() -> None:
    assert DOCS.read_text() == catalogue_markdown(), (
        "docs/features.md is stale: run `loyalty features --list --markdown > docs/features.md`"
    )


def test_features_list_prints_the_catalogue() -> None:
    result = CliRunner().invoke(app, ["features", "--list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ("txn_count_7d", "points_expiring_90d", "offers_completed_cashback", "tier"):
        assert name in result.output
    markdown = CliRunner().invoke(app, ["features", "--list", "--markdown"])
    # stdout only: stderr may carry a log line of something collected meanwhile (a notebook's kernel)
    assert markdown.stdout == catalogue_markdown()
