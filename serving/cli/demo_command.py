"""``loyalty demo``: the whole loop on the embedded defaults; the steps live in ``serving.demo``."""

from __future__ import annotations

from typing import Annotated

import typer

from serving.cli.output import cli_errors, job_progress, progress_bars


@cli_errors
def demo(
    customers: Annotated[int, typer.Option(help="Customers of the simulated bank.")] = 1500,
    days: Annotated[int, typer.Option(help="Days of history.")] = 365,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 7,
) -> None:
    """The whole loop on the embedded defaults: simulate, ingest, features, train both models, score."""
    from loyalty_core import get_settings
    from serving.demo import run_demo, service_instructions

    settings = get_settings()
    with progress_bars() as bar:
        report = run_demo(settings, customers=customers, days=days, seed=seed, progress=job_progress(bar))
    for line in report.lines:
        typer.echo(line)
    typer.echo("")
    for line in service_instructions(settings, report.customer_id):
        typer.echo(line)
