"""A synthetic history of a Russian retail bank's customers, with the ground truth written apart.

Models and policies need data whose true response is known: how likely each customer was to complete each
offer with and without it, who would have bought anyway, who churns and why. ``population``, ``campaigns`` and
``transactions`` draw such a world (``world`` holds its tables); this module runs it chunk by chunk and writes
what a bank would have recorded: ``customers``, ``offers``, ``decisions`` (historical campaigns assigned at
random, each assignment with the probability it was made with), ``offer_events`` and ``transactions``,
plus ``truth/`` and a ``manifest.json``.

How it is drawn, in order:

1. Customers: attributes (age, region, income, tenure, preferred channel) and latent traits (activity rate,
   Dirichlet category tastes, salary day, bill habits, churn hazard, a response segment and responsiveness
   to each offer kind and to multipliers).
2. Campaigns, one every ~30 days, vectorised over customers: each customer still active is assigned an
   offer or the control group; the funnel (sent, viewed, activated) and an *incremental* qualifying
   transaction follow the response model. Churn is drawn alongside, campaign by campaign: each customer
   has an exponential "hazard budget", and an offer a responsive customer takes up lowers the hazard from
   that moment (a sleeping dog's raises it), so the churn time is known before any transaction is made.
3. Transactions, per chunk of customers: Poisson counts per customer-day (weekday and salary-day rhythms),
   lognormal amounts per category scaled by income, monthly bills on the customer's bill day, the
   incremental transactions; thinned to the customer's life (joined, churned, decaying before churn), then
   adjusted so that none would be held by the ledger's fraud checks (velocity, unusual amount), and
   completions are found exactly as ``loyalty_core.rules.compute_earning`` decides them.
4. Output: each chunk's transactions are spilled per calendar month; the months are then read back one at a
   time, sorted by time and written as row groups of one Parquet file, which is therefore in global
   ``(occurred_at, transaction_id)`` order while memory holds one month at most. Identifiers are numbered
   in that order. Same seed, same bytes: no clock is read into any file.

The truth's ``p_complete_*`` are the model's probabilities for a customer in their base state (alive, not
decaying), with the salary rhythm averaged out; see ``campaigns.offer_truth``. Extra columns beyond the
contract: ``truth/offer_effects`` also has ``p_meet_treated``, ``incremental_uplift`` and
``incremental_value``; ``truth/customers`` the rest of the latent state; ``truth/decisions.parquet`` gives
per decision the truth of its offer, the churn-hazard factor it caused and its incremental transaction.
``churn_truth`` reads an output back into the true probability of each customer's churn label at a cutoff.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from loyalty_core import CHANNELS, FraudLimits
from pipelines.sources.simulator.arrow import ROW_GROUP_ROWS, id_array, write_parquet
from pipelines.sources.simulator.campaigns import DecisionLog, offer_truth, run_campaigns
from pipelines.sources.simulator.config import Array, Calendar, SimConfig, check_config, make_calendar
from pipelines.sources.simulator.output import GENERATOR, VERSION, WORK_DIR, prepare_output
from pipelines.sources.simulator.population import draw_population
from pipelines.sources.simulator.tables import (
    TRANSACTIONS_SCHEMA,
    customers_table,
    decision_ids,
    decisions_table,
    events_table,
    offers_table,
    transactions_batch,
)
from pipelines.sources.simulator.transactions import (
    Rows,
    bill_rows,
    completions,
    incremental_rows,
    keep_alive,
    organic_rows,
    within_ledger_limits,
)
from pipelines.sources.simulator.truth import (
    offer_effects_table,
    truth_customers_table,
    truth_decisions_table,
)
from pipelines.sources.simulator.world import CATALOGUE, MADE_AT_SECONDS, Campaign

Progress = Callable[[str, int, int | None], None]


CHUNK_CELLS = 1_500_000  # customer-days generated at once (bounds memory whatever the history's length)


SPILL_DTYPE = np.dtype(
    [("c", "<i4"), ("t", "<i8"), ("type", "i1"), ("cat", "i1"), ("ch", "i1"), ("reg", "i1"), ("cents", "<i8"),
     ("inc", "<i8")]
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SimSummary:
    out: Path
    customers: int
    days: int
    seed: int
    start: dt.datetime
    end: dt.datetime
    campaigns: int
    decisions: int
    offers_sent: int
    completions: int
    transactions: int


def _spill(rows: Rows, cal: Calendar, work: Path, chunk: int) -> None:
    month = np.searchsorted(cal.month_start, rows.t, side="right") - 1
    packed = np.empty(len(rows), dtype=SPILL_DTYPE)
    for name in Rows.__slots__:
        packed[name] = getattr(rows, name)
    for m in np.unique(month):
        folder = work / f"m{m:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"c{chunk:06d}.npy", packed[month == m])


def write_transactions(
    path: Path, work: Path, cal: Calendar, customer_ids: pa.Array, n_decisions: int, tick: Progress
) -> tuple[int, Array]:
    """Merge the monthly spills, in time order, into one file: (rows, incremental txn number per decision)."""
    incremental = np.zeros(n_decisions, dtype=np.int64)
    written = 0
    months = len(cal.month_start)
    with pq.ParquetWriter(path, TRANSACTIONS_SCHEMA, compression="zstd", compression_level=3) as writer:
        for m in range(months):
            folder = work / f"m{m:04d}"
            parts = [np.load(p) for p in sorted(folder.glob("*.npy"))] if folder.is_dir() else []
            if parts:
                rows = np.concatenate(parts)
                rows = rows[np.lexsort((rows["c"], rows["t"]))]  # stable: a customer's ties keep chunk order
                inc = np.flatnonzero(rows["inc"] >= 0)
                incremental[rows["inc"][inc]] = written + 1 + inc
                for s in range(0, len(rows), ROW_GROUP_ROWS):
                    batch = rows[s : s + ROW_GROUP_ROWS]
                    writer.write_table(transactions_batch(cal, batch, written + 1 + s, customer_ids))
                written += len(rows)
                shutil.rmtree(folder)
            tick("writing", 1, None)
    return written, incremental


def _manifest(
    config: SimConfig,
    cal: Calendar,
    campaigns: list[Campaign],
    log: DecisionLog,
    rows: dict[str, int],
    limits: FraudLimits,
) -> dict[str, Any]:
    eligible = np.bincount(log.campaign.astype(np.int64), minlength=len(campaigns))
    return {
        "generator": GENERATOR,
        "version": VERSION,
        "seed": config.seed,
        "customers": config.customers,
        "days": config.days,
        "start": config.start_at.isoformat(),
        "end": config.end_at.isoformat(),
        "transactions_order": "occurred_at, then transaction_id (numbered in that order)",
        "fraud_limits": {
            "velocity_max": limits.velocity_max,
            "velocity_window_seconds": int(limits.velocity_window.total_seconds()),
            "unusual_amount_factor": str(limits.unusual_amount_factor),
            "unusual_min_history": limits.unusual_min_history,
        },
        "rows": rows,
        "campaigns": [
            {
                "id": c.campaign_id,
                "policy": c.policy,
                "start": (config.start_at + dt.timedelta(days=c.day)).isoformat(),
                "made_at": (config.start_at + dt.timedelta(days=c.day, seconds=MADE_AT_SECONDS)).isoformat(),
                "customers": int(eligible[i]),
                "arms": [
                    {
                        "offer_id": CATALOGUE[a].offer_id if a >= 0 else None,
                        "weight": c.base[j],
                        "probability": {ch: float(c.probabilities[x, j]) for x, ch in enumerate(CHANNELS)},
                    }
                    for j, a in enumerate(c.arms)
                ],
            }
            for i, c in enumerate(campaigns)
        ],
    }


def simulate(
    config: SimConfig,
    out: Path,
    *,
    force: bool = False,
    limits: FraudLimits | None = None,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
) -> SimSummary:
    """Draw the world of ``config`` and write it to ``out``; ``progress(stage, n, total)`` feeds a bar."""
    check_config(config, now or dt.datetime.now(dt.UTC))
    prepare_output(out, force=force)
    limits = limits or FraudLimits()

    def tick(stage: str, n: int, total: int | None = None) -> None:
        if progress is not None:
            progress(stage, n, total)

    seed = config.seed
    cal = make_calendar(config)
    tick("customers and campaigns", 0, 1)
    pop = draw_population(config, np.random.default_rng([seed, 1]))
    truth = offer_truth(pop)
    campaigns, log, churn_at = run_campaigns(cal, pop, truth, np.random.default_rng([seed, 2]))
    extra = incremental_rows(pop, log, np.random.default_rng([seed, 3]))
    extra_order = np.argsort(extra.c, kind="stable")
    extra = extra.take(extra_order)
    activations = np.flatnonzero(log.activated >= 0)
    activations = activations[np.argsort(log.customer[activations], kind="stable")]
    tick("customers and campaigns", 1)

    work = out / WORK_DIR
    step = max(64, CHUNK_CELLS // config.days)
    tick("transactions", 0, config.customers)
    done: list[tuple[Array, Array]] = []
    for chunk, lo in enumerate(range(0, config.customers, step)):
        hi = min(lo + step, config.customers)
        rng = np.random.default_rng([seed, 4, chunk])
        rows = Rows.concat([organic_rows(cal, pop, churn_at, lo, hi, rng), bill_rows(cal, pop, lo, hi, rng)])
        rows = keep_alive(rows, pop, churn_at, cal.end, rng)
        a, b = np.searchsorted(extra.c, [lo, hi])
        rows = Rows.concat([rows, extra.take(np.arange(a, b))])
        rows = rows.take(np.lexsort((rows.t, rows.c)))
        rows = within_ledger_limits(rows, limits)
        a, b = np.searchsorted(log.customer[activations], [lo, hi])
        done.append(completions(rows, log, activations[a:b], lo))
        _spill(rows, cal, work, chunk)
        tick("transactions", hi - lo)

    customer_ids = id_array("C", np.arange(1, config.customers + 1), 7)
    tick("writing", 0, len(cal.month_start) + 1)
    n_txns, incremental_txn = write_transactions(
        out / "transactions.parquet", work, cal, customer_ids, len(log), tick
    )
    shutil.rmtree(work, ignore_errors=True)
    completed = (
        np.concatenate([d for d, _ in done]) if done else np.zeros(0, dtype=np.int64),
        np.concatenate([t for _, t in done]) if done else np.zeros(0, dtype=np.int64),
    )
    ids = decision_ids(campaigns, log, customer_ids)
    counts = {
        "customers.parquet": write_parquet(
            customers_table(cal, pop, customer_ids), out / "customers.parquet"
        ),
        "offers.parquet": write_parquet(offers_table(), out / "offers.parquet"),
        "decisions.parquet": write_parquet(
            decisions_table(cal, campaigns, log, ids, customer_ids, pop), out / "decisions.parquet"
        ),
        "offer_events.parquet": write_parquet(
            events_table(cal, log, ids, customer_ids, pop, completed), out / "offer_events.parquet"
        ),
        "transactions.parquet": n_txns,
        "truth/customers.parquet": write_parquet(
            truth_customers_table(cal, pop, churn_at, customer_ids), out / "truth" / "customers.parquet"
        ),
        "truth/offer_effects.parquet": write_parquet(
            offer_effects_table(truth, customer_ids), out / "truth" / "offer_effects.parquet"
        ),
        "truth/decisions.parquet": write_parquet(
            truth_decisions_table(campaigns, log, ids, truth, incremental_txn),
            out / "truth" / "decisions.parquet",
        ),
    }
    manifest = _manifest(config, cal, campaigns, log, counts, limits)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    tick("writing", 1)
    return SimSummary(
        out=out,
        customers=config.customers,
        days=config.days,
        seed=seed,
        start=config.start_at,
        end=config.end_at,
        campaigns=len(campaigns),
        decisions=len(log),
        offers_sent=int((log.sent >= 0).sum()),
        completions=len(completed[0]),
        transactions=n_txns,
    )


# --- reading the truth back ---------------------------------------------------------------------------------
