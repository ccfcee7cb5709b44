"""Scoring-service latency and throughput: ``/v1/score`` and ``/v1/offers/rank`` next to a bare endpoint.

    python benchmarks/serving.py [--customers 2000] [--days 240] [--seconds 10] [--connections 32]
                                 [--workers 2] [--world DIR] [--skip-decision-log]

It builds (or, with ``--world DIR``, reuses) a simulated bank: ``--customers`` x ``--days`` simulated,
ingested into a SQLite ledger, features into the online table, the churn, offer and uplift models trained
by the real jobs into an MLflow store in the same folder, and ``loyalty score``'s multiplier rule. Then,
on 127.0.0.1 only, each server with ``--workers`` worker processes and each driven by ``wrk``
(``apt-get install -y wrk``) with ``--connections`` connections for ``--seconds`` after a 2-second
warm-up:

- bare: a FastAPI app with one pydantic-validated POST endpoint answering a fixed small JSON, no
  middleware, no auth (what the framework itself costs per request on this machine), and the same endpoint
  with one ``predict`` of the world's churn booster on a numpy row (what one model call adds);
- ``POST /v1/score`` of one customer (a random known customer per request) on ``loyalty serve``;
- ``POST /v1/offers/rank`` (k = 1, random known customer; the decision and the shadow decision are
  logged before the answer), with the frequency caps raised so that every request ranks the whole catalogue
  instead of stopping at a capped customer.

For each it prints requests/s and wrk's latency percentiles (p50, p99) and how the CPU time split
between the worker processes (from /proc: the load must spread over both). Targets: p99 <= 2x the bare
endpoint's, >= 5,000 requests/s with 2 workers on 2 cores.

Last, in-process on a copy of the ledger: decisions written one transaction each vs through the
group-commit writer (``serving.runtime.decision_writer``) with 32 concurrent writers. Every process it starts
is bounded in time and stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from procfs import children, cpu_seconds

# Run as ``python benchmarks/serving.py``, this file's folder comes first on ``sys.path`` and its name would
# shadow the ``serving`` package (imported below, inside functions): take the folder off the path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

API_KEYS = "core:bench-core,marketing:bench-marketing,admin:bench-admin"
BARE_APP = """
import os

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_ids: list[str] = Field(min_length=1, max_length=1000)


class Score(BaseModel):
    customer_id: str
    churn_probability: float


class Out(BaseModel):
    scores: list[Score]


app = FastAPI()


@app.post("/score", response_model=Out)
async def score(body: Body) -> dict:
    return {"scores": [{"customer_id": c, "churn_probability": 0.5} for c in body.customer_ids]}


if os.environ.get("BARE_BOOSTER"):
    import lightgbm as lgb

    BOOSTER = lgb.Booster(model_file=os.environ["BARE_BOOSTER"])
    ROWS = np.random.default_rng(0).random((1024, BOOSTER.num_feature()))

    @app.post("/score-model", response_model=Out)
    async def score_model(body: Body) -> dict:
        row = ROWS[hash(body.customer_ids[0]) % len(ROWS)].reshape(1, -1)
        p = float(BOOSTER.predict(row, num_threads=1)[0])  # the default, all cores, costs ~7 ms
        return {"scores": [{"customer_id": c, "churn_probability": p} for c in body.customer_ids]}
"""

WRK_SCRIPT = """
local ids = {%(ids)s}
local path = "%(path)s"
local kind = "%(kind)s"

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-API-Key"] = "%(key)s"
end

function request()
  local id = ids[math.random(#ids)]
  local body
  if kind == "rank" then
    body = '{"customer_id":"' .. id .. '","k":1}'
  else
    body = '{"customer_ids":["' .. id .. '"]}'
  end
  return wrk.format(nil, path, nil, body)
end
"""


@dataclass(slots=True)
class Run:
    name: str
    rate: float
    p50_ms: float
    p99_ms: float
    errors: str
    spread: str
    cpu_ms: float = float("nan")  # worker CPU per request: what the machine's other load cannot distort
    batches: str = "-"


def batch_sums(base: str) -> dict[str, tuple[float, float]]:
    """(sum, count) of the service's batch-size histograms, summed over its workers."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    out = {}
    for name in ("loyalty_inference_batch_size", "loyalty_decision_batch_size"):
        total = re.search(rf"^{name}_sum\s+(\S+)", text, re.MULTILINE)
        count = re.search(rf"^{name}_count\s+(\S+)", text, re.MULTILINE)
        out[name] = (float(total.group(1)) if total else 0.0, float(count.group(1)) if count else 0.0)
    return out


def mean_batches(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]) -> str:
    parts = []
    for name, label in (("loyalty_inference_batch_size", "model"), ("loyalty_decision_batch_size", "log")):
        total = after[name][0] - before[name][0]
        count = after[name][1] - before[name][1]
        if count:
            parts.append(f"{label} {total / count:.1f}")
    return ", ".join(parts) or "-"


# --- the world ---


def build_world(root: Path, customers: int, days: int) -> None:
    """Simulate, ingest, compute features, train both champions (skipped when ``root`` already has them)."""
    if (root / "multiplier.json").exists():
        print(f"reusing the world in {root}", file=sys.stderr)
        return
    from loyalty_core import DEFAULT_RULES, load_rules, make_engine, migrate
    from models import Registration, ScoreRequest, promote_uplift, score_all, train_churn, train_offers
    from pipelines import SimConfig, ingest_history, run_feature_job, simulate

    root.mkdir(parents=True, exist_ok=True)
    config = SimConfig(customers=customers, days=days, seed=11)
    started = time.perf_counter()
    simulate(config, root / "history", force=True)
    engine = make_engine(f"sqlite:///{root / 'loyalty.db'}")
    rules = load_rules(DEFAULT_RULES)
    uri = tracking_uri(root)
    (root / "mlflow").mkdir(exist_ok=True)
    os.environ["MLFLOW_TRACKING_URI"] = os.environ["MLFLOW_REGISTRY_URI"] = uri
    try:
        migrate(engine)
        ingest_history(engine, root / "history", rules=rules)
        run_feature_job(engine, as_of=config.end_at, rules=rules, out_dir=root / "features")
        train_churn(engine, rules=rules, registration=Registration(tracking_uri=uri))
        # and the uplift model beside it
        offers = train_offers(engine, rules=rules, registration=Registration(tracking_uri=uri))
        if offers.uplift is not None and offers.uplift.version is not None and not offers.uplift.promoted:
            # the job's gate withheld it (see models.registry.promotion.decide_uplift_promotion); the
            # benchmark measures the full ranking path, uplift included
            promote_uplift(offers.uplift.version, reason="benchmark: the full ranking path", tracking_uri=uri)
        score_all(
            engine,
            rules=rules,
            request=ScoreRequest(
                as_of=config.end_at.date(),
                out=root / "scores.parquet",
                multiplier_file=root / "multiplier.json",
            ),
        )
    finally:
        engine.dispose()
    print(f"world built in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def tracking_uri(root: Path) -> str:
    return f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"


def known_customers(root: Path, limit: int = 5000) -> list[str]:
    import sqlite3

    with contextlib.closing(sqlite3.connect(root / "loyalty.db")) as conn:
        rows = conn.execute("SELECT customer_id FROM online_features ORDER BY customer_id LIMIT ?", (limit,))
        return [str(r[0]) for r in rows]


# --- servers ---


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def process_group(cmd: list[str], env: dict[str, str], log_path: Path, health: str) -> Iterator[int]:
    """Start ``cmd`` in its own session; yield its pid once ``health`` answers 200; stop the group after."""
    with log_path.open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 (our own command line)
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited with {proc.returncode}; see {log_path}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server not ready within 120 s; see {log_path}")
                with contextlib.suppress(httpx.HTTPError):
                    r = httpx.get(health, timeout=1)
                    if r.status_code == 200 and (
                        r.headers.get("content-type", "").startswith("text") or _ok(r)
                    ):
                        break
                time.sleep(0.2)
            yield proc.pid
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _ok(r: httpx.Response) -> bool:
    try:
        body = r.json()
    except ValueError:
        return False
    return not isinstance(body, dict) or body.get("status", "ok") == "ok"


def churn_booster(root: Path) -> Path:
    """The world's churn champion as LightGBM saved it: the bare endpoint's reference model."""
    found = sorted((root / "mlflow").glob("**/loyalty-churn/**/booster.txt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise RuntimeError(f"no churn booster under {root / 'mlflow'}")
    return found[-1]


def bare_server(workdir: Path, workers: int) -> tuple[list[str], str]:
    (workdir / "bare_app.py").write_text(BARE_APP, encoding="utf-8")
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "bare_app:app",
        "--app-dir",
        str(workdir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return cmd, f"http://127.0.0.1:{port}"


def loyalty_server(workers: int) -> tuple[list[str], str]:
    port = free_port()
    exe = Path(sys.executable).with_name("loyalty")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "serving.cli"]
    return [*cmd, "serve", "--workers", str(workers), "--host", "127.0.0.1", "--port", str(port)], (
        f"http://127.0.0.1:{port}"
    )


def worker_pids(supervisor: int) -> list[int]:
    """uvicorn's worker processes (the supervisor's children that are Python, not its resource tracker)."""
    out = []
    for child in children(supervisor):
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"resource_tracker" not in cmdline:
                out.append(child)
    return out


# --- wrk ---

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if m is None:
        raise RuntimeError(f"cannot read wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def run_wrk(
    name: str,
    base: str,
    path: str,
    script: Path,
    *,
    conns: int,
    seconds: float,
    supervisor: int,
) -> Run:
    threads = min(conns, 2)

    def wrk(duration: float) -> str:
        cmd = [
            "wrk",
            f"-t{threads}",
            f"-c{conns}",
            f"-d{max(1, round(duration))}s",
            "--latency",
            "--timeout",
            "10s",
        ]
        cmd += ["-s", str(script), f"{base}{path}"]
        return subprocess.run(  # noqa: S603 (our own command line)
            cmd, capture_output=True, text=True, timeout=duration + 60, check=True
        ).stdout

    wrk(2)  # warm-up: connections, caches, the first batches
    workers = worker_pids(supervisor)
    before = {p: cpu_seconds(p) for p in workers}
    out = wrk(seconds)
    used = {p: cpu_seconds(p) - before[p] for p in workers}
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    if rate is None or p50 is None or p99 is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    errors = []
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        errors.append(f"{m.group(1)} non-2xx")
    if m := re.search(r"Socket errors:.*", out):
        errors.append(m.group(0))
    total = sum(used.values()) or 1.0
    spread = " / ".join(f"{100 * v / total:.0f}%" for v in sorted(used.values(), reverse=True))
    spread += f" of {total:.1f} CPU-s"
    done = re.search(r"(\d+) requests in", out)
    cpu_ms = 1000 * total / int(done.group(1)) if done else float("nan")
    return Run(
        name, float(rate.group(1)), _ms(p50.group(1)), _ms(p99.group(1)), "; ".join(errors), spread, cpu_ms
    )


def write_script(path: Path, *, ids: list[str], url_path: str, kind: str, key: str) -> Path:
    text = WRK_SCRIPT % {
        "ids": ", ".join(f'"{i}"' for i in ids),
        "path": url_path,
        "kind": kind,
        "key": key,
    }
    path.write_text(text, encoding="utf-8")
    return path


# --- the decision log ---


def decision_rows(n: int) -> list[dict[str, object]]:
    now = dt.datetime.now(dt.UTC)
    return [
        {
            "id": uuid.uuid4().hex,
            "customer_id": f"bench-{i % 1000}",
            "made_at": now,
            "policy": "epsilon_greedy:0.05",
            "offer_id": "MULT2_FUEL",
            "probability": 0.96,
            "served": True,
            "channel": "app",
            "offers": [{"offer_id": "MULT2_FUEL", "rank": 1, "score": 0.1, "probability": 0.96}],
            "model_versions": {"offers": "1", "features": "x", "catalogue": "y"},
        }
        for i in range(n)
    ]


def bench_decision_log(db: Path, n: int = 3000) -> list[tuple[str, float]]:
    from loyalty_core import in_transaction, make_engine, record_decisions
    from serving import DecisionWriter

    engine = make_engine(f"sqlite:///{db}")
    out = []
    try:
        rows = decision_rows(n)
        started = time.perf_counter()
        for row in rows:
            in_transaction(engine, lambda s, r=row: record_decisions(s, [r]))  # type: ignore[misc]
        out.append(("one transaction per decision", n / (time.perf_counter() - started)))

        async def grouped() -> float:
            writer = DecisionWriter(engine)
            await writer.start()
            queue = iter(decision_rows(n))

            async def client() -> None:
                for row in queue:
                    await writer.write([row])

            started = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(32)))
            elapsed = time.perf_counter() - started
            await writer.stop()
            return n / elapsed

        out.append(("group commit, 32 concurrent requests", asyncio.run(grouped())))
    finally:
        engine.dispose()
    return out


# --- main ---


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=240)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--world", type=Path, help="Folder for the simulated world (kept; reused when present)."
    )
    parser.add_argument("--skip-decision-log", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (apt-get install -y wrk)")

    workdir = Path(tempfile.mkdtemp(prefix="loyalty-serving-bench-"))
    root = args.world or workdir / "world"
    try:
        build_world(root, args.customers, args.days)
        # The servers write decisions: give them a copy, so a kept world stays as it was built.
        db = workdir / "serve.db"
        shutil.copyfile(root / "loyalty.db", db)
        ids = known_customers(root)
        core, marketing = "bench-core", "bench-marketing"
        runs: list[Run] = []
        common = {"conns": args.connections, "seconds": args.seconds}

        cmd, base = bare_server(workdir, args.workers)
        bare_env = dict(os.environ, BARE_BOOSTER=str(churn_booster(root)))
        with process_group(cmd, bare_env, workdir / "bare.log", f"{base}/openapi.json") as pid:
            for name, url_path in (
                ("bare FastAPI endpoint", "/score"),
                ("bare + one LightGBM predict (numpy row)", "/score-model"),
            ):
                script = write_script(workdir / "bare.lua", ids=ids, url_path=url_path, kind="score", key="-")
                runs.append(run_wrk(name, base, url_path, script, supervisor=pid, **common))

        env = dict(
            os.environ,
            LOYALTY_DATABASE_URL=f"sqlite:///{db}",
            LOYALTY_API_KEYS=API_KEYS,
            MLFLOW_TRACKING_URI=tracking_uri(root),
            MLFLOW_REGISTRY_URI=tracking_uri(root),
            LOYALTY_MODEL_POLL_SECONDS="0",
            LOYALTY_MULTIPLIER_FILE=str(root / "multiplier.json"),
            LOYALTY_CAP_PER_CUSTOMER="1000000000",
            LOYALTY_CAP_PER_CHANNEL="1000000000",
            LOYALTY_CAP_PER_OFFER="1000000000",
        )
        env.pop("LOYALTY_RULES", None)
        cmd, base = loyalty_server(args.workers)
        with process_group(cmd, env, workdir / "loyalty.log", f"{base}/health") as pid:
            for name, url_path, kind, key in (
                ("POST /v1/score (1 customer)", "/v1/score", "score", core),
                ("POST /v1/offers/rank (k=1)", "/v1/offers/rank", "rank", marketing),
            ):
                script = write_script(workdir / f"{kind}.lua", ids=ids, url_path=url_path, kind=kind, key=key)
                before = batch_sums(base)
                run = run_wrk(name, base, url_path, script, supervisor=pid, **common)
                run.batches = mean_batches(before, batch_sums(base))
                runs.append(run)

        bare = runs[0]
        print(
            f"\n{args.workers} workers, wrk {args.connections} connections, {args.seconds:g} s per run, "
            f"{len(ids)} customers, {os.cpu_count()} cores\n"
        )
        print(
            "| endpoint | requests/s | p50 ms | p99 ms | p99 / bare | worker CPU ms / request "
            "| CPU split over workers | mean batch (incl. warm-up) | errors |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |")
        for r in runs:
            ratio = r.p99_ms / bare.p99_ms if bare.p99_ms else float("nan")
            print(
                f"| {r.name} | {r.rate:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {ratio:.2f}x "
                f"| {r.cpu_ms:.3f} | {r.spread} | {r.batches} | {r.errors or '-'} |"
            )
        print(
            f"\nload average during the runs: {os.getloadavg()[0]:.2f} (other processes share the cores; "
            "worker CPU per request does not depend on them)"
        )
        if not args.skip_decision_log:
            copy = workdir / "decisions.db"
            shutil.copyfile(root / "loyalty.db", copy)
            print("\n| decision log (SQLite, in-process) | decisions/s |\n| --- | ---: |")
            for name, rate in bench_decision_log(copy):
                print(f"| {name} | {rate:,.0f} |")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
