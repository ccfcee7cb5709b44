"""``loyalty demo``: the whole loop on the embedded defaults, for a newcomer's first five minutes.

simulate a bank -> post its history through the ledger -> build the feature snapshot and the online table ->
train the churn and offer models (MLflow, registry alias ``champion``) -> score every customer -> say how to
start the service and call it. Every step is the same code as its own command, so what the demo shows is
what the platform does; it lives in ``serving`` only because it strings all the layers together.

The bank ends where today begins: its history runs up to yesterday (UTC), and what was due by now has
expired, so a posting made today through the service continues it, and every as-of date of the loop derives
from the history's end rather than from a fixed calendar.

Re-running is safe: the simulator rewrites its own output with the same bytes, the ledger adds nothing
twice, and a new training run only takes ``champion`` if it beats it. A re-run on a later day keeps the bank
the database already holds (its end stays where it was: delete ``var/`` for a bank ending today). A
different ``--seed`` or size against a database that already holds another demo would mix two banks, so that
is refused with a way out.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty_core import (
    DEFAULT_VAR,
    InvalidInput,
    Member,
    Settings,
    load_rules,
    make_engine,
    migrate,
    run_expiry,
)
from models import (
    MULTIPLIER_FILE,
    ChurnRequest,
    OfferRequest,
    ScoreRequest,
    caused_by_first_offers,
    score_all,
    train_churn,
    train_offers,
)
from pipelines import DEFAULT_DIR as FEATURES_DIR
from pipelines import SimConfig, ingest_history, run_feature_job, simulate, today_utc

DEMO_DIR = DEFAULT_VAR / "demo"
Progress = Callable[[str, int, int | None], None]


@dataclass(slots=True)
class DemoReport:
    history: Path
    scores: Path | None = None
    lines: list[str] = field(default_factory=list)
    customer_id: str | None = None


def _manifest(history: Path) -> dict[str, Any] | None:
    path = history / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else None


def check_same_bank(engine: Engine, history: Path, config: SimConfig) -> SimConfig:
    """The bank to simulate: ``config``, or the one the database already holds when only its end differs
    (a re-run on a later day); a second, different simulated bank is refused."""
    previous = _manifest(history)
    if previous is None:
        return config
    with Session(engine) as session:
        members = session.scalar(select(func.count()).select_from(Member)) or 0
    if not members:
        return config
    size = (previous.get("seed"), previous.get("customers"), previous.get("days"))
    if size == (config.seed, config.customers, config.days) and previous.get("start"):
        start = dt.datetime.fromisoformat(str(previous["start"])).date()
        return SimConfig(customers=config.customers, days=config.days, seed=config.seed, start=start)
    raise InvalidInput(
        f"the database already holds the demo bank of {history} (seed {previous.get('seed')}, "
        f"{previous.get('customers')} customers, {previous.get('days')} days); run the demo again with "
        "those settings, or point LOYALTY_DATABASE_URL at a fresh database (or delete var/) first",
        field="seed",
    )


def caused_lines(scores: Path, truth: Path) -> list[str]:
    """What the first offers scored would cause, by the simulator's truth: the value a targeting policy is
    judged by (``models.evaluation.incremental``), against the best the catalogue could do."""
    frame = pd.read_parquet(scores)
    if "offer_1" not in frame.columns or not truth.is_file():
        return []
    effects = pd.read_parquet(truth, columns=["customer_id", "offer_id", "incremental_value"])
    got = caused_by_first_offers(
        frame[["customer_id", "offer_1"]].rename(columns={"offer_1": "offer_id"}), effects
    )
    share = f" ({got['served'] / got['best']:.0%} of it)" if got["best"] > 0 else ""
    return [
        f"what the first offers cause (simulator's truth): {got['served']:+.2f} RUB per customer, value "
        f"caused minus every reward paid, {int(got['sent']):,} of {int(got['customers']):,} customers sent "
        f"one; the best true offer per customer (or none, eligibility ignored): {got['best']:+.2f}{share}"
    ]


def run_demo(
    settings: Settings,
    *,
    customers: int,
    days: int,
    seed: int,
    out: Path = DEMO_DIR,
    end: dt.date | None = None,
    features_dir: Path = FEATURES_DIR,
    multiplier_file: Path = MULTIPLIER_FILE,
    progress: Progress | None = None,
) -> DemoReport:
    """Run every step; ``progress(stage, advance, total)`` drives the bars, ``lines`` is the summary.

    ``end``: where the history stops (default today, UTC: its last day is yesterday).
    """

    def tick(stage: str, n: int, total: int | None = None) -> None:
        if progress is not None:
            progress(stage, n, total)

    rules = load_rules(settings.rules)
    history = out / "history"
    config = SimConfig.ending(end or today_utc(), customers=customers, days=days, seed=seed)
    engine = make_engine(settings.database_url)
    report = DemoReport(history=history)
    try:
        migrate(engine)
        config = check_same_bank(engine, history, config)
        sim = simulate(config, history, limits=rules.fraud, progress=tick)
        report.lines.append(
            f"simulated {sim.customers:,} customers over {sim.days} days ({sim.start.date()} to "
            f"{(sim.end - dt.timedelta(days=1)).date()}): {sim.transactions:,} transactions, "
            f"{sim.campaigns} campaigns, {sim.offers_sent:,} offers sent -> {history}"
        )
        loaded = ingest_history(engine, history, rules=rules, progress=tick)
        txns = loaded.transactions
        assert txns is not None
        report.lines.append(
            f"ledger: {txns.posted:,} postings ({txns.points:,} points), {txns.already_present:,} already "
            f"there, {txns.rejected} rejected; offer completions agree with the history: "
            f"{'yes' if loaded.completions_agree else 'NO'} ({loaded.completions_in_ledger:,})"
        )
        now = dt.datetime.now(dt.UTC)
        # Lots that fell due along the history still count until an expiry runs: hand over the ledger
        # `loyalty expire` would leave.
        tick("expire", 0, 1)
        swept = run_expiry(engine, as_of=now, now=now)
        tick("expire", 1)
        report.lines.append(
            f"expiry up to now: {swept.points:,} points in {swept.lots:,} lots "
            "that fell due during the history"
        )
        as_of = sim.end.replace(hour=0, minute=0, second=0, microsecond=0)
        tick("features", 0, 1)
        feats = run_feature_job(engine, as_of=as_of, rules=rules, out_dir=features_dir)
        tick("features", 1)
        report.lines.append(
            f"features as of {as_of.date()}: {feats.customers:,} customers x {feats.features} features "
            f"-> {feats.path} and the online table"
        )
        churn = train_churn(
            engine, rules=rules, request=ChurnRequest(truth_dir=history / "truth"), progress=tick
        )
        report.lines.extend(line for line in churn.lines() if not line.startswith(("time:", "MLflow run")))
        offers = train_offers(
            engine, rules=rules, request=OfferRequest(truth_dir=history / "truth"), progress=tick
        )
        report.lines.extend(line for line in offers.lines() if not line.startswith(("time:", "MLflow run")))
        report.scores = out / "scores.parquet"
        scored = score_all(
            engine,
            rules=rules,
            request=ScoreRequest(as_of=as_of, out=report.scores, multiplier_file=multiplier_file),
            progress=tick,
        )
        report.lines.extend(scored.lines())
        report.lines.extend(caused_lines(report.scores, history / "truth" / "offer_effects.parquet"))
        report.customer_id = scored.example_customer
    finally:
        engine.dispose()
    return report


def service_instructions(settings: Settings, customer_id: str | None) -> list[str]:
    """How to start the service and three calls to paste, with this machine's keys."""
    keys: dict[str, str] = {}
    for item in settings.api_keys.split(","):
        scope, _, key = item.strip().partition(":")
        keys.setdefault(scope.strip(), key.strip())
    core = keys.get("core") or keys.get("admin", "KEY")
    marketing = keys.get("marketing") or keys.get("admin", "KEY")
    customer = customer_id or "C0000001"
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    base = "http://127.0.0.1:8000"
    json_header = "-H 'Content-Type: application/json'"
    return [
        "Start the service (one worker per core; docs at http://127.0.0.1:8000/docs):",
        "  .venv/bin/loyalty serve",
        "API keys (LOYALTY_API_KEYS; these defaults are for local use only): "
        + ", ".join(f"{scope}={key}" for scope, key in keys.items()),
        "Score a customer (churn probability, bonus multiplier, best offers):",
        f"  curl -s -X POST {base}/v1/score -H 'X-API-Key: {core}' {json_header} "
        f'-d \'{{"customer_ids": ["{customer}"]}}\'',
        "Rank offers for them (each with its expected value and the probability the policy chose it):",
        f"  curl -s -X POST {base}/v1/offers/rank -H 'X-API-Key: {marketing}' {json_header} "
        f'-d \'{{"customer_id": "{customer}", "k": 3}}\'',
        "Post a transaction (1 point per full 100 RUB for a purchase):",
        f"  curl -s -X POST {base}/v1/transactions -H 'X-API-Key: {core}' {json_header} "
        f'-d \'{{"transaction_id": "demo-{now}", "customer_id": "{customer}", "type": "purchase", '
        f'"amount": "2500.00", "occurred_at": "{now}"}}\'',
    ]
