"""Ledger throughput: postings per second in-process and over HTTP, and bulk ingest rows per second.

    python benchmarks/ledger.py [--seconds 10] [--skip-http] [--pg-url postgresql://postgres@127.0.0.1/postgres]

For SQLite (a temporary file) and PostgreSQL (a database ``loyalty_bench`` created on the server of
``--pg-url`` and dropped at the end) it measures

- in-process: ``post_transactions`` with a batch of one per transaction (one ``in_transaction`` each), from 1
  and from 8 threads, for ``--seconds`` each;
- over HTTP: ``loyalty serve --workers 2`` on 127.0.0.1 driven by ``wrk`` (``apt-get install wrk``) with a Lua
  script that gives every request a unique transaction id, 1 and 8 connections (wrk needs at least one
  connection per thread, so the 1-connection run uses ``-t1``), with the CPU each posting cost the
  service's processes and PostgreSQL's (from /proc) and how busy all cores were: the budget a throughput
  target has to fit (C cores at N postings/s leave C / N seconds of CPU per posting, load generator included);
  and once, for reference, the same server and load with the ledger call replaced by a fixed answer
  (``ROUTE_ONLY_APP``): what the route itself costs, whatever the ledger does;
- bulk ingest: a generated 200,000-row CSV read by ``pipelines.sources.ingest.read_transactions`` and
  posted by ``ingest_frame`` (chunks of 5,000 in one transaction each); on PostgreSQL a second file (new
  transaction ids, the same customers) again with customers split over one process per core (``workers``).

Each database starts as a bank's ledger would (``fresh_engine``, ``warm_up``): its customers enrolled, 2,000
postings in, planner statistics gathered; from an empty database PostgreSQL would plan for empty tables and
keep those plans in every pooled connection. It prints a markdown table. Every external process is bounded in
time and stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from procfs import cpu_seconds, descendants, machine_busy, processes_named
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from loyalty_core import (
    DEFAULT_RULES,
    Rules,
    TransactionIn,
    in_transaction,
    make_engine,
    migrate,
    normalize_url,
    parse_rules,
    post_transactions,
)
from pipelines import ingest_frame, read_transactions

BENCH_DB = "loyalty_bench"
CORE_KEY = "dev-core-key"
API_KEYS = f"core:{CORE_KEY},marketing:dev-marketing-key,admin:dev-admin-key"
CUSTOMERS = 20_000

WRK_SCRIPT = """
-- Every request a new transaction id: <run>-<wrk thread>-<counter>; customers cycle over a large pool.
local run = "r"
local counter = 0
thread_no = 0  -- a global: setup() sets it in each thread's own Lua state
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_no", threads)
end

function init(args)
  run = args[1] or run
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-API-Key"] = "%(key)s"
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"transaction_id":"%%s-%%d-%%d","customer_id":"http-%%d","type":"purchase",' ..
    '"amount":"%%d.%%02d","occurred_at":"%(occurred)s"}',
    run, thread_no, counter, (thread_no * 7919 + counter) %% %(customers)d,
    100 + (counter * 37) %% 19000, counter %% 100)
  return wrk.format(nil, "/v1/transactions", nil, body)
end
"""


@dataclass(slots=True)
class Row:
    backend: str
    measure: str
    value: float
    unit: str
    note: str = ""


def bench_rules() -> Rules:
    """The shipped rules with fraud limits out of the way (a benchmark posts far faster than any customer)."""
    with DEFAULT_RULES.open("rb") as fh:
        doc = tomllib.load(fh)
    doc["fraud"] = {"velocity_max": 10**9, "unusual_amount_factor": "1000000"}
    return parse_rules(doc)


# --- databases -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def sqlite_database(workdir: Path) -> Iterator[str]:
    path = workdir / "bench.db"
    yield f"sqlite:///{path}"


@contextlib.contextmanager
def pg_database(admin_url: str) -> Iterator[str]:
    import psycopg

    admin = make_url(normalize_url(admin_url))
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    try:
        yield admin.set(database=BENCH_DB).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')


def fresh_engine(url: str) -> Engine:
    """A migrated ledger whose customers are already enrolled, with fresh planner statistics.

    The core system posts for a bank's existing customers, so the members are there before the first
    posting (as after ``loyalty ingest``); statistics are gathered as autovacuum would on a live database.
    Without them PostgreSQL plans the first statements for empty tables (sequential scans) and keeps those
    plans in each connection's cache, which measures an artefact of the empty database, not the ledger.
    """
    engine = make_engine(url)
    migrate(engine)
    rows = [{"id": f"{prefix}-{i}"} for prefix in ("inproc", "http") for i in range(CUSTOMERS)]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO members (id, created_at, balance, debt, txn_count, amount_sum, spend, recent) "
                "VALUES (:id, CURRENT_TIMESTAMP, 0, 0, 0, 0, '{}', '[]')"
            ),
            rows,
        )
        conn.execute(text("ANALYZE"))
    return engine


def warm_up(engine: Engine, rules: Rules, run: str, n: int = 2000) -> None:
    """Some postings first (not measured), then statistics: the journal is never empty in service."""
    occurred = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    txns = [
        TransactionIn(f"{run}-warm-{i}", f"inproc-{i % CUSTOMERS}", "purchase", Decimal(250), occurred)
        for i in range(n)
    ]
    for part in range(0, n, 200):
        chunk = txns[part : part + 200]
        in_transaction(engine, lambda s, c=chunk: post_transactions(s, c, rules=rules, actor="bench"))
    analyze(engine)


def analyze(engine: Engine) -> None:
    """Statistics after the first postings, so entries and lines are no longer planned as empty tables."""
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))


# --- in-process --------------------------------------------------------------------------------------------


def bench_in_process(
    engine: Engine, rules: Rules, threads: int, seconds: float, run: str
) -> tuple[float, int]:
    """Postings/s with ``threads`` writers, one transaction per posting; returns (rate, errors)."""
    occurred = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    counts = [0] * threads
    errors = [0] * threads
    start = threading.Barrier(threads + 1)
    stop = threading.Event()

    def writer(k: int) -> None:
        start.wait()
        n = 0
        while not stop.is_set():
            n += 1
            txn = TransactionIn(
                f"{run}-{k}-{n}",
                f"inproc-{(k * 7919 + n) % CUSTOMERS}",
                "purchase",
                Decimal(100 + (n * 37) % 19000),
                occurred,
            )
            try:
                in_transaction(engine, lambda s, t=txn: post_transactions(s, [t], rules=rules, actor="bench"))
                counts[k] += 1
            except Exception:
                errors[k] += 1

    pool = [threading.Thread(target=writer, args=(k,), daemon=True) for k in range(threads)]
    for t in pool:
        t.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in pool:
        t.join(timeout=60)
    elapsed = time.perf_counter() - began
    return sum(counts) / elapsed, sum(errors)


# --- HTTP --------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The service with the posting route's ledger call replaced by a fixed answer: a reference run, like a bare
# endpoint, that shows what the route itself (API key, validation, response model, metrics) costs per request.
ROUTE_ONLY_APP = """
from loyalty_core import PostingResult
from serving import PostingBatcher, create_app


async def _fixed_answer(self, txn, *, actor):
    response = {
        "transaction_id": txn.transaction_id, "customer_id": txn.customer_id, "points": 1, "multiplier": 1.0,
        "balance": 1, "status": "posted", "tier": "base", "reason": None,
    }
    return PostingResult(txn.transaction_id, response, False)


PostingBatcher.submit = _fixed_answer
"""


@contextlib.contextmanager
def server(url: str, log_path: Path, *, route_only: bool = False) -> Iterator[tuple[str, int]]:
    """``loyalty serve --workers 2`` on ``url``; ``route_only``: the same app, uvicorn and worker count, but
    with ``ROUTE_ONLY_APP``'s fixed answer instead of the ledger."""
    port = free_port()
    exe = Path(sys.executable).with_name("loyalty")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "serving.cli"]
    cmd += ["serve", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)]
    env = dict(os.environ, LOYALTY_DATABASE_URL=url, LOYALTY_API_KEYS=API_KEYS)
    env.pop("LOYALTY_RULES", None)
    metrics_dir = None
    if route_only:
        (log_path.parent / "route_only_app.py").write_text(ROUTE_ONLY_APP, encoding="utf-8")
        metrics_dir = Path(tempfile.mkdtemp(prefix="loyalty-metrics-"))  # as `loyalty serve` sets it up
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        cmd = [sys.executable, "-m", "uvicorn", "route_only_app:create_app", "--factory"]
        cmd += ["--app-dir", str(log_path.parent), "--workers", "2", "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--no-access-log", "--log-level", "warning"]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 (our own command line)
            cmd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited with {proc.returncode}; see {log_path}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server not healthy within 30 s; see {log_path}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                time.sleep(0.1)
            yield base, proc.pid
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)  # graceful: the batcher answers what it holds
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            if metrics_dir is not None:
                shutil.rmtree(metrics_dir, ignore_errors=True)


def run_wrk(base: str, script: Path, threads: int, conns: int, seconds: float, run: str) -> tuple[float, str]:
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{conns}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"{base}/v1/transactions",
        "--",
        run,
    ]
    out = subprocess.run(  # noqa: S603 (our own command line)
        cmd, capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rate is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    notes = []
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        notes.append(f"{m.group(1)} non-2xx")
    if m := re.search(r"Socket errors:.*", out):
        notes.append(m.group(0))
    if m := re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", out):
        notes.append(f"latency avg {m.group(1)}, max {m.group(3)}")
    return float(rate.group(1)), "; ".join(notes)


# --- where the CPU goes -----------------------------------------------------------------------------------


@dataclass(slots=True)
class CpuSplit:
    """CPU per posting of the service's processes and of PostgreSQL during one load run, and how busy the
    machine was: the budget that a target of N postings/s on C cores must fit (C / N seconds per posting)."""

    server: int
    postgres: bool
    unit: str = "posting"
    before: dict[int, float] = field(default_factory=dict)
    pg_before: dict[int, float] = field(default_factory=dict)
    busy_before: tuple[int, int] = (0, 0)
    began: float = 0.0

    def start(self) -> None:
        self.began = time.perf_counter()
        self.before = {pid: cpu_seconds(pid) for pid in descendants(self.server)}
        self.pg_before = (
            {pid: cpu_seconds(pid) for pid in processes_named("postgres")} if self.postgres else {}
        )
        self.busy_before = machine_busy()

    def note(self, rate: float) -> str:
        """``rate``: postings (``unit``) per second over the run, wrk's figure; the CPU is counted from
        ``start`` until now."""
        postings = max(rate * (time.perf_counter() - self.began), 1.0)

        def spent(before: dict[int, float], pids: list[int]) -> float:
            # a process that started during the run counts from 0, one that ended in it is lost either way
            return sum(max(cpu_seconds(pid) - before.get(pid, 0.0), 0.0) for pid in pids)

        worker = spent(self.before, descendants(self.server))
        parts = [f"service CPU {worker / postings * 1e6:,.0f} us/{self.unit}"]
        if self.postgres:
            pg = spent(self.pg_before, processes_named("postgres"))
            parts.append(f"PostgreSQL CPU {pg / postings * 1e6:,.0f} us/{self.unit}")
        busy, total = machine_busy()
        share = (busy - self.busy_before[0]) / max(total - self.busy_before[1], 1)
        parts.append(f"all cores {share:.0%} busy")
        return ", ".join(parts)


# --- bulk ingest -------------------------------------------------------------------------------------------


def make_csv(path: Path, rows: int, run: str = "bulk") -> None:
    rng = np.random.default_rng(7)
    end = pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta(hours=1)
    offsets = pd.to_timedelta(rng.integers(0, 300 * 86400, rows), unit="s")
    cents = rng.integers(10_000, 2_000_000, rows)
    frame = pd.DataFrame(
        {
            "transaction_id": [f"{run}-{i:07d}" for i in range(rows)],
            "customer_id": [f"bulk-{c}" for c in rng.integers(0, CUSTOMERS, rows)],
            "occurred_at": (end - offsets).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "type": rng.choice(["purchase", "purchase", "bill_payment", "transfer"], rows),
            "amount": [f"{c // 100}.{c % 100:02d}" for c in cents],
            "category": rng.choice(["grocery", "travel", "fuel", "dining", ""], rows),
            "channel": rng.choice(["card", "app", "web"], rows),
        }
    )
    frame.to_csv(path, index=False)


def bench_ingest(engine: Engine, rules: Rules, csv: Path, workers: int = 1) -> tuple[float, str]:
    began = time.perf_counter()
    frame = read_transactions(csv)
    report = ingest_frame(engine, frame, rules=rules, source=csv.name, workers=workers)
    elapsed = time.perf_counter() - began
    note = (
        f"{report.posted} posted, {report.held} held, {report.rejected} rejected in {elapsed:.1f} s"
        f" by {report.processes} process(es)"
    )
    return report.rows_read / elapsed, note


# --- main --------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="Duration of each throughput run.")
    parser.add_argument("--skip-http", action="store_true", help="Skip the HTTP (wrk) runs.")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("LOYALTY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help=f"A PostgreSQL server URL; the database {BENCH_DB} is created there and dropped at the end.",
    )
    parser.add_argument("--skip-pg", action="store_true", help="SQLite only.")
    parser.add_argument("--ingest-rows", type=int, default=200_000)
    args = parser.parse_args()

    if not args.skip_http and shutil.which("wrk") is None:
        parser.error("wrk is not installed (apt-get install -y wrk), or pass --skip-http")

    rules = bench_rules()
    rows: list[Row] = []
    run = secrets.token_hex(3)
    with tempfile.TemporaryDirectory(prefix="loyalty-bench-") as tmp:
        workdir = Path(tmp)
        csv = workdir / "transactions.csv"
        print(f"generating {args.ingest_rows:,} rows ...", file=sys.stderr)
        make_csv(csv, args.ingest_rows)
        script = workdir / "post.lua"
        occurred = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        script.write_text(WRK_SCRIPT % {"key": CORE_KEY, "occurred": occurred, "customers": CUSTOMERS})

        backends = [("SQLite", sqlite_database(workdir))]
        if not args.skip_pg:
            backends.append(("PostgreSQL", pg_database(args.pg_url)))
        for name, database in backends:
            with database as url:
                engine = fresh_engine(url)
                try:
                    warm_up(engine, rules, run)
                    for threads in (1, 8):
                        print(f"{name}: in-process, {threads} thread(s) ...", file=sys.stderr)
                        rate, errors = bench_in_process(
                            engine, rules, threads, args.seconds, f"{run}-{threads}"
                        )
                        note = f"{errors} errors" if errors else ""
                        rows.append(
                            Row(
                                name, f"in-process, batch of 1, {threads} thread(s)", rate, "postings/s", note
                            )
                        )
                    if not args.skip_http:
                        analyze(engine)
                        with server(url, workdir / f"server-{name}.log") as (base, pid):
                            for threads, conns in ((1, 1), (2, 8)):
                                print(f"{name}: HTTP, wrk -t{threads} -c{conns} ...", file=sys.stderr)
                                split = CpuSplit(pid, postgres=name == "PostgreSQL")
                                split.start()
                                rate, note = run_wrk(
                                    base, script, threads, conns, args.seconds, f"{run}{conns}"
                                )
                                spent = split.note(rate)
                                note = f"{note}; {spent}" if note else spent
                                rows.append(
                                    Row(
                                        name,
                                        f"HTTP, 2 workers, wrk -t{threads} -c{conns}",
                                        rate,
                                        "postings/s",
                                        note,
                                    )
                                )
                        if name == "SQLite":  # the route's own cost does not depend on the database
                            print("HTTP, the route without the ledger ...", file=sys.stderr)
                            with server(url, workdir / "route-only.log", route_only=True) as (base, pid):
                                run_wrk(base, script, 2, 8, 2, f"{run}warm")
                                split = CpuSplit(pid, postgres=False, unit="request")
                                split.start()
                                rate, note = run_wrk(base, script, 2, 8, args.seconds, f"{run}route")
                                rows.append(
                                    Row(
                                        "-",
                                        "HTTP, 2 workers, wrk -t2 -c8, route only (fixed answer, no ledger)",
                                        rate,
                                        "requests/s",
                                        f"{note}; {split.note(rate)}",
                                    )
                                )
                    print(f"{name}: bulk ingest of {args.ingest_rows:,} rows ...", file=sys.stderr)
                    rate, note = bench_ingest(engine, rules, csv)
                    rows.append(
                        Row(name, f"bulk ingest ({args.ingest_rows:,}-row CSV)", rate, "rows/s", note)
                    )
                    if name == "PostgreSQL" and (cpus := os.cpu_count() or 1) > 1:
                        # the same customers, new transaction ids: customers split over one process a core
                        print(f"{name}: bulk ingest in {cpus} processes ...", file=sys.stderr)
                        again = workdir / "transactions-2.csv"
                        make_csv(again, args.ingest_rows, run="bulk2")
                        rate, note = bench_ingest(engine, rules, again, workers=cpus)
                        rows.append(
                            Row(
                                name,
                                f"bulk ingest ({args.ingest_rows:,}-row CSV), {cpus} processes",
                                rate,
                                "rows/s",
                                note,
                            )
                        )
                    with engine.connect() as conn:
                        n_entries = conn.execute(text("SELECT count(*) FROM entries")).scalar()
                    print(f"{name}: {n_entries:,} entries written", file=sys.stderr)
                finally:
                    engine.dispose()

    cpu = os.cpu_count()
    print(f"\nLedger throughput ({cpu} CPUs, {args.seconds:g} s per run, {dt.date.today().isoformat()})\n")
    print("| backend | measure | rate | unit | notes |")
    print("|---|---|---:|---|---|")
    for r in rows:
        print(f"| {r.backend} | {r.measure} | {r.value:,.0f} | {r.unit} | {r.note} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
