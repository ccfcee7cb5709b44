"""``loyalty simulate``, ``loyalty import starbucks`` and ``loyalty features``: data in, and features out."""

from __future__ import annotations

from typing import Annotated

import typer

from serving.cli.job_runner import ledger_engine, run_job
from serving.cli.output import cli_errors, job_progress, progress_bars


@cli_errors
def simulate(
    out: Annotated[
        str, typer.Option("--out", help="Directory to write the history into (created if missing).")
    ],
    customers: Annotated[int, typer.Option(help="Number of customers.")] = 10_000,
    days: Annotated[int, typer.Option(help="Length of the history in days.")] = 365,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed writes byte-identical files.")] = 0,
    start: Annotated[
        str | None,
        typer.Option(
            help="First day of the history (YYYY-MM-DD, UTC), instead of --end; it must end by today."
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            help="Where the history stops (YYYY-MM-DD, UTC): its last day is the day before; the start is "
            "--days earlier. Default: today, so live postings continue the history."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Write into a non-empty directory that is not an earlier simulator output.")
    ] = False,
) -> None:
    """Write a synthetic bank history (Parquet) and its ground truth (truth/) to --out."""
    import datetime as dt
    from pathlib import Path

    from loyalty_core import InvalidInput, get_settings, load_rules
    from pipelines import SimConfig, check_config, check_output, today_utc
    from pipelines import simulate as run_simulation

    if start is not None and end is not None:
        raise InvalidInput("give --start or --end, not both (the other is --days away)", field="start")
    name, value = ("start", start) if start is not None else ("end", end)
    try:
        day = dt.date.fromisoformat(value) if value is not None else today_utc()
    except ValueError as exc:
        raise InvalidInput(f"--{name} {value!r} is not a date (YYYY-MM-DD)", field=name) from exc
    if start is not None:
        config = SimConfig(customers=customers, days=days, seed=seed, start=day)
    else:
        config = SimConfig.ending(day, customers=customers, days=days, seed=seed)
    check_config(config, dt.datetime.now(dt.UTC))  # before the progress bar, so a refusal is one clean line
    check_output(Path(out), force=force)
    limits = load_rules(get_settings().rules).fraud  # the history must pass the ledger's own fraud checks
    with progress_bars() as bar:
        summary = run_simulation(config, Path(out), force=force, limits=limits, progress=job_progress(bar))
    typer.echo(
        f"{summary.customers:,} customers over {summary.days} days ({summary.start.date()} to "
        f"{summary.end.date()}): {summary.transactions:,} transactions, {summary.campaigns} campaign(s), "
        f"{summary.offers_sent:,} offers sent, {summary.completions:,} completed -> {summary.out}"
    )


@cli_errors
def import_starbucks_data(
    directory: Annotated[
        str, typer.Argument(help="Folder with portfolio.json, profile.json, transcript.json.")
    ],
) -> None:
    """Load the Starbucks Rewards offers, customers, offer events and transactions; a re-run adds nothing."""
    from pathlib import Path

    from pipelines import check_directory, import_starbucks

    source = Path(directory)
    check_directory(source)
    run_job(lambda engine, rules, progress: import_starbucks(engine, source, rules=rules, progress=progress))


@cli_errors
def features(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Cutoff date YYYY-MM-DD: the features see only what happened before it."
        ),
    ] = None,
    engine: Annotated[
        str,
        # rich reads "[spark]" as a markup tag and drops it from --help: the backslash keeps the word
        typer.Option("--engine", help="pandas (in-process) or spark (needs the \\[spark] extra and Java)."),
    ] = "pandas",
    out: Annotated[
        str | None, typer.Option("--out", help="Snapshot folder (default var/features).", show_default=False)
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="Print the feature catalogue and exit.")] = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="With --list: as Markdown (this is docs/features.md).")
    ] = False,
) -> None:
    """Build the feature snapshot as of a date (Parquet + the online table), or list the catalogue."""
    from pathlib import Path

    from loyalty_core import InvalidInput

    if list_:
        print_catalogue(markdown)
        return
    if as_of is None:
        raise InvalidInput("--as-of DATE is required (or --list for the catalogue)")

    from loyalty_core import get_settings, load_rules
    from pipelines import DEFAULT_DIR, STEPS, parse_as_of_date, run_feature_job

    cutoff = parse_as_of_date(as_of)
    settings = get_settings()
    rules = load_rules(settings.rules)
    db = ledger_engine()
    try:
        with progress_bars() as bar:
            task = bar.add_task(f"features as of {as_of}", total=len(STEPS))
            report = run_feature_job(
                db,
                as_of=cutoff,
                rules=rules,
                compute=engine,
                out_dir=Path(out) if out else DEFAULT_DIR,
                step=lambda name: bar.update(task, advance=1, description=f"features as of {as_of}: {name}"),
            )
    finally:
        db.dispose()
    for line in report.lines():
        typer.echo(line)


def print_catalogue(markdown: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from pipelines import CATALOGUE, FEATURE_VERSION, catalogue_markdown

    if markdown:
        typer.echo(catalogue_markdown(), nl=False)
        return
    table = Table(title=f"Feature catalogue {FEATURE_VERSION} ({len(CATALOGUE)} features)")
    for name in ("feature", "meaning", "window", "type"):
        table.add_column(name, no_wrap=name in ("feature", "window"))
    for f in CATALOGUE:
        kind = f.dtype if f.vocabulary is None else "category: " + ", ".join(f.vocabulary)
        table.add_row(f.name, f.meaning, f.window, kind)
    Console().print(table)
