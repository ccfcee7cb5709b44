"""A synthetic history of a Russian retail bank's customers, with the ground truth written apart.

Models and policies need data whose true response is known: how likely each customer was to complete each
offer with and without it, who would have bought anyway, who churns and why. ``pipelines.sim_model`` draws
such a world (``pipelines.sim_catalogue`` holds its tables); this module runs it chunk by chunk and writes
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
decaying), with the salary rhythm averaged out; see ``sim_model.offer_truth``. Extra columns beyond the
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
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from loyalty_core import TXN_TYPES, FraudLimits, InvalidInput
from pipelines.history import FILES  # the history format the simulator writes
from pipelines.sim_catalogue import (
    BILL_KINDS,
    CATALOGUE,
    CATEGORY_NAMES,
    CHANNELS,
    GENDERS,
    INCOME_BANDS,
    MADE_AT_SECONDS,
    OFFER_KINDS,
    PURCHASE_CATEGORIES,
    REGIONS,
    SEGMENTS,
    Campaign,
)
from pipelines.sim_model import (
    DAY,
    DEFAULT_START,
    NEVER,
    Calendar,
    ChurnTraits,
    DecisionLog,
    OfferTruth,
    Population,
    Rows,
    SimConfig,
    bill_rows,
    check_config,
    churn_label_probability,
    completions,
    draw_population,
    incremental_rows,
    keep_alive,
    make_calendar,
    offer_truth,
    organic_rows,
    run_campaigns,
    today_utc,
    within_ledger_limits,
)

Array = npt.NDArray[Any]
Progress = Callable[[str, int, int | None], None]

GENERATOR = "loyalty-simulator"
VERSION = "1"
CHUNK_CELLS = 1_500_000  # customer-days generated at once (bounds memory whatever the history's length)
ROW_GROUP_ROWS = 500_000
WORK_DIR = ".simulator-work"
TRUTH_FILES = ("truth/customers.parquet", "truth/offer_effects.parquet", "truth/decisions.parquet")
MONEY = pa.decimal128(18, 2)
RATE = pa.decimal128(10, 4)
TIMESTAMP = pa.timestamp("us", tz="UTC")
EVENTS = ("sent", "viewed", "activated", "completed")
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


# --- writing -----------------------------------------------------------------------------------------------


def _money(cents: Array) -> pa.Array:
    """decimal128(18,2) straight from integer cents (two's complement little-endian, 16 bytes each)."""
    words = np.zeros((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = np.where(cents < 0, -1, 0)
    return pa.Array.from_buffers(MONEY, len(cents), [None, pa.py_buffer(words)])


def _times(cal: Calendar, seconds: Array, missing: Array | None = None) -> pa.Array:
    micros = (cal.start_epoch + np.where(seconds >= 0, seconds, 0)) * 1_000_000
    return pa.array(micros, TIMESTAMP, mask=missing)


def _names(names: tuple[str, ...] | list[str], codes: Array) -> pa.Array:
    return pa.array(list(names), pa.string()).take(pa.array(np.asarray(codes, dtype=np.int64)))


def _ids(prefix: str, numbers: Array, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(np.asarray(numbers, dtype=np.int64)), pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def _write(table: pa.Table, path: Path) -> int:
    """Deterministic Parquet: fixed codec and row groups, no pandas metadata, nothing taken from the clock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd", compression_level=3, row_group_size=ROW_GROUP_ROWS)
    return int(table.num_rows)


TRANSACTIONS_SCHEMA = pa.schema(
    [
        ("transaction_id", pa.string()),
        ("customer_id", pa.string()),
        ("occurred_at", TIMESTAMP),
        ("type", pa.string()),
        ("amount", MONEY),
        ("category", pa.string()),
        ("channel", pa.string()),
        ("currency", pa.string()),
        ("region", pa.string()),
    ]
)


def customers_table(cal: Calendar, pop: Population, ids: pa.Array) -> pa.Table:
    epoch_day = cal.start_epoch // DAY
    return pa.table(
        {
            "customer_id": ids,
            "joined_on": pa.array((epoch_day + pop.joined_day).astype(np.int32), pa.date32()),
            "birth_year": pa.array(pop.birth_year.astype(np.int16), pa.int16()),
            "gender": _names(GENDERS, np.where(pop.female, 0, 1)),
            "region": _names([r.name for r in REGIONS], pop.region),
            "income_band": _names(INCOME_BANDS, pop.band),
            "income": _money(np.rint(pop.income * 100).astype(np.int64)),
            "channel": _names(CHANNELS, pop.pref),
        }
    )


def offers_table() -> pa.Table:
    def listed(values: tuple[str, ...] | None) -> list[str] | None:
        return list(values) if values is not None else None

    return pa.table(
        {
            "offer_id": pa.array([o.offer_id for o in CATALOGUE], pa.string()),
            "name": pa.array([o.name for o in CATALOGUE], pa.string()),
            "kind": pa.array([o.kind for o in CATALOGUE], pa.string()),
            "multiplier": pa.array([o.multiplier for o in CATALOGUE], RATE),
            "bonus_points": pa.array([o.bonus_points for o in CATALOGUE], pa.int32()),
            "threshold": pa.array([o.threshold for o in CATALOGUE], MONEY),
            "categories": pa.array([listed(o.categories) for o in CATALOGUE], pa.list_(pa.string())),
            "txn_types": pa.array([listed(o.txn_types) for o in CATALOGUE], pa.list_(pa.string())),
            "channels": pa.array([listed(o.channels) for o in CATALOGUE], pa.list_(pa.string())),
            "duration_days": pa.array([o.duration_days for o in CATALOGUE], pa.int32()),
            "cost": pa.array([o.cost for o in CATALOGUE], MONEY),
            "value": pa.array([o.value for o in CATALOGUE], MONEY),
            "min_tier": pa.array([o.min_tier for o in CATALOGUE], pa.string()),
        }
    )


def decision_ids(campaigns: list[Campaign], log: DecisionLog, customer_ids: pa.Array) -> pa.Array:
    names = [c.campaign_id for c in campaigns]
    return pc.binary_join_element_wise(
        _names(names, log.campaign), customer_ids.take(pa.array(log.customer)), "-"
    )


def decisions_table(
    cal: Calendar,
    campaigns: list[Campaign],
    log: DecisionLog,
    ids: pa.Array,
    customer_ids: pa.Array,
    pop: Population,
) -> pa.Table:
    offer_ids = pa.array([o.offer_id for o in CATALOGUE], pa.string())
    table = pa.table(
        {
            "decision_id": ids,
            "customer_id": customer_ids.take(pa.array(log.customer)),
            "made_at": _times(cal, log.made),
            "policy": _names([c.policy for c in campaigns], log.campaign),
            "offer_id": pc.if_else(
                pa.array(log.offer >= 0),
                offer_ids.take(pa.array(np.maximum(log.offer, 0))),
                pa.scalar(None, pa.string()),
            ),
            "probability": pa.array(log.probability.astype(np.float64), pa.float64()),
            "channel": _names(CHANNELS, pop.pref[log.customer]),
        }
    )
    return table.sort_by([("made_at", "ascending"), ("decision_id", "ascending")])


def events_table(
    cal: Calendar,
    log: DecisionLog,
    ids: pa.Array,
    customer_ids: pa.Array,
    pop: Population,
    completed: tuple[Array, Array],
) -> pa.Table:
    stages = [
        np.flatnonzero(log.sent >= 0),
        np.flatnonzero(log.viewed >= 0),
        np.flatnonzero(log.activated >= 0),
    ]
    dec = np.concatenate([*stages, completed[0]])
    code = np.concatenate([np.full(len(s), i) for i, s in enumerate([*stages, completed[0]])])
    at = np.concatenate([log.sent[stages[0]], log.viewed[stages[1]], log.activated[stages[2]], completed[1]])
    dec_ids = ids.take(pa.array(dec))
    table = pa.table(
        {
            "event_id": pc.binary_join_element_wise(dec_ids, _names(EVENTS, code), ":"),
            "customer_id": customer_ids.take(pa.array(log.customer[dec])),
            "offer_id": _names([o.offer_id for o in CATALOGUE], log.offer[dec]),
            "event": _names(EVENTS, code),
            "occurred_at": _times(cal, at),
            "channel": _names(CHANNELS, pop.pref[log.customer[dec]]),
            "decision_id": dec_ids,
        }
    )
    return table.sort_by([("occurred_at", "ascending"), ("event_id", "ascending")])


def truth_customers_table(cal: Calendar, pop: Population, churn_at: Array, ids: pa.Array) -> pa.Table:
    never = churn_at == NEVER
    columns: dict[str, Any] = {
        "customer_id": ids,
        "churn_at": _times(cal, np.where(never, 0, churn_at), missing=never),
        "churn_hazard": pop.churn_hazard,
        "activity_rate": pop.activity_rate,
        "salary_day": pa.array(pop.salary_day.astype(np.int16), pa.int16()),
        "bill_regularity": pop.bill_regularity,
    }
    for col, k in enumerate(PURCHASE_CATEGORIES):
        columns[f"taste_{CATEGORY_NAMES[k]}"] = pop.taste[:, col]
    for i, kind in enumerate(OFFER_KINDS):
        columns[f"resp_{kind}"] = pop.resp[:, i]
    columns["multiplier_sensitivity"] = pop.multiplier_sensitivity
    columns["segment"] = _names(SEGMENTS, pop.segment)
    # Beyond the contract: the rest of the latent state, for whoever wants to check a model against it.
    columns["churn_type"] = pc.if_else(
        pa.array(never),
        pa.scalar(None, pa.string()),
        _names(("stop", "decay"), pop.churn_decay.astype(np.int64)),
    )
    columns["churn_decay"] = pop.churn_decay  # for everyone: whether a churn to come will fade first
    columns["decay_days"] = pop.decay_days
    columns["transfer_share"] = pop.transfer_share
    columns["salary_boost"] = pop.salary_boost
    columns["bill_day"] = pa.array(pop.bill_day.astype(np.int16), pa.int16())
    for b, k in enumerate(BILL_KINDS):
        columns[f"has_{CATEGORY_NAMES[k]}"] = pop.has_bill[:, b]
    columns["pays_taxes"] = pop.pays_taxes
    columns["view_probability"] = pop.view_prob
    for i, kind in enumerate(OFFER_KINDS[:3]):
        columns[f"activation_{kind}"] = pop.activation_prob[:, i]
    return pa.table({k: v if isinstance(v, pa.Array) else pa.array(v) for k, v in columns.items()})


def offer_effects_table(truth: OfferTruth, ids: pa.Array) -> pa.Table:
    n, m = truth.p_control.shape
    cost = np.array([float(o.cost) for o in CATALOGUE])
    value = np.array([float(o.value) for o in CATALOGUE])
    uplift = truth.p_treated - truth.p_control
    incremental = truth.p_meet - truth.p_control
    return pa.table(
        {
            "customer_id": ids.take(pa.array(np.repeat(np.arange(n), m))),
            "offer_id": _names([o.offer_id for o in CATALOGUE], np.tile(np.arange(m), n)),
            "p_complete_treated": truth.p_treated.ravel(),
            "p_complete_control": truth.p_control.ravel(),
            "uplift": uplift.ravel(),
            "expected_incremental_value": (uplift * value - truth.p_treated * cost).ravel(),
            # Beyond the contract: uplift in *meeting the condition* (activated or not), the part of a
            # completion the offer really caused, and the value that follows from it.
            "p_meet_treated": truth.p_meet.ravel(),
            "incremental_uplift": incremental.ravel(),
            "incremental_value": (incremental * value - truth.p_treated * cost).ravel(),
        }
    )


def truth_decisions_table(
    campaigns: list[Campaign], log: DecisionLog, ids: pa.Array, truth: OfferTruth, incremental_txn: Array
) -> pa.Table:
    treated = log.offer >= 0
    o = np.maximum(log.offer, 0)
    has_inc = incremental_txn > 0
    return pa.table(
        {
            "decision_id": ids,
            "campaign_id": _names([c.campaign_id for c in campaigns], log.campaign),
            "p_complete_treated": pa.array(truth.p_treated[log.customer, o], mask=~treated),
            "p_complete_control": pa.array(truth.p_control[log.customer, o], mask=~treated),
            "hazard_factor": log.hazard_factor.astype(np.float64),
            "incremental_transaction_id": pc.if_else(
                pa.array(has_inc), _ids("T", incremental_txn, 10), pa.scalar(None, pa.string())
            ),
        }
    ).sort_by([("decision_id", "ascending")])


# --- the run -----------------------------------------------------------------------------------------------


def is_simulator_output(out: Path) -> bool:
    try:
        meta = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("generator") == GENERATOR


def check_output(out: Path, *, force: bool) -> bool:
    """Refuse a non-empty directory of something else (unless forced) and one that cannot be written.

    Returns whether ``out`` holds an earlier simulator output (which a new run replaces). Creates ``out``.
    """
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"--out {out}: exists and is not a directory", field="out")
    previous = is_simulator_output(out)
    if out.is_dir() and not previous and not force and any(out.iterdir()):
        raise InvalidInput(
            f"--out {out}: directory is not empty and holds no earlier simulator output "
            "(pass --force to write into it anyway)",
            field="out",
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InvalidInput(f"--out {out}: cannot write there ({exc.strerror or exc})", field="out") from exc
    return previous


def _prepare_output(out: Path, *, force: bool) -> None:
    """Check ``out``; remove an earlier run's files (only those: anything else in the directory stays)."""
    if check_output(out, force=force):
        for name in (*FILES, *TRUTH_FILES, "manifest.json"):
            (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / WORK_DIR, ignore_errors=True)


def _spill(rows: Rows, cal: Calendar, work: Path, chunk: int) -> None:
    month = np.searchsorted(cal.month_start, rows.t, side="right") - 1
    packed = np.empty(len(rows), dtype=SPILL_DTYPE)
    for name in Rows.__slots__:
        packed[name] = getattr(rows, name)
    for m in np.unique(month):
        folder = work / f"m{m:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"c{chunk:06d}.npy", packed[month == m])


def _transactions_batch(cal: Calendar, rows: Array, first_id: int, customer_ids: pa.Array) -> pa.Table:
    n = len(rows)
    return pa.Table.from_arrays(
        [
            _ids("T", np.arange(first_id, first_id + n), 10),
            customer_ids.take(pa.array(rows["c"])),
            _times(cal, rows["t"].astype(np.int64)),
            _names(TXN_TYPES, rows["type"]),
            _money(rows["cents"].astype(np.int64)),
            _names(CATEGORY_NAMES, rows["cat"]),
            _names(CHANNELS, rows["ch"]),
            pa.array(["RUB"]).take(pa.array(np.zeros(n, dtype=np.int64))),
            _names([r.name for r in REGIONS], rows["reg"]),
        ],
        schema=TRANSACTIONS_SCHEMA,
    )


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
                    writer.write_table(_transactions_batch(cal, batch, written + 1 + s, customer_ids))
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
    _prepare_output(out, force=force)
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

    customer_ids = _ids("C", np.arange(1, config.customers + 1), 7)
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
        "customers.parquet": _write(customers_table(cal, pop, customer_ids), out / "customers.parquet"),
        "offers.parquet": _write(offers_table(), out / "offers.parquet"),
        "decisions.parquet": _write(
            decisions_table(cal, campaigns, log, ids, customer_ids, pop), out / "decisions.parquet"
        ),
        "offer_events.parquet": _write(
            events_table(cal, log, ids, customer_ids, pop, completed), out / "offer_events.parquet"
        ),
        "transactions.parquet": n_txns,
        "truth/customers.parquet": _write(
            truth_customers_table(cal, pop, churn_at, customer_ids), out / "truth" / "customers.parquet"
        ),
        "truth/offer_effects.parquet": _write(
            offer_effects_table(truth, customer_ids), out / "truth" / "offer_effects.parquet"
        ),
        "truth/decisions.parquet": _write(
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


def output_root(path: Path) -> Path:
    """The simulator output that a ``--truth`` path names: the output itself or its ``truth/``."""
    for candidate in (path, *([path.parent] if path.name == "truth" else [])):
        if is_simulator_output(candidate):
            return candidate
    raise InvalidInput(f"--truth {path}: not a simulator output (no manifest.json there)", field="truth")


def truth_file(path: Path, name: str) -> Path:
    """The truth file ``name`` of a simulator output named by ``path`` (the output, or its truth/ itself)."""
    for candidate in (path / name, path / "truth" / name):
        if candidate.is_file():
            return candidate
    raise InvalidInput(f"--truth {path}: no {name} there or under truth/", field="truth")


def _seconds(at: pd.Series, start: dt.datetime) -> Array:
    """Seconds from the start of the history; -1 where there is no time."""
    stamps = pd.to_datetime(at, utc=True)
    seconds = (stamps - pd.Timestamp(start)).dt.total_seconds()
    return np.asarray(np.where(stamps.isna(), -1, np.floor(seconds.fillna(-1))), dtype=np.int64)


def _factor_in_force(
    root: Path, meta: dict[str, Any], start: dt.datetime, as_of: dt.datetime, customers: pd.Series
) -> tuple[Array, Array, Array]:
    """(hazard factor, from, until: seconds) per customer: what the campaign in force at ``as_of`` does to
    their churn hazard (``run_campaigns``: from the view, or the activation that lowered it, to the next
    campaign's start); factor 1 without a decision before ``as_of``."""
    n = len(customers)
    factor, since, until = np.ones(n), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    decisions = pd.read_parquet(root / "decisions.parquet", columns=["decision_id", "customer_id", "made_at"])
    made = pd.to_datetime(decisions["made_at"], utc=True)
    decisions = decisions[(made < pd.Timestamp(as_of)).to_numpy()]
    if decisions.empty:
        return factor, since, until
    latest = decisions.sort_values("made_at", kind="stable").groupby("customer_id").tail(1)
    effects = pd.read_parquet(
        root / "truth" / "decisions.parquet", columns=["decision_id", "campaign_id", "hazard_factor"]
    )
    latest = latest.merge(effects, on="decision_id", how="inner")
    latest = latest[(latest["hazard_factor"] != 1.0).to_numpy()]
    events = pd.read_parquet(root / "offer_events.parquet", columns=["decision_id", "event", "occurred_at"])
    events = events[events["decision_id"].isin(latest["decision_id"]).to_numpy()]
    kind = events["event"].astype("str").to_numpy()

    def first(event: str) -> Array:
        mine = events[kind == event].groupby("decision_id")["occurred_at"].min()
        return _seconds(latest["decision_id"].map(mine), start)

    viewed, activated = first("viewed"), first("activated")
    # A sleeping dog's hazard rises from the view; a responder's falls from the activation (the view for an
    # informational offer, which nothing activates).
    respond = np.where((latest["hazard_factor"].to_numpy() > 1) | (activated < 0), viewed, activated)
    campaign_starts = [_seconds(pd.Series([c["start"]]), start)[0] for c in meta["campaigns"]]
    order = {c["id"]: i for i, c in enumerate(meta["campaigns"])}
    ends = [*campaign_starts[1:], int(meta["days"]) * DAY]
    pos = pd.Index(customers).get_indexer(pd.Index(latest["customer_id"]))
    ok = (pos >= 0) & (respond >= 0)
    factor[pos[ok]] = latest["hazard_factor"].to_numpy()[ok]
    since[pos[ok]] = respond[ok]
    until[pos[ok]] = np.array([ends[order[c]] for c in latest["campaign_id"]], dtype=np.int64)[ok]
    return factor, since, until


def churn_truth(path: Path, as_of: dt.datetime, horizon_days: int) -> pd.DataFrame:
    """``customer_id, p_churn``: every customer's true probability of the churn label as of ``as_of`` (a
    midnight UTC), no purchase or bill payment in ``[as_of, as_of + horizon_days)``, given their latent
    state then (``sim_model.churn_label_probability``, where its approximations are listed)."""
    root = output_root(path)
    meta = json.loads((root / "manifest.json").read_text())
    start = dt.datetime.fromisoformat(meta["start"])
    offset = as_of - start
    if offset % dt.timedelta(days=1):
        raise InvalidInput(f"the churn truth is per whole day: {as_of.isoformat()} is not a midnight UTC")
    config = SimConfig(customers=int(meta["customers"]), days=int(meta["days"]), seed=0, start=start.date())
    truth = pd.read_parquet(root / "truth" / "customers.parquet")
    if "churn_decay" not in truth.columns:
        raise InvalidInput(
            f"--truth {path}: written by an older simulator (no churn_decay); run `loyalty simulate` again",
            field="truth",
        )
    churn_at = _seconds(truth["churn_at"], start)
    traits = ChurnTraits(
        activity_rate=truth["activity_rate"].to_numpy(np.float64),
        transfer_share=truth["transfer_share"].to_numpy(np.float64),
        salary_day=truth["salary_day"].to_numpy(np.int64),
        salary_boost=truth["salary_boost"].to_numpy(np.float64),
        bill_day=truth["bill_day"].to_numpy(np.int64),
        bill_regularity=truth["bill_regularity"].to_numpy(np.float64),
        has_bill=np.stack([truth[f"has_{CATEGORY_NAMES[k]}"].to_numpy(bool) for k in BILL_KINDS], axis=1),
        pays_taxes=truth["pays_taxes"].to_numpy(bool),
        churn_hazard=truth["churn_hazard"].to_numpy(np.float64),
        churn_decay=truth["churn_decay"].to_numpy(bool),
        decay_days=truth["decay_days"].to_numpy(np.float64),
        churn_at=np.where(churn_at < 0, NEVER, churn_at),
    )
    customers = truth["customer_id"].astype("str")
    factor, since, until = _factor_in_force(root, meta, start, as_of, customers)
    p = churn_label_probability(
        make_calendar(config),
        traits,
        offset.days,
        horizon_days,
        hazard_factor=factor,
        factor_from=since,
        factor_until=until,
    )
    return pd.DataFrame({"customer_id": customers.to_numpy(), "p_churn": p})


__all__ = [
    "CATALOGUE",
    "DEFAULT_START",
    "GENERATOR",
    "SimConfig",
    "SimSummary",
    "check_config",
    "check_output",
    "churn_truth",
    "is_simulator_output",
    "output_root",
    "simulate",
    "today_utc",
    "truth_file",
]
