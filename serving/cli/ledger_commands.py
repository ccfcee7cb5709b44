"""``loyalty ingest`` and ``loyalty expire``: the ledger fed from files and swept of due points."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from serving.cli.job_runner import ledger_engine
from serving.cli.output import cli_errors, job_progress, progress_bars, stderr


def parse_as_of(value: str | None) -> Any:
    """A date means the end of that day (UTC); a timestamp without offset is UTC."""
    import datetime as dt

    from loyalty_core import InvalidInput

    if value is None:
        return dt.datetime.now(dt.UTC)
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) + dt.timedelta(days=1)
        ts = dt.datetime.fromisoformat(value)
    except OverflowError as exc:  # the end of 9999-12-31 is past the last representable instant
        raise InvalidInput(f"--as-of {value!r} is out of the range of dates the ledger can hold") from exc
    except ValueError as exc:
        raise InvalidInput(f"--as-of {value!r} is not a date (YYYY-MM-DD) or an ISO timestamp") from exc
    return ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)


@cli_errors
def ingest(
    path: Annotated[
        str,
        typer.Argument(
            help="A history directory (from `loyalty simulate`) or a transactions CSV/Parquet file."
        ),
    ],
    strict: Annotated[bool, typer.Option(help="Exit with code 1 when any row was rejected.")] = False,
    report: Annotated[str | None, typer.Option(help="Write every rejected row to this CSV.")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=0,
            help="Processes posting transactions, customers split between them (PostgreSQL, 20,000 rows or "
            "more); 0 = one per core.",
        ),
    ] = 0,
) -> None:
    """Post a history or a transactions file into the ledger (same rules as the API); re-runs add nothing."""
    import csv

    from loyalty_core import get_settings, load_rules
    from pipelines import ingest_path

    rules = load_rules(get_settings().rules)
    engine = ledger_engine()
    try:
        with progress_bars() as bar:
            loaded = ingest_path(
                engine, path, rules=rules, workers=workers, progress=job_progress(bar, "ingest ")
            )
    finally:
        engine.dispose()
    history, result = loaded.history, loaded.transactions
    if history is not None:
        typer.echo(
            f"{history.customers} customers, {history.offers} offers, {history.decisions} decisions "
            f"({history.decisions_new} new), {history.offer_events} offer events "
            f"({history.offer_events_new} new, {history.activations_new} new activations)"
        )
        typer.echo(
            f"offer completions: {history.completions_expected} in the history, "
            f"{history.completions_in_ledger} completed by the ledger, "
            f"{history.completions_matching} matching"
        )
        for note in history.notes:
            typer.echo(note)
    typer.echo(
        f"{result.rows_read} rows read: {result.posted} posted ({result.points} points), {result.held} held "
        f"for review, {result.already_present} already present, {result.rejected} rejected"
        + (f" ({result.processes} processes)" if result.processes > 1 else "")
    )
    for reason, count in result.rejected_by_reason().most_common():
        typer.echo(f"  rejected {count:>8}  {reason}")
    for problem in result.problems[:20]:
        stderr.print(
            f"row {problem.row}, column {problem.column}: {problem.reason}", markup=False, highlight=False
        )
    if len(result.problems) > 20:
        stderr.print(f"... and {len(result.problems) - 20} more (use --report FILE for all)", markup=False)
    if report:
        with open(report, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["row", "column", "reason", "transaction_id"])
            writer.writerows((p.row, p.column, p.reason, p.transaction_id or "") for p in result.problems)
    if strict and result.problems:
        raise typer.Exit(code=1)


@cli_errors
def expire(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Expire lots due by the end of this date, or up to now for today (default: now)."
        ),
    ] = None,
) -> None:
    """Expire what is left of due points lots and void timed-out holds (idempotent).

    Never past now: ``--as-of`` today means up to this moment, and a later date is refused, because an
    expiry cannot be taken back and points not yet due are still the customer's.
    """
    import datetime as dt

    from loyalty_core import check_not_after_now, run_expiry

    now = parse_as_of(None)
    cutoff = now if as_of is None else parse_as_of(as_of)  # a second now() would be after the first
    if as_of is not None and len(as_of) == 10 and dt.date.fromisoformat(as_of) == now.date():
        cutoff = now  # "by the end of today" cannot reach past this moment
    check_not_after_now(cutoff, now)
    engine = ledger_engine()
    try:
        with progress_bars() as bar:
            task = bar.add_task("expire", total=None)
            done = run_expiry(
                engine,
                as_of=cutoff,
                now=now,
                progress=lambda n, total: bar.update(task, completed=n, total=total),
            )
    finally:
        engine.dispose()
    typer.echo(
        f"expired {done.points} points in {done.lots} lots of {done.members} customers "
        f"as of {cutoff.isoformat()}"
    )
    typer.echo(f"voided {done.holds_voided} timed-out holds")
