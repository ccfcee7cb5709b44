"""How a command reaches the ledger and runs a staged job: the configured database (checked), rules and
a bar per stage, the engine released whatever happens, then the report's lines."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

from serving.cli.output import job_progress, progress_bars

if TYPE_CHECKING:
    from sqlalchemy import Engine


def ledger_engine() -> Engine:
    """An engine on the configured ledger, refused with one line saying what to run when its schema is
    missing or behind (``serving.runtime.stores.open_ledger``)."""
    from loyalty_core import get_settings
    from serving.runtime.stores import open_ledger

    return open_ledger(get_settings().database_url)


def run_job(job: Callable[[Any, Any, Callable[[str, int, int | None], None]], Any]) -> None:
    """What every staged job does around its work: the configured database and rules, a bar per stage, the
    engine released whatever happens, then the report's lines. ``job(engine, rules, progress)``."""
    from loyalty_core import get_settings, load_rules

    settings = get_settings()
    rules = load_rules(settings.rules)
    engine = ledger_engine()
    try:
        with progress_bars() as bar:
            report = job(engine, rules, job_progress(bar))
    finally:
        engine.dispose()
    for line in report.lines():
        typer.echo(line)
