"""``loyalty init`` and ``loyalty serve``: the stores set up once, then the HTTP service."""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer

from serving.cli.output import cli_errors, logging_config


@cli_errors
def init() -> None:
    """Create or migrate the database at LOYALTY_DATABASE_URL (``serve`` does it too, with MLflow's store)."""
    from loyalty_core import get_settings
    from serving.runtime.stores import prepare_ledger

    typer.echo(f"database ready: {prepare_ledger(get_settings().database_url)}")


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
    from serving.runtime.metrics import prepare_multiprocess_dir, remove_multiprocess_dir
    from serving.runtime.stores import prepare_stores

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
