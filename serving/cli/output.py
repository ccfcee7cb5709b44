"""What every command shares on the terminal: the logging setup, one red line for a ``LoyaltyError`` and
progress bars on stderr (stdout stays the command's answer, for pipes)."""

from __future__ import annotations

import contextlib
import functools
import logging
import logging.config
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from loyalty_core import LoyaltyError

P = ParamSpec("P")
R = TypeVar("R")
stderr = Console(stderr=True)


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


@contextlib.contextmanager
def progress_bars() -> Iterator[Any]:
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


def job_progress(bar: Any, prefix: str = "") -> Callable[[str, int, int | None], None]:
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
