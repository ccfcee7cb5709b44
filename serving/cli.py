"""The ``loyalty`` command line.

Commands are thin: parse arguments, read settings, call one function. Heavy modules (SQLAlchemy, Alembic,
uvicorn, pandas...) are imported inside the commands so that ``loyalty --help`` answers at once. Errors of
the ``LoyaltyError`` family become one red line on stderr and exit code 1 (see ``cli_errors``); anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import logging
import logging.config
import os
from collections.abc import Callable, Iterator
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from loyalty_core import LoyaltyError

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="loyalty",
    help="Bank loyalty-points platform: ledger, features, models and the decision service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stderr = Console(stderr=True)


DISTRIBUTION = "loyalty-platform"  # the name pyproject.toml installs the package under


def _print_version(value: bool) -> None:
    """``--version``: the installed distribution's version, so it matches what pip reports."""
    if value:
        typer.echo(f"loyalty {importlib.metadata.version(DISTRIBUTION)}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the installed version and exit."
        ),
    ] = False,
) -> None:
    """Configure logging once, for every command."""
    level = logging.DEBUG if verbose else logging.INFO
    configure_logging(level)
    ctx.obj = {"log_level": level}


def logging_config(level: int = logging.INFO) -> dict[str, Any]:
    """The one logging setup (a ``dictConfig``), also handed to uvicorn so every worker process uses it."""
    name = logging.getLevelName(level)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}
        },
        "root": {"level": name, "handlers": ["stderr"]},
        "loggers": {
            # Alembic logs every revision at INFO: useful once, noise in tests and demos.
            "alembic": {"level": "DEBUG" if level <= logging.DEBUG else "WARNING"},
            "uvicorn": {"level": name, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": name, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": name, "handlers": [], "propagate": True},
        },
    }


def configure_logging(level: int = logging.INFO) -> None:
    """Log to stderr with timestamps; library modules only ever call ``logging.getLogger(__name__)``."""
    logging.config.dictConfig(logging_config(level))


def cli_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a ``LoyaltyError`` raised by a command into one red line on stderr and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except LoyaltyError as exc:
            one_line = " ".join(exc.message.split())
            stderr.print(f"error: {one_line}", style="red", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(code=1) from exc

    return wrapper


def _ledger_engine() -> Any:
    """An engine on the configured ledger, refused with one line saying what to run when its schema is
    missing or behind this version's: without the check, ``no such table: members`` ends a traceback.

    A SQLite file that is not there is refused before connecting, which would create it empty.
    """
    from pathlib import Path

    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    from loyalty_core import Unavailable, alembic_config, get_settings, make_engine
    from serving.stores import safe_url

    url = get_settings().database_url
    shown = safe_url(url)
    parsed = make_url(url)
    database = parsed.database or ""
    if (
        parsed.get_backend_name() == "sqlite"
        and database not in ("", ":memory:")
        and not database.startswith("file:")
        and not Path(database).expanduser().exists()
    ):
        raise Unavailable(f"there is no ledger database at {shown} yet: run `loyalty init` to create it")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:
        engine.dispose()
        raise Unavailable(f"cannot reach the database {shown}: {exc.orig}") from exc
    scripts = ScriptDirectory.from_config(alembic_config())
    heads = scripts.get_heads()
    if current in heads:
        return engine
    engine.dispose()
    if current is None:
        raise Unavailable(f"the database {shown} has no ledger schema yet: run `loyalty init` to create it")
    if current in {script.revision for script in scripts.walk_revisions()}:
        raise Unavailable(
            f"the database {shown} has an older ledger schema ({current}, this version needs "
            f"{', '.join(heads)}): run `loyalty init` to migrate it"
        )
    raise Unavailable(
        f"the database {shown} has a ledger schema ({current}) this version of loyalty does not know: it "
        "was migrated by a newer version; install that version"
    )


@app.command()
@cli_errors
def init() -> None:
    """Create or migrate the database at LOYALTY_DATABASE_URL (``serve`` does it too, with MLflow's store)."""
    from loyalty_core import get_settings
    from serving.stores import prepare_ledger

    typer.echo(f"database ready: {prepare_ledger(get_settings().database_url)}")


@app.command()
@cli_errors
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default: one per core).", show_default=False)
    ] = None,
) -> None:
    """Run the HTTP service (the database and the MLflow store are set up first, like `loyalty init`)."""
    import uvicorn

    from loyalty_core import get_settings
    from serving.metrics import prepare_multiprocess_dir, remove_multiprocess_dir
    from serving.stores import prepare_stores

    # Here, once, before the workers: each one setting up a new MLflow store at the same time breaks it.
    prepare_stores(get_settings().database_url)
    processes = workers or os.cpu_count() or 1
    metrics_dir = prepare_multiprocess_dir(processes)  # /metrics must add up every worker's counters
    try:
        uvicorn.run(
            "serving.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=processes,
            access_log=False,  # one log line per request costs ~8 % of throughput; metrics count requests
            log_config=logging_config((ctx.obj or {}).get("log_level", logging.INFO)),
        )
    finally:
        remove_multiprocess_dir(metrics_dir)


def _parse_as_of(value: str | None) -> Any:
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


@contextlib.contextmanager
def _progress() -> Iterator[Any]:
    """Progress bars on stderr, with log records printed above them while they are shown.

    The plain handler writes to stderr behind the bars' back, so its lines land inside a half-drawn bar;
    the bars' own console knows where the bars are and prints each record above them.
    """
    from rich.logging import RichHandler
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=False,
    )
    root = logging.getLogger()
    plain = [h for h in root.handlers if type(h) is logging.StreamHandler]
    rich_handler = RichHandler(console=stderr, show_path=False, markup=False, rich_tracebacks=False)
    rich_handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    for handler in plain:
        rich_handler.setLevel(handler.level)
        root.removeHandler(handler)
    root.addHandler(rich_handler)
    try:
        with bar:
            yield bar
    finally:
        root.removeHandler(rich_handler)
        for handler in plain:
            root.addHandler(handler)


@app.command()
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
    with _progress() as bar:
        summary = run_simulation(config, Path(out), force=force, limits=limits, progress=_job_progress(bar))
    typer.echo(
        f"{summary.customers:,} customers over {summary.days} days ({summary.start.date()} to "
        f"{summary.end.date()}): {summary.transactions:,} transactions, {summary.campaigns} campaign(s), "
        f"{summary.offers_sent:,} offers sent, {summary.completions:,} completed -> {summary.out}"
    )


def _ingest_history(engine: Any, source: Any, rules: Any, ingest_history: Any, *, workers: int = 1) -> Any:
    """Run ``ingest_history`` with one progress bar per stage."""
    with _progress() as bar:
        return ingest_history(
            engine, source, rules=rules, progress=_job_progress(bar, "ingest "), workers=workers
        )


@app.command()
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
    from pathlib import Path

    from loyalty_core import InvalidInput, get_settings, load_rules
    from pipelines import IngestReport, ingest_frame, ingest_history, read_transactions

    settings = get_settings()
    source = Path(path)
    if not source.exists():
        raise InvalidInput(f"{source}: no such file or directory")
    rules = load_rules(settings.rules)
    engine = _ledger_engine()
    history = None
    processes = workers or os.cpu_count() or 1
    try:
        if source.is_dir():
            history = _ingest_history(engine, source, rules, ingest_history, workers=processes)
            assert history.transactions is not None
            result: IngestReport = history.transactions
        else:
            frame = read_transactions(source)
            with _progress() as bar:
                task = bar.add_task(f"ingest {source.name}", total=len(frame))
                result = ingest_frame(
                    engine,
                    frame,
                    rules=rules,
                    source=str(source),
                    progress=lambda n: bar.advance(task, n),
                    workers=processes,
                )
    finally:
        engine.dispose()
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


@app.command()
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

    now = _parse_as_of(None)
    cutoff = now if as_of is None else _parse_as_of(as_of)  # a second now() would be after the first
    if as_of is not None and len(as_of) == 10 and dt.date.fromisoformat(as_of) == now.date():
        cutoff = now  # "by the end of today" cannot reach past this moment
    check_not_after_now(cutoff, now)
    engine = _ledger_engine()
    try:
        with _progress() as bar:
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


import_app = typer.Typer(help="Load outside datasets into the platform.", no_args_is_help=True)
app.add_typer(import_app, name="import")


@import_app.command("starbucks")
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
    _run_job(lambda engine, rules, progress: import_starbucks(engine, source, rules=rules, progress=progress))


@app.command()
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
        _print_catalogue(markdown)
        return
    if as_of is None:
        raise InvalidInput("--as-of DATE is required (or --list for the catalogue)")

    from loyalty_core import get_settings, load_rules
    from pipelines import DEFAULT_DIR, STEPS, parse_as_of_date, run_feature_job

    cutoff = parse_as_of_date(as_of)
    settings = get_settings()
    rules = load_rules(settings.rules)
    db = _ledger_engine()
    try:
        with _progress() as bar:
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


# Both training commands register a version and move ``champion`` only when it wins, unless told not to.
NoPromote = Annotated[bool, typer.Option("--no-promote", help="Register but never move champion.")]

train_app = typer.Typer(
    help="Train a model, log it to MLflow, register it and promote it when better.", no_args_is_help=True
)
app.add_typer(train_app, name="train")


def _job_progress(bar: Any, prefix: str = "") -> Callable[[str, int, int | None], None]:
    """One bar per stage of a job's ``progress(stage, advance, total)`` callback.

    Jobs run one after another on one callback (the demo: simulate, ingest, train churn, train offers...)
    reuse stage names: the simulator's "transactions" counts customers, the ingest's counts rows, and both
    trainings have a "features" stage. A stage that comes back after its bar is full is a new stage, with a
    bar of its own; adding it to the finished one showed ``transactions 257921/256421``.
    """
    tasks: dict[str, Any] = {}

    def progress(stage: str, n: int, total: int | None = None) -> None:
        if stage in tasks and any(t.id == tasks[stage] and t.finished for t in bar.tasks):
            if n == 0 and total is None:  # a finished stage's last "nothing more" (ingest's rejected rows)
                return
            del tasks[stage]
        if stage not in tasks:
            tasks[stage] = bar.add_task(prefix + stage, total=total)
        elif total is not None:
            bar.update(tasks[stage], total=total)
        bar.advance(tasks[stage], n)

    return progress


def _run_job(job: Callable[[Any, Any, Callable[[str, int, int | None], None]], Any]) -> None:
    """What every staged job does around its work: the configured database and rules, a bar per stage, the
    engine released whatever happens, then the report's lines. ``job(engine, rules, progress)``."""
    from loyalty_core import get_settings, load_rules

    settings = get_settings()
    rules = load_rules(settings.rules)
    engine = _ledger_engine()
    try:
        with _progress() as bar:
            report = job(engine, rules, _job_progress(bar))
    finally:
        engine.dispose()
    for line in report.lines():
        typer.echo(line)


@train_app.command("churn")
@cli_errors
def train_churn_command(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Last training cutoff YYYY-MM-DD (its labels look --horizon-days past it, never further); "
            "default: the latest whose label window is complete in the data.",
        ),
    ] = None,
    horizon_days: Annotated[int, typer.Option("--horizon-days", help="Churn label window in days.")] = 90,
    cutoffs: Annotated[
        int, typer.Option("--cutoffs", help="Monthly cutoffs to train on (the last validates).")
    ] = 6,
    truth: Annotated[
        str | None,
        typer.Option(
            "--truth", help="A simulator output (or its truth/) to measure the gap to the true P(churn) on."
        ),
    ] = None,
    no_promote: NoPromote = False,
) -> None:
    """Train the churn model (LightGBM vs recency/frequency rule and BG/NBD), register loyalty-churn."""
    from pathlib import Path

    from models import train_churn

    _run_job(
        lambda engine, rules, progress: train_churn(
            engine,
            rules=rules,
            as_of=as_of,
            horizon_days=horizon_days,
            n_cutoffs=cutoffs,
            truth_dir=Path(truth) if truth else None,
            promote=not no_promote,
            progress=progress,
        )
    )


@train_app.command("offers")
@cli_errors
def train_offers_command(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Last training cutoff YYYY-MM-DD, a day offers were sent on; default: the latest whose "
            "offers' validity is complete in the data.",
        ),
    ] = None,
    truth: Annotated[
        str | None,
        typer.Option(
            "--truth",
            help="A simulator output (or its truth/) to compare the propensity and uplift estimates with.",
        ),
    ] = None,
    starbucks_split_hour: Annotated[
        int | None,
        typer.Option(
            "--starbucks-split-hour",
            help="Starbucks benchmark: sends before this hour of the Starbucks clock train, the rest "
            "validate.",
        ),
    ] = None,
    no_uplift: Annotated[bool, typer.Option("--no-uplift", help="Skip the uplift model.")] = False,
    no_promote: NoPromote = False,
) -> None:
    """Train the offer-propensity model (and the uplift model when the log has a control group)."""
    import datetime as dt
    from pathlib import Path

    from models import train_offers
    from pipelines import EPOCH

    split = None if starbucks_split_hour is None else EPOCH + dt.timedelta(hours=starbucks_split_hour)
    _run_job(
        lambda engine, rules, progress: train_offers(
            engine,
            rules=rules,
            as_of=as_of,
            split_at=split,
            uplift=not no_uplift,
            truth_dir=Path(truth) if truth else None,
            promote=not no_promote,
            progress=progress,
        )
    )


@train_app.command("promote-uplift")
@cli_errors
def promote_uplift_command(
    version: Annotated[str, typer.Argument(help="The loyalty-offer-uplift version to serve.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, recorded on the version.")],
) -> None:
    """Make an uplift version champion although the job did not (it must beat ranking by propensity)."""
    from models import UPLIFT_MODEL, promote_uplift

    promote_uplift(version, reason=reason)
    typer.echo(f"{UPLIFT_MODEL} v{version} is champion (override: {reason})")


@app.command()
@cli_errors
def score(
    as_of: Annotated[
        str, typer.Option("--as-of", help="Score with the features as of this date (YYYY-MM-DD).")
    ],
    out: Annotated[str, typer.Option("--out", help="Output file: .parquet, or .csv.")],
    top_k: Annotated[int, typer.Option("--top-k", help="Offers per customer.")] = 3,
    reasons: Annotated[
        bool, typer.Option("--reasons", help="Reason codes for every customer (slow: 2-8 ms each).")
    ] = False,
    reasons_top: Annotated[
        int,
        typer.Option("--reasons-top", help="Without --reasons: reason codes for the N riskiest customers."),
    ] = 1000,
    multiplier_budget: Annotated[
        float | None,
        typer.Option(
            "--multiplier-budget", help="Expected extra points the bonus multipliers may cost in all."
        ),
    ] = None,
    no_uplift: Annotated[
        bool,
        typer.Option(
            "--no-uplift", help="Rank offers by propensity x (value - cost) only, without the uplift models."
        ),
    ] = False,
) -> None:
    """Batch-score every customer with the champions: churn, best offers, bonus multiplier, reasons."""
    from pathlib import Path

    from loyalty_core import get_settings
    from models import MULTIPLIER_FILE, score_all

    # where the service reads the multiplier cut-off from (LOYALTY_MULTIPLIER_FILE), else var/policy/
    multiplier_file = get_settings().multiplier_file or MULTIPLIER_FILE
    _run_job(
        lambda engine, rules, progress: score_all(
            engine,
            rules=rules,
            as_of=as_of,
            out=Path(out),
            k=top_k,
            reasons_top=reasons_top,
            reasons_all=reasons,
            multiplier_budget=multiplier_budget,
            uplift=not no_uplift,
            multiplier_file=Path(multiplier_file),
            progress=progress,
        )
    )


def _print_catalogue(markdown: bool) -> None:
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


@app.command()
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
    with _progress() as bar:
        report = run_demo(settings, customers=customers, days=days, seed=seed, progress=_job_progress(bar))
    for line in report.lines:
        typer.echo(line)
    typer.echo("")
    for line in service_instructions(settings, report.customer_id):
        typer.echo(line)


if __name__ == "__main__":
    app()
