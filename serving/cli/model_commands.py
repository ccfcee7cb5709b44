"""``loyalty train churn|offers|promote-uplift`` and ``loyalty score``: each registers or uses the
champions through one call of ``models``."""

from __future__ import annotations

from typing import Annotated

import typer

from serving.cli.job_runner import run_job
from serving.cli.output import cli_errors

# Both training commands register a version and move ``champion`` only when it wins, unless told not to.
NoPromote = Annotated[bool, typer.Option("--no-promote", help="Register but never move champion.")]


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

    from models import ChurnRequest, Registration, train_churn

    request = ChurnRequest(
        as_of=as_of, horizon_days=horizon_days, n_cutoffs=cutoffs, truth_dir=Path(truth) if truth else None
    )
    run_job(
        lambda engine, rules, progress: train_churn(
            engine,
            rules=rules,
            request=request,
            registration=Registration(promote=not no_promote),
            progress=progress,
        )
    )


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

    from models import OfferRequest, Registration, train_offers
    from pipelines import EPOCH

    split = None if starbucks_split_hour is None else EPOCH + dt.timedelta(hours=starbucks_split_hour)
    request = OfferRequest(
        as_of=as_of,
        split_at=split,
        uplift=False if no_uplift else None,  # None: [offers] uplift (trained only with a control group)
        truth_dir=Path(truth) if truth else None,
    )
    run_job(
        lambda engine, rules, progress: train_offers(
            engine,
            rules=rules,
            request=request,
            registration=Registration(promote=not no_promote),
            progress=progress,
        )
    )


@cli_errors
def promote_uplift_command(
    version: Annotated[str, typer.Argument(help="The loyalty-offer-uplift version to serve.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, recorded on the version.")],
) -> None:
    """Make an uplift version champion although the job did not (it must beat ranking by propensity)."""
    from models import UPLIFT_MODEL, promote_uplift

    promote_uplift(version, reason=reason)
    typer.echo(f"{UPLIFT_MODEL} v{version} is champion (override: {reason})")


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
    from models import MULTIPLIER_FILE, ScoreRequest, score_all

    # where the service reads the multiplier cut-off from (LOYALTY_MULTIPLIER_FILE), else var/policy/
    multiplier_file = get_settings().multiplier_file or MULTIPLIER_FILE
    request = ScoreRequest(
        as_of=as_of,
        out=Path(out),
        k=top_k,
        reasons_top=reasons_top,
        reasons_all=reasons,
        multiplier_budget=multiplier_budget,
        uplift=not no_uplift,
        multiplier_file=Path(multiplier_file),
    )
    run_job(
        lambda engine, rules, progress: score_all(engine, rules=rules, request=request, progress=progress)
    )
