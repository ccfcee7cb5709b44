"""Concurrent writers on one ledger: idempotency and balances hold when the same ids race between threads.

Eight threads post overlapping batches (1-20 postings each) through ``in_transaction``, the way the service's
batcher and the importer do. The workload mixes

- ~2,000 distinct transactions over 30 customers, each posted by one owner thread;
- exact replays (~10 % of all requests) of those ids by *other* threads, ordered so that every copy of an id
  is posted at about the same moment by each thread that has it (the replays really race the original);
- conflicting pairs: one transaction id with two bodies (different amount, some also a different customer),
  each body posted once by a different thread. A pair on two customers locks two different member rows, so
  on PostgreSQL it is the unique index ``(kind, ext_id)`` plus the retry of ``in_transaction`` that settles
  it; on one customer the member lock does.

Without the idempotency check every replay would either double the points or hit the unique index on every
retry and fail the batch; either way the assertions below (one entry per id, exact balances, one success and
one conflict per pair) catch it.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import tomllib
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty_core import journal, ledger, statements
from loyalty_core.config import DEFAULT_RULES
from loyalty_core.errors import Conflict, LoyaltyError
from loyalty_core.rules import parse_rules
from loyalty_core.schema import Entry, Member

THREADS = 8
DISTINCT = 2000
CONFLICT_PAIRS = 60
CUSTOMERS = 30
REPLAY_SHARE = 0.10
T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
NOW = T0 + dt.timedelta(days=1)


def _rules():  # type: ignore[no-untyped-def]
    """The shipped earning rules, with fraud limits no workload here can trip and only the base tier.

    (A customer here spends ~700k, which would reach the silver boost part-way through and make the expected
    points depend on the order the threads happened to commit in.)
    """
    with DEFAULT_RULES.open("rb") as fh:
        doc = tomllib.load(fh)
    doc["tiers"]["levels"] = [{"name": "base", "min_spend": "0", "boost": "1"}]
    doc["fraud"] = {
        "velocity_max": 10**9,
        "unusual_amount_absolute": "1000000000",
        "unusual_amount_factor": "1000000",
    }
    return parse_rules(doc)


RULES = _rules()


def expected_points(t: ledger.TransactionIn) -> int:
    hundreds = int((t.amount / 100).to_integral_value(rounding=ROUND_FLOOR))
    return {"purchase": hundreds, "bill_payment": 2 * hundreds, "transfer": 5}[t.type]


@dataclass(frozen=True, slots=True)
class Request:
    order: float  # position in the global timeline: copies of one id share it, so they race
    txn: ledger.TransactionIn


def _workload(rng: random.Random) -> tuple[list[list[Request]], dict[str, ledger.TransactionIn], dict]:  # type: ignore[type-arg]
    """Per-thread request lists, the plain transactions by id, and the conflicting pairs by id."""
    per_thread: list[list[Request]] = [[] for _ in range(THREADS)]

    def body(tid: str, customer: str | None = None, amount: Decimal | None = None) -> ledger.TransactionIn:
        return ledger.TransactionIn(
            transaction_id=tid,
            customer_id=customer or f"cust-{rng.randrange(CUSTOMERS):02d}",
            type=rng.choice(["purchase", "purchase", "bill_payment", "transfer"]),
            amount=amount or Decimal(rng.randrange(100, 2_000_000)) / 100,  # 1.00 .. 19,999.99
            occurred_at=T0 + dt.timedelta(seconds=rng.randrange(3600)),
            channel=rng.choice(["card", "app", None]),
        )

    plain: dict[str, ledger.TransactionIn] = {}
    for n in range(DISTINCT - CONFLICT_PAIRS):
        t = body(f"t-{n:05d}")
        plain[t.transaction_id] = t
        owner = rng.randrange(THREADS)
        slot = rng.random()
        per_thread[owner].append(Request(slot, t))
    # Replays: exact copies by other threads, at the same place in their timeline as the original.
    n_requests = len(plain) + 2 * CONFLICT_PAIRS
    replayed = rng.sample(sorted(plain), int(n_requests * REPLAY_SHARE / (1 - REPLAY_SHARE) / 1.75))
    for tid in replayed:
        owners = [i for i, reqs in enumerate(per_thread) if any(r.txn.transaction_id == tid for r in reqs)]
        slot = next(r.order for r in per_thread[owners[0]] if r.txn.transaction_id == tid)
        others = [i for i in range(THREADS) if i not in owners]
        for i in rng.sample(others, rng.choice([1, 1, 2, 3])):  # some ids race in 3 or 4 threads at once
            per_thread[i].append(Request(slot + rng.uniform(-0.001, 0.001), plain[tid]))
    # Conflicting pairs: same id, different amount (and for a third of them another customer too).
    pairs: dict[str, tuple[ledger.TransactionIn, ledger.TransactionIn]] = {}
    for n in range(CONFLICT_PAIRS):
        a = body(f"x-{n:05d}")
        other_customer = f"cust-{(int(a.customer_id[5:]) + 1) % CUSTOMERS:02d}" if n % 3 == 0 else None
        delta = Decimal("1.00") if a.amount < 19000 else Decimal("-1.00")
        b = body(a.transaction_id, other_customer or a.customer_id, a.amount + delta)
        pairs[a.transaction_id] = (a, b)
        i, j = rng.sample(range(THREADS), 2)
        slot = rng.random()
        per_thread[i].append(Request(slot, a))
        per_thread[j].append(Request(slot, b))
    for reqs in per_thread:
        reqs.sort(key=lambda r: r.order)
    return per_thread, plain, pairs


def _run_thread(
    engine: Engine,
    requests: list[Request],
    rng: random.Random,
    start: threading.Barrier,
    results: list[tuple[ledger.TransactionIn, ledger.Outcome]],
    errors: list[BaseException],
) -> None:
    try:
        start.wait()
        pos = 0
        while pos < len(requests):
            batch = [r.txn for r in requests[pos : pos + rng.randint(1, 20)]]
            pos += len(batch)
            outcomes = journal.in_transaction(
                engine,
                lambda s, batch=batch: ledger.post_transactions(
                    s, batch, rules=RULES, actor="test:concurrency", now=NOW
                ),
            )
            assert len(outcomes) == len(batch)
            results.extend(zip(batch, outcomes, strict=True))
    except BaseException as exc:  # reported by the main thread
        errors.append(exc)


def test_concurrent_overlapping_postings_stay_idempotent(db_engine: Engine) -> None:
    rng = random.Random(20261124)
    per_thread, plain, pairs = _workload(rng)
    n_requests = sum(map(len, per_thread))
    replays = n_requests - len(plain) - 2 * len(pairs)
    assert 0.08 <= replays / n_requests <= 0.12

    start = threading.Barrier(THREADS)
    results: list[list[tuple[ledger.TransactionIn, ledger.Outcome]]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []
    threads = [
        threading.Thread(
            target=_run_thread,
            args=(db_engine, reqs, random.Random(i), start, results[i], errors),
            name=f"writer-{i}",
        )
        for i, reqs in enumerate(per_thread)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a writer thread hung"
    assert not errors, f"writer threads failed: {errors!r}"

    by_id: dict[str, list[tuple[ledger.TransactionIn, ledger.Outcome]]] = defaultdict(list)
    for chunk in results:
        for txn, outcome in chunk:
            by_id[txn.transaction_id].append((txn, outcome))
    assert sum(map(len, by_id.values())) == n_requests

    # Plain ids: every copy succeeded, exactly one of them fresh, and every replay answered the same thing.
    winners: dict[str, ledger.TransactionIn] = {}
    for tid, txn in plain.items():
        outcomes = [o for _, o in by_id[tid]]
        assert all(isinstance(o, ledger.PostingResult) for o in outcomes), (tid, outcomes)
        fresh = [o for o in outcomes if isinstance(o, ledger.PostingResult) and not o.replayed]
        assert len(fresh) == 1, f"{tid} was posted fresh {len(fresh)} times"
        assert all(o.response == fresh[0].response for o in outcomes if isinstance(o, ledger.PostingResult))
        assert fresh[0].response["points"] == expected_points(txn)
        winners[tid] = txn

    # Conflicting pairs: one fresh success and one idempotency conflict, whichever thread won.
    for tid, (a, b) in pairs.items():
        outcomes = by_id[tid]
        assert len(outcomes) == 2
        won = [(t, o) for t, o in outcomes if isinstance(o, ledger.PostingResult)]
        lost = [(t, o) for t, o in outcomes if isinstance(o, LoyaltyError)]
        assert len(won) == 1, (tid, outcomes)
        assert len(lost) == 1, (tid, outcomes)
        assert not won[0][1].replayed  # type: ignore[union-attr]
        assert isinstance(lost[0][1], Conflict)
        assert lost[0][1].code == "idempotency_conflict"
        assert {won[0][0], lost[0][0]} == {a, b}
        winners[tid] = won[0][0]

    with Session(db_engine) as s:
        counts = Counter(
            dict(
                s.execute(
                    select(Entry.ext_id, func.count()).where(Entry.kind == "earn").group_by(Entry.ext_id)
                ).all()
            )
        )
        assert set(counts) == set(winners)
        assert max(counts.values()) == 1
        stored = {
            r.ext_id: (r.member_id, r.amount, r.points, r.status)
            for r in s.execute(
                select(Entry.ext_id, Entry.member_id, Entry.amount, Entry.points, Entry.status).where(
                    Entry.kind == "earn"
                )
            )
        }
        for tid, t in winners.items():
            assert stored[tid] == (t.customer_id, t.amount, expected_points(t), "posted"), tid

        expected_balance: Counter[str] = Counter()
        for t in winners.values():
            expected_balance[t.customer_id] += expected_points(t)
        balances = dict(s.execute(select(Member.id, Member.balance)).all())
        assert balances == dict(expected_balance)
        assert sum(balances.values()) == sum(expected_points(t) for t in winners.values())
        assert statements.check_invariants(s) == []
