"""An acknowledged posting survives the service being killed: the real server, SIGKILLed mid-load.

``loyalty serve --workers 2`` runs on the PostgreSQL test database while 8 client threads post unique
transactions. About a second into the load the whole process group (uvicorn's supervisor and its workers) gets
SIGKILL: no lifespan shutdown, no batch flush, connections cut mid-transaction. After a restart every
transaction that had been answered 200 must be in the ledger with the points it was answered, a replay of it
must return the very same answer (marked as a replay), and the ledger must agree with itself.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from loyalty_core import Entry, Settings, check_invariants
from tests.serving.conftest import free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CLIENTS = 8
LOAD_BEFORE_KILL = 1.5  # seconds of load before SIGKILL
LOAD_AFTER_KILL = 0.5  # clients keep trying (and failing) a moment longer, so requests are in flight
START_TIMEOUT = 30.0
CORE_KEY = "dev-core-key"
HEADERS = {"X-API-Key": CORE_KEY}


def _loyalty_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("loyalty")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "serving.cli"]


class Server:
    """``loyalty serve`` in its own session (process group), so one killpg reaches every worker."""

    def __init__(self, url: str, log_path: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = dict(os.environ)
        env.update(
            LOYALTY_DATABASE_URL=url,
            LOYALTY_API_KEYS=str(Settings.model_fields["api_keys"].default),  # core:dev-core-key,...
        )
        env.pop("LOYALTY_RULES", None)  # the shipped rules: the points asserted below are theirs
        self.log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [*_loyalty_cmd(), "serve", "--workers", "2", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pgid = os.getpgid(self.proc.pid)

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                r = httpx.get(f"{self.base}/health", timeout=1.0)
                if r.status_code == 200 and r.json().get("database") == "ok":
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        pytest.fail(f"server not healthy after {START_TIMEOUT} s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL the whole group and reap the leader; idempotent."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=10)
        finally:
            self.log.close()

    def live_members(self) -> list[int]:
        """Processes of the group that still run (killed workers may linger as zombies until reaped)."""
        alive = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.pgid and fields[0] != "Z":
                alive.append(int(stat.parent.name))
        return alive

    def tail(self, lines: int = 40) -> str:
        if not self.log.closed:
            self.log.flush()
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture
def start_server(pg_engine: Engine, tmp_path: Path) -> Iterator[Any]:
    url = pg_engine.url.render_as_string(hide_password=False)
    servers: list[Server] = []

    def start() -> Server:
        server = Server(url, tmp_path / "server.log")
        servers.append(server)
        server.wait_healthy()
        return server

    yield start
    for server in servers:
        server.kill()


def _expected_points(body: dict[str, Any]) -> int:
    hundreds = int(Decimal(body["amount"]) // 100)
    return {"purchase": hundreds, "bill_payment": 2 * hundreds, "transfer": 5}[body["type"]]


def _client_loop(
    base: str, worker: int, stop: threading.Event, acked: dict[str, tuple[dict, dict]], lock: threading.Lock
) -> tuple[int, int]:
    """Post unique transactions until ``stop``; returns (attempts, transport errors)."""
    rng = random.Random(worker)
    occurred = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    attempts = errors = 0
    with httpx.Client(base_url=base, headers=HEADERS, timeout=5.0) as client:
        n = 0
        while not stop.is_set():
            n += 1
            body = {
                "transaction_id": f"crash-{worker}-{n:06d}",
                # 10 postings per customer: far below the velocity limit and the silver tier's spend.
                "customer_id": f"crash-c{worker}-{n // 10:05d}",
                "type": rng.choice(["purchase", "bill_payment", "transfer"]),
                "amount": f"{rng.randrange(100, 2_000_000) / 100:.2f}",
                "occurred_at": occurred,
            }
            attempts += 1
            try:
                r = client.post("/v1/transactions", json=body)
            except httpx.HTTPError:
                errors += 1
                time.sleep(0.01)  # the server is gone; do not spin
                continue
            if r.status_code == 200:
                with lock:
                    acked[body["transaction_id"]] = (body, r.json())
    return attempts, errors


def test_acknowledged_postings_survive_sigkill(start_server: Any, pg_engine: Engine) -> None:
    first = start_server()
    acked: dict[str, tuple[dict, dict]] = {}
    lock = threading.Lock()
    stop = threading.Event()
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(_client_loop, first.base, i, stop, acked, lock) for i in range(CLIENTS)]
        time.sleep(LOAD_BEFORE_KILL)
        with lock:
            acked_before_kill = len(acked)
        first.kill()
        time.sleep(LOAD_AFTER_KILL)
        stop.set()
        stats = [f.result(timeout=30) for f in futures]
    assert not first.live_members(), "a worker survived the SIGKILL of its process group"
    errors = sum(e for _, e in stats)
    assert acked_before_kill > 50, f"only {acked_before_kill} postings acknowledged before the kill"
    assert errors > 0, "no request failed: the kill did not happen mid-load"
    print(f"{len(acked)} acknowledged ({acked_before_kill} before the kill), {errors} failed requests")

    second = start_server()

    # Every acknowledged posting is in the ledger, once, with the answer it was given.
    with Session(pg_engine) as s:
        stored = {
            r.ext_id: r
            for r in s.execute(
                select(Entry.ext_id, Entry.member_id, Entry.points, Entry.status, Entry.response).where(
                    Entry.kind == "earn", Entry.ext_id.in_(list(acked))
                )
            )
        }
        missing = sorted(set(acked) - set(stored))
        assert not missing, f"{len(missing)} acknowledged postings lost, e.g. {missing[:5]}"
        for tid, (body, answer) in acked.items():
            row = stored[tid]
            assert answer["status"] == "posted", (tid, answer)
            assert answer["points"] == _expected_points(body), (tid, body, answer)
            assert (row.member_id, row.points, row.status) == (
                body["customer_id"],
                answer["points"],
                "posted",
            )
            # The stored answer is what the API sent, less the optional fields its schema fills with null.
            assert {k: v for k, v in answer.items() if v is not None} == {
                k: v for k, v in dict(row.response).items() if v is not None
            }, tid
        assert check_invariants(s) == []

    # A replay of each acknowledged posting answers exactly what the first answer said.
    def replay(bodies: list[dict]) -> list[tuple[str, int, str | None, Any]]:
        out = []
        with httpx.Client(base_url=second.base, headers=HEADERS, timeout=10.0) as client:
            for body in bodies:
                r = client.post("/v1/transactions", json=body)
                out.append(
                    (body["transaction_id"], r.status_code, r.headers.get("Idempotent-Replayed"), r.json())
                )
        return out

    bodies = [body for body, _ in acked.values()]
    with ThreadPoolExecutor(CLIENTS) as pool:
        replies = [
            reply for part in pool.map(replay, [bodies[i::CLIENTS] for i in range(CLIENTS)]) for reply in part
        ]
    assert len(replies) == len(acked)
    for tid, status, replayed, answer in replies:
        assert (status, replayed) == (200, "true"), (tid, status, answer)
        assert answer == acked[tid][1], tid

    # And the restarted service takes new postings.
    fresh = {
        "transaction_id": "after-restart-1",
        "customer_id": "after-restart",
        "type": "purchase",
        "amount": "250.00",
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    r = httpx.post(f"{second.base}/v1/transactions", json=fresh, headers=HEADERS, timeout=10.0)
    assert r.status_code == 200, r.text
    assert r.json()["points"] == 2, r.text
    with Session(pg_engine) as s:
        assert check_invariants(s) == []
