"""The pandas feature engine next to a hand-written DuckDB query of the same aggregates, in one run.

    python benchmarks/features.py                      # 10 M transactions over 200k customers
    python benchmarks/features.py --rows 1000000 --customers 20000   # a quick look

Both start from the same Parquet files (transactions and customers, written once by this script with
dictionary-encoded strings, as a bank export or ``loyalty simulate`` would) and end with a pandas frame of
per-customer features as of the same cutoff. Each runs in its own fresh process, so its peak memory
(``VmHWM``, which includes what DuckDB and Arrow allocate outside Python) is its own; the figure reported
is the peak above the process's footprint after imports, next to the size of the raw data in memory.
The DuckDB query computes every feature the pandas engine derives from transactions and customers (the
other sources are empty here, their features are constants); the script checks the two frames agree.

Targets (issue 4): pandas time <= 1.5x DuckDB's, pandas peak memory <= 3x the raw data. The run ends by
writing the pandas engine's frame to an online table (SQLite) and timing ``OnlineFeatures.get``.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

AS_OF = "2026-01-01"
DAYS = 730
TYPES = ("purchase", "bill_payment", "transfer")
BY_TYPE = {
    "purchase": (
        "groceries",
        "fuel",
        "travel",
        "restaurants",
        "online",
        "electronics",
        "pharmacy",
        "clothing",
    ),
    "bill_payment": ("utilities", "mobile", "internet", "taxes"),
    "transfer": ("p2p",),
}
CHANNELS = ("app", "web", "branch", "pos")


def _memory(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def generate(rows: int, customers: int, out: Path, seed: int = 7) -> dict[str, Any]:
    """Write transactions.parquet and customers.parquet; returns their sizes."""
    rng = np.random.default_rng(seed)
    start = np.datetime64(AS_OF, "us") - np.timedelta64(DAYS, "D")
    activity = rng.gamma(1.2, 1.0, customers)
    who = rng.choice(customers, rows, p=activity / activity.sum()).astype(np.int32)
    offset = np.sort(rng.integers(0, DAYS * 86_400_000_000, rows, dtype=np.int64))
    kind = rng.choice(3, rows, p=[0.7, 0.2, 0.1]).astype(np.int8)
    cats = [c for t in TYPES for c in BY_TYPE[t]]
    first = {t: cats.index(BY_TYPE[t][0]) for t in TYPES}
    width = np.array([len(BY_TYPE[t]) for t in TYPES])
    base = np.array([first[t] for t in TYPES])
    category = (base[kind] + (rng.random(rows) * width[kind]).astype(np.int64)).astype(np.int8)
    amount = np.round(np.exp(rng.normal(7.0, 1.1, rows)), 2)
    points = np.where(kind == 2, 5, np.floor(amount / 100) * np.where(kind == 1, 2, 1)).astype(np.int64)
    ids = np.array([f"C{i:07d}" for i in range(customers)], dtype=object)

    def dictionary(codes: np.ndarray, values: list[str] | tuple[str, ...] | np.ndarray) -> pa.Array:
        return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(list(values)))

    txns = pa.table(
        {
            "id": pa.array(np.arange(rows, dtype=np.int64)),
            "customer_id": dictionary(who, ids),
            "occurred_at": pa.array(start + offset.astype("timedelta64[us]"), pa.timestamp("us", tz="UTC")),
            "type": dictionary(kind, TYPES),
            "amount": pa.array(amount),
            "category": dictionary(category, cats),
            "channel": dictionary(rng.integers(0, 4, rows), CHANNELS),
            "points": pa.array(points),
        }
    )
    joined = np.datetime64(AS_OF, "D") - rng.integers(30, 3000, customers).astype("timedelta64[D]")
    people = pa.table(
        {
            "customer_id": pa.array(ids),
            "joined_on": pa.array(joined.astype("datetime64[us]"), pa.timestamp("us", tz="UTC")),
            "birth_year": pa.array(rng.integers(1950, 2005, customers).astype(np.float64)),
            "gender": dictionary(rng.integers(0, 2, customers), ("F", "M")),
            "region": dictionary(rng.integers(0, 3, customers), ("Moscow", "Kazan", "Omsk")),
            "income": pa.array(rng.integers(20_000, 400_000, customers).astype(np.float64)),
            "income_band": dictionary(
                rng.integers(0, 4, customers), ("low", "middle", "upper_middle", "high")
            ),
            "channel": dictionary(rng.integers(0, 4, customers), CHANNELS),
        }
    )
    pq.write_table(txns, out / "transactions.parquet", row_group_size=1_000_000)
    pq.write_table(people, out / "customers.parquet")
    return {
        "arrow_bytes": txns.nbytes + people.nbytes,
        "parquet_bytes": (out / "transactions.parquet").stat().st_size
        + (out / "customers.parquet").stat().st_size,
    }


def _release() -> None:
    """Hand freed memory back to the system (Arrow's pool and glibc keep it otherwise)."""
    import ctypes

    pa.default_memory_pool().release_unused()
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as fh:  # "5" resets VmHWM to the current RSS
        fh.write("5")


def run_pandas(data: str) -> dict[str, Any]:
    from pipelines import LedgerFrames, pandas_features

    baseline = _memory("VmRSS")
    t0 = time.perf_counter()
    # self_destruct: each column's Arrow buffers are freed as soon as pandas has it.
    txns = pq.read_table(Path(data) / "transactions.parquet").to_pandas(self_destruct=True, split_blocks=True)
    people = pq.read_table(Path(data) / "customers.parquet").to_pandas()
    frames = LedgerFrames.from_frames(transactions=txns, customers=people)
    del txns, people
    t1 = time.perf_counter()
    read_peak = _memory("VmHWM") - baseline
    _release()
    _reset_peak()
    out = pandas_features(frames, AS_OF)
    t2 = time.perf_counter()
    raw = sum(int(f.memory_usage(deep=True).sum()) for _, f in frames.items())
    out.to_parquet(Path(data) / "pandas.parquet")
    return {
        "seconds": t2 - t0,
        "read_seconds": t1 - t0,
        "compute_seconds": t2 - t1,
        "read_peak_bytes": read_peak,
        "peak_bytes": _memory("VmHWM") - baseline,
        "input_bytes": raw,
        "rows": len(out),
    }


def duckdb_sql(data: str, style: str = "filter") -> str:
    """Every transaction and customer feature of the catalogue, as one aggregate query over the Parquet.

    Written as one would for DuckDB: timestamps turned to plain UTC ``TIMESTAMP`` once (calendar functions
    on ``TIMESTAMPTZ`` go through ICU and are several times slower), conditional sums as ``FILTER``
    aggregates, and the distinct-day and distinct-period counts from a per-day rollup instead of
    ``count(DISTINCT ...)`` over every transaction.
    """
    from pipelines import CATEGORIES, CHANNELS, GENDERS, INCOME_BANDS, REGIONS

    day = 86_400_000_000
    cut = f"TIMESTAMP '{AS_OF} 00:00:00'"

    def within(days: int) -> str:
        return f"age <= {days * day}"

    def total(expr: str, cond: str) -> str:
        return (
            f"sum({expr}) FILTER ({cond})" if style == "filter" else f"sum(CASE WHEN {cond} THEN {expr} END)"
        )

    def count(cond: str) -> str:
        return f"count(*) FILTER ({cond})" if style == "filter" else f"count(CASE WHEN {cond} THEN 1 END)"

    zero: list[tuple[str, str]] = []  # aggregates that are 0 for a customer without transactions
    null: list[tuple[str, str]] = []  # aggregates that are NULL (NaN) then
    for w in (7, 30, 90, 365):
        zero += [(f"txn_count_{w}d", count(within(w))), (f"txn_amount_{w}d", total("amount", within(w)))]
    zero += [
        ("a120", total("amount", within(120))),
        ("a180", total("amount", within(180))),
        ("c120", count(within(120))),
        ("txn_points_365d", total("points", within(365))),
        ("weekend_365", count(f"{within(365)} AND isodow(ts) >= 6")),
        ("tier_spend_12m", total("amount", "type IN ('purchase', 'bill_payment') AND ts >= tier_start")),
    ]
    null += [
        ("txn_amount_mean_30d", f"avg(amount) FILTER ({within(30)})"),
        ("txn_amount_mean_365d", f"avg(amount) FILTER ({within(365)})"),
        ("txn_amount_max_365d", f"max(amount) FILTER ({within(365)})"),
        ("txn_amount_std_365d", f"stddev_pop(amount) FILTER ({within(365)})"),
        ("days_since_last_txn", f"min(age) / {day}.0"),
        ("days_since_first_txn", f"max(age) / {day}.0"),
        ("span_365", f"(max(age) FILTER ({within(365)}) - min(age) FILTER ({within(365)})) / {day}.0"),
    ]
    for t in TYPES:
        zero += [
            (f"{t}_count_90d", count(f"{within(90)} AND type = '{t}'")),
            (f"{t}_amount_90d", total("amount", f"{within(90)} AND type = '{t}'")),
            (f"{t}_365", count(f"{within(365)} AND type = '{t}'")),
        ]
    listed = ", ".join(f"'{c}'" for c in CATEGORIES[:-1])
    for c in CATEGORIES:
        test = f"category = '{c}'" if c != "other" else f"(category IS NULL OR category NOT IN ({listed}))"
        zero.append((f"cat_{c}", total("amount", f"{within(365)} AND {test}")))
    listed = ", ".join(f"'{c}'" for c in CHANNELS[:-1])
    for c in CHANNELS:
        test = f"channel = '{c}'" if c != "other" else f"(channel IS NULL OR channel NOT IN ({listed}))"
        zero.append((f"ch_{c}", count(f"{within(365)} AND {test}")))
    angle = "2 * pi() * (day(ts) - 1) / day(last_day(ts))"
    buy = f"{within(365)} AND type = 'purchase'"
    bill = f"{within(365)} AND type = 'bill_payment'"
    null += [
        ("sc", total(f"amount * cos({angle})", buy)),
        ("ss", total(f"amount * sin({angle})", buy)),
        ("sw", total("amount", buy)),
        ("bc", total(f"cos({angle})", bill)),
        ("bs", total(f"sin({angle})", bill)),
    ]
    zero.append(("bn", count(bill)))
    rolled = [
        ("active_days_30d", "d"),
        ("active_days_90d", "d"),
        ("active_months_12m", "m"),
        ("bill_months_12m", "m"),
    ]
    aggregates = ",\n    ".join(f"{expr} AS {name}" for name, expr in zero + null)
    joined = ",\n    ".join(
        [f"coalesce(a.{name}, 0) AS {name}" for name, _ in zero]
        + [f"coalesce({src}.{name}, 0) AS {name}" for name, src in rolled]
        + [f"a.{name}" for name, _ in null]
    )
    entropy = " + ".join(
        f"CASE WHEN cat_{c} > 0 THEN -(cat_{c} / cat_total) * ln(cat_{c} / cat_total) ELSE 0 END"
        for c in CATEGORIES
    )
    gap = "span_365 / nullif(txn_count_365d - 1, 0)"

    def code(col: str, vocabulary: tuple[str, ...]) -> str:
        other = len(vocabulary) - 1 if vocabulary[-1] == "other" else -1
        whens = " ".join(f"WHEN '{v}' THEN {i}" for i, v in enumerate(vocabulary) if v != "other")
        return f"CASE WHEN {col} IS NULL THEN -1 ELSE (CASE {col} {whens} ELSE {other} END) END"

    derived = [
        "ln(1 + txn_amount_30d) - ln(1 + (a120 - txn_amount_30d) / 3) AS spend_trend_30d",
        "ln(1 + txn_amount_90d) - ln(1 + (a180 - txn_amount_90d)) AS spend_trend_90d",
        "ln(1 + txn_count_30d) - ln(1 + (c120 - txn_count_30d) / 3) AS txn_trend_30d",
        f"{gap} AS mean_gap_days_365d",
        f"days_since_last_txn / nullif({gap}, 0) AS recency_gap_ratio",
        "weekend_365 / nullif(txn_count_365d, 0) AS weekend_share_365d",
        *[f"{t}_365 / nullif(txn_count_365d, 0) AS {t}_share_365d" for t in TYPES],
        *[f"cat_{c} / nullif(cat_total, 0) AS category_{c}_share_365d" for c in CATEGORIES],
        " + ".join(f"(cat_{c} > 0)::INT" for c in CATEGORIES) + " AS categories_365d",
        f"CASE WHEN cat_total > 0 THEN {entropy} END AS category_entropy_365d",
        *[f"ch_{c} / nullif(txn_count_365d, 0) AS channel_{c}_share_365d" for c in CHANNELS],
        "sqrt(sc * sc + ss * ss) / nullif(sw, 0) AS salary_day_strength_365d",
        f"1 + ((atan2(ss, sc) + 2 * pi()) % (2 * pi())) / (2 * pi()) * {365.2425 / 12} AS salary_day_365d",
        "sqrt(bc * bc + bs * bs) / nullif(bn, 0) AS bill_day_regularity_365d",
        f"coalesce(CASE WHEN joined_on < {cut} THEN (epoch_us({cut}) - epoch_us(joined_on)) / {day}.0 END,"
        " days_since_first_txn) AS tenure_days",
        f"{AS_OF[:4]} - birth_year AS age_years",
        "income",
        f"{code('gender', GENDERS)} AS gender",
        f"{code('region', REGIONS)} AS region",
        f"{code('income_band', INCOME_BANDS)} AS income_band",
        f"{code('preferred', CHANNELS)} AS preferred_channel",
    ]
    derived_sql = ",\n    ".join(derived)
    names = ", ".join([name for name, _ in zero] + [name for name, _ in rolled] + [name for name, _ in null])
    return f"""
WITH t AS (
    SELECT customer_id, ts, type, amount, category, channel, points,
           epoch_us({cut}) - epoch_us(ts) AS age,
           date_trunc('month', {cut}) - INTERVAL 11 MONTH AS tier_start
    FROM (SELECT *, occurred_at::TIMESTAMP AS ts FROM read_parquet('{data}/transactions.parquet'))
    WHERE ts < {cut}
), a AS (
    SELECT customer_id,
    {aggregates}
    FROM t GROUP BY customer_id
), days AS (  -- one row per customer and UTC day: distinct days and 30-day periods from these
    SELECT customer_id, min(age) AS age, bool_or(type = 'bill_payment') AS bill
    FROM t GROUP BY customer_id, ts::DATE
), d AS (
    SELECT customer_id, count(*) FILTER ({within(30)}) AS active_days_30d,
           count(*) FILTER ({within(90)}) AS active_days_90d
    FROM days WHERE {within(90)} GROUP BY customer_id
), periods AS (  -- the cutoff is a midnight, so a UTC day lies in one 30-day period
    SELECT customer_id, bool_or(bill) AS bill FROM days WHERE {within(360)}
    GROUP BY customer_id, ceil(age / {30 * day}.0)
), m AS (
    SELECT customer_id, count(*) AS active_months_12m, count(*) FILTER (bill) AS bill_months_12m
    FROM periods GROUP BY customer_id
), b AS (
    SELECT coalesce(a.customer_id, c.customer_id) AS customer_id,
    c.joined_on::TIMESTAMP AS joined_on, c.birth_year, c.gender, c.region, c.income, c.income_band,
    c.channel AS preferred,
    {joined}
    FROM a FULL OUTER JOIN read_parquet('{data}/customers.parquet') c ON a.customer_id = c.customer_id
    LEFT JOIN d ON d.customer_id = coalesce(a.customer_id, c.customer_id)
    LEFT JOIN m ON m.customer_id = coalesce(a.customer_id, c.customer_id)
    WHERE a.customer_id IS NOT NULL OR c.joined_on::TIMESTAMP < {cut}
), e AS (
    SELECT *, {" + ".join(f"cat_{c}" for c in CATEGORIES)} AS cat_total FROM b
)
SELECT customer_id, {names},
    {derived_sql}
FROM e
ORDER BY customer_id
"""  # noqa: S608 -- every interpolated value is ours (vocabularies, numbers, the temporary folder)


def run_duckdb(data: str) -> dict[str, Any]:
    import duckdb

    baseline = _memory("VmRSS")
    t0 = time.perf_counter()
    con = duckdb.connect()  # threads default to the machine's cores
    con.execute("SET TimeZone = 'UTC'")
    out = con.execute(duckdb_sql(data)).df()
    t1 = time.perf_counter()
    out.to_parquet(Path(data) / "duckdb.parquet")
    return {"seconds": t1 - t0, "peak_bytes": _memory("VmHWM") - baseline, "rows": len(out)}


def compare(data: Path) -> tuple[int, float]:
    """(columns compared, largest relative difference) between the two engines' frames."""
    import pandas as pd

    ours = pd.read_parquet(data / "pandas.parquet").set_index("customer_id")
    theirs = pd.read_parquet(data / "duckdb.parquet").set_index("customer_id")
    if list(ours.index) != list(theirs.index):
        raise SystemExit("the engines disagree on the population")
    worst = 0.0
    shared = [c for c in ours.columns if c in theirs.columns]
    for col in shared:
        a = ours[col].to_numpy(dtype=np.float64)
        b = theirs[col].to_numpy(dtype=np.float64)
        if not np.array_equal(np.isnan(a), np.isnan(b)):
            raise SystemExit(f"{col}: NaN on one side only")
        ok = ~np.isnan(a)
        if ok.any():
            worst = max(worst, float((np.abs(a[ok] - b[ok]) / np.maximum(np.abs(a[ok]), 1.0)).max()))
    return len(shared), worst


def online_lookup(data: Path, lookups: int = 1_000_000) -> dict[str, float]:
    """Load the pandas engine's frame into an online table (SQLite) and time ``OnlineFeatures.get``."""
    import pandas as pd

    from loyalty_core import make_engine, migrate
    from pipelines import OnlineFeatures, refresh_online

    features = pd.read_parquet(data / "pandas.parquet")
    engine = make_engine(f"sqlite:///{data / 'online.db'}")
    migrate(engine)
    t0 = time.perf_counter()
    refresh_online(engine, features)
    t1 = time.perf_counter()
    online = OnlineFeatures(engine).load()
    t2 = time.perf_counter()
    rng = np.random.default_rng(0)
    ids = features["customer_id"].to_numpy(dtype=object)[rng.integers(0, len(features), lookups)].tolist()
    get = online.get
    t3 = time.perf_counter()
    for cid in ids:
        get(cid)
    t4 = time.perf_counter()
    stale = online.refresh()
    t5 = time.perf_counter()
    engine.dispose()
    return {
        "customers": len(online),
        "write_seconds": t1 - t0,
        "load_seconds": t2 - t1,
        "lookup_us": (t4 - t3) / lookups * 1e6,
        "refresh_check_ms": (t5 - t4) * 1e3,
        "reloaded": float(stale),
    }


def _child(target: Any, data: str, queue: Any) -> None:
    queue.put(target(data))


def measure(target: Any, data: Path) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(target, str(data), queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each engine; the best time is kept")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="features-bench-") as tmp:
        data = Path(tmp)
        t = time.perf_counter()
        sizes = generate(args.rows, args.customers, data)
        took = time.perf_counter() - t
        print(f"data: {args.rows:,} transactions, {args.customers:,} customers, written in {took:.1f} s")
        parquet, arrow = sizes["parquet_bytes"] / 1e6, sizes["arrow_bytes"] / 1e6
        print(f"      Parquet {parquet:,.0f} MB, Arrow {arrow:,.0f} MB")
        runs: dict[str, list[dict[str, Any]]] = {"pandas": [], "duckdb": []}
        for _ in range(args.repeat):
            runs["pandas"].append(measure(run_pandas, data))
            runs["duckdb"].append(measure(run_duckdb, data))
        best = {k: min(v, key=lambda r: r["seconds"]) for k, v in runs.items()}
        pd_run, duck = best["pandas"], best["duckdb"]
        columns, worst = compare(data)
        raw = pd_run["input_bytes"]
        mb = 1e6
        print(f"raw data in memory (the engine's input frames): {raw / mb:,.0f} MB")
        print()
        print(f"{'engine':<8} {'time s':>8} {'peak MB':>9} {'peak / raw':>11}")
        print(
            f"{'pandas':<8} {pd_run['seconds']:>8.2f} {pd_run['peak_bytes'] / mb:>9,.0f} "
            f"{pd_run['peak_bytes'] / raw:>11.2f}   read {pd_run['read_seconds']:.2f} s (peak "
            f"{pd_run['read_peak_bytes'] / mb:,.0f} MB) + features {pd_run['compute_seconds']:.2f} s"
        )
        duck_peak = duck["peak_bytes"]
        print(f"{'duckdb':<8} {duck['seconds']:>8.2f} {duck_peak / mb:>9,.0f} {duck_peak / raw:>11.2f}")
        print()
        print(f"customers: {pd_run['rows']:,} (pandas), {duck['rows']:,} (duckdb)")
        print(f"time pandas / duckdb: {pd_run['seconds'] / duck['seconds']:.2f} (target <= 1.5)")
        print(f"peak pandas / raw:    {pd_run['peak_bytes'] / raw:.2f} while computing (target <= 3), ")
        print(f"                      {pd_run['read_peak_bytes'] / raw:.2f} while reading the Parquet")
        print(f"agreement: {columns} shared columns, largest relative difference {worst:.2e}")
        online = online_lookup(data)
        print(
            f"online table: {online['customers']:,.0f} customers written in {online['write_seconds']:.1f} s "
            f"(SQLite), loaded in {online['load_seconds']:.2f} s;"
        )
        print(
            f"              get() {online['lookup_us']:.2f} µs per lookup, "
            f"refresh() check {online['refresh_check_ms']:.2f} ms"
        )
        if not math.isfinite(worst) or worst > 1e-6:
            raise SystemExit("the engines disagree")


if __name__ == "__main__":
    main()
