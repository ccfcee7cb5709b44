"""The ``loyalty`` command line.

Commands are thin: parse arguments, read settings, call one function. Heavy modules (SQLAlchemy, Alembic,
uvicorn, pandas...) are imported inside the commands so that ``loyalty --help`` answers at once. Errors of
the ``LoyaltyError`` family become one red line on stderr and exit code 1 (see ``cli_errors``); anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import logging
import logging.config
import os
from collections.abc import Callable
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from loyalty_core.errors import LoyaltyError

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


@app.callback()
def _main(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details.")] = False,
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


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``, safe to print or log."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: show it, it is the user's own input and has no parsable password
        return url


@app.command()
@cli_errors
def init() -> None:
    """Create or migrate the database at LOYALTY_DATABASE_URL."""
    from sqlalchemy.exc import OperationalError

    from loyalty_core.config import get_settings
    from loyalty_core.db import make_engine, migrate, normalize_url
    from loyalty_core.errors import Unavailable

    url = normalize_url(get_settings().database_url)
    engine = make_engine(url)
    try:
        migrate(engine)
    except OperationalError as exc:
        raise Unavailable(f"cannot reach the database {mask_url(url)}: {exc.orig}") from exc
    finally:
        engine.dispose()
    typer.echo(f"database ready: {mask_url(url)}")


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
    """Run the HTTP service."""
    import uvicorn

    uvicorn.run(
        "serving.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers or os.cpu_count() or 1,
        log_config=logging_config((ctx.obj or {}).get("log_level", logging.INFO)),
    )


if __name__ == "__main__":
    app()
