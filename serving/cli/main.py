"""The ``loyalty`` command line: the Typer app, its global options and every command registered on it.

Commands are thin: parse arguments, read settings, call one function. Heavy modules (SQLAlchemy, Alembic,
uvicorn, pandas...) are imported inside the commands so that ``loyalty --help`` answers at once. Errors of
the ``LoyaltyError`` family become one red line on stderr and exit code 1 (see ``cli_errors``); anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib.metadata
import logging
from typing import Annotated

import typer

from serving.cli.data_commands import features, import_starbucks_data, simulate
from serving.cli.demo_command import demo
from serving.cli.ledger_commands import expire, ingest
from serving.cli.model_commands import (
    promote_uplift_command,
    score,
    train_churn_command,
    train_offers_command,
)
from serving.cli.output import configure_logging
from serving.cli.service_commands import init, serve

app = typer.Typer(
    name="loyalty",
    help="Bank loyalty-points platform: ledger, features, models and the decision service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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


# Registered in the order ``loyalty --help`` lists them.
app.command()(init)
app.command()(serve)
app.command()(simulate)
app.command()(ingest)
app.command()(expire)

import_app = typer.Typer(help="Load outside datasets into the platform.", no_args_is_help=True)
app.add_typer(import_app, name="import")
import_app.command("starbucks")(import_starbucks_data)

app.command()(features)

train_app = typer.Typer(
    help="Train a model, log it to MLflow, register it and promote it when better.", no_args_is_help=True
)
app.add_typer(train_app, name="train")
train_app.command("churn")(train_churn_command)
train_app.command("offers")(train_offers_command)
train_app.command("promote-uplift")(promote_uplift_command)

app.command()(score)
app.command()(demo)
