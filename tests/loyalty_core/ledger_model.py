"""The reference model and the operation generator of the ledger's deterministic simulation.

``generate(seed, steps)`` is pure: one ``random.Random(seed)`` draws every operation, with its ``now``, up
front. Operations that refer to earlier ones (a replay, a capture, a reversal...) or to a balance (a
redemption of "about what is available") carry a number in [0, 1) or a share, resolved against the model's
state when the step runs; the model's state depends only on the seed and the ledger's answers, so a seed
replays exactly.

``Model`` applies each operation by the ledger's time model (README, "The time model" and "What is
guaranteed"): it is plain Python (lists of lots, dicts of holds) so that it is obviously right. It does not
re-derive the rules' arithmetic: a new earning's points and status (posted or held by the fraud checks) are
taken from the ledger's answer, as is a new redemption's status; everything else (replays, errors, balances,
debt, lots, expiry, reservations, the dates of every movement) is checked against it.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from loyalty_core.errors import Conflict, InsufficientPoints, InvalidInput, LoyaltyError, NotFound
from loyalty_core.ledger import PostingResult, TransactionIn
from loyalty_core.rules import Rules
from loyalty_core.vocabulary import TXN_TYPES

FUTURE_TOLERANCE = dt.timedelta(minutes=5)
CENT = Decimal("0.01")
REWARDS = ("cashback", "discount", "gift", "charity")
START = dt.datetime(2023, 3, 1, tzinfo=dt.UTC)


# --- operations ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """One step: what to do, at which instant, with which (still symbolic) arguments."""

    step: int
    now: dt.datetime
    kind: str
    args: dict[str, Any]
    rollback: bool = False

    def __str__(self) -> str:
        rb = " ROLLBACK" if self.rollback else ""
        return f"#{self.step} {self.now.isoformat()} {self.kind}{rb} {self.args}"


MUTATING = {
    "earn",
    "earn_batch",
    "redeem",
    "hold",
    "capture",
    "void",
    "timeout_job",
    "reverse",
    "expire",
    "activity",
    "review_earning",
    "review_redemption",
}

WEIGHTS = {
    "earn": 24,
    "earn_batch": 4,
    "replay_earn": 6,
    "redeem": 9,
    "replay_redeem": 2,
    "hold": 8,
    "replay_hold": 1,
    "capture": 6,
    "void": 5,
    "timeout_job": 3,
    "reverse": 8,
    "replay_reverse": 2,
    "expire": 4,
    "activity": 3,
    "replay_activity": 1,
    "review_earning": 4,
    "review_redemption": 4,
}


def _advance(rng: random.Random) -> dt.timedelta:
    """Time only moves forward: often not at all (operations at one instant), from seconds to months."""
    r = rng.random()
    if r < 0.3:
        return dt.timedelta(0)
    if r < 0.55:
        return dt.timedelta(seconds=rng.randint(1, 120))
    if r < 0.72:
        return dt.timedelta(seconds=rng.randint(120, 6 * 3600))
    if r < 0.85:
        return dt.timedelta(seconds=rng.randint(6 * 3600, 30 * 86400))
    return dt.timedelta(seconds=rng.randint(30 * 86400, 200 * 86400))


def _occurred(rng: random.Random) -> tuple[str, int]:
    """When an earning happened, relative to now: mostly now or back-dated, some ahead of the clock."""
    r = rng.random()
    if r < 0.3:
        return ("now", 0)
    if r < 0.45:
        return ("back", rng.randint(1, 3600))
    if r < 0.6:
        return ("back", rng.randint(3600, 90 * 86400))
    if r < 0.68:
        # around a lot's lifetime, and exactly it: a lot that falls due the instant it is booked
        return ("back", rng.choice([rng.randint(360 * 86400, 370 * 86400), 365 * 86400]))
    if r < 0.75:
        return ("back", rng.randint(366 * 86400, 900 * 86400))  # born already due
    if r < 0.82:
        return ("same_as", 0)  # the instant of an earlier earning: lots that tie on their expiry
    if r < 0.92:
        return ("future_ok", rng.choice([1, 30, 120, 240, 300]))  # 300 s: exactly the tolerance
    return ("future_bad", rng.choice([301, 600, 3600, 86400 * 3]))


def _amount(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.6:
        cents = rng.randint(5_000, 500_000)
    elif r < 0.95:
        cents = rng.randint(500_000, 6_000_000)
    else:
        cents = rng.randint(20_000_100, 40_000_000)  # above the simulation's unusual-amount limit: held
    return str(Decimal(cents) / 100)


def _earning_args(rng: random.Random, customers: list[str], tid: str) -> dict[str, Any]:
    return {
        "id": tid,
        "customer": rng.choice(customers),
        "type": rng.choice(TXN_TYPES),
        "amount": _amount(rng),
        "occurred": _occurred(rng),
        "pick": rng.random(),
    }


def generate(seed: int, steps: int) -> list[Op]:
    """The whole run of a seed, drawn up front (pure: the same seed gives the same list)."""
    rng = random.Random(seed)
    customers = [f"c{i}" for i in range(rng.randint(3, 6))]
    now = START + dt.timedelta(seconds=rng.randrange(0, 365 * 86400))
    kinds = list(WEIGHTS)
    weights = [WEIGHTS[k] for k in kinds]
    ops: list[Op] = []
    # What a till or a fraudster does right after, and how long after (seconds to choose from).
    follow: list[tuple[str, dict[str, Any], list[int]]] = []
    for step in range(steps):
        if follow:
            kind, args, delays = follow.pop(0)
            now += dt.timedelta(seconds=rng.choice(delays))
            if kind in ("redeem", "reverse"):
                args = {**args, "id": f"r{step}" if kind == "redeem" else f"v{step}"}
            ops.append(Op(step, now, kind, args, kind in MUTATING and rng.random() < 0.07))
            continue
        now += _advance(rng)
        kind = "earn" if step < 2 else rng.choices(kinds, weights)[0]
        args: dict[str, Any]
        if kind == "earn":
            args = _earning_args(rng, customers, f"t{step}")
        elif kind == "earn_batch":
            items = [_earning_args(rng, customers, f"t{step}.{j}") for j in range(rng.randint(2, 4))]
            if rng.random() < 0.5:  # the same id twice in one batch, with the same body or another
                dup = dict(items[0])
                if rng.random() < 0.5:
                    dup["amount"] = str(Decimal(dup["amount"]) + 1)
                items.append(dup)
            args = {"items": items}
        elif kind in ("replay_earn", "replay_redeem", "replay_hold", "replay_reverse", "replay_activity"):
            args = {"pick": rng.random(), "changed": rng.random() < 0.4}
        elif kind == "redeem":
            args = {
                "id": f"r{step}",
                "customer": rng.choice(customers),
                "share": rng.choice([0.2, 0.5, 0.9, 1.0, 1.0, 1.1, 2.0]),
                "reward": rng.choice(REWARDS),
            }
        elif kind == "hold":
            args = {
                "id": f"h{step}",
                "customer": rng.choice(customers),
                "share": rng.choice([0.1, 0.3, 0.6, 1.0, 1.2]),
                "reward": rng.choice(REWARDS),
                "timeout": rng.choice([None, 30, 600, 3600, 86400]),
            }
        elif kind in ("capture", "void"):
            args = {"pick": rng.random(), "unknown": rng.random() < 0.04}
        elif kind == "timeout_job":
            args = {}
        elif kind == "reverse":
            args = {
                "id": f"v{step}",
                "pick": rng.random(),
                "share": rng.choice([None, None, 0.25, 0.5, 1.0, 1.5]),
                "unknown": rng.random() < 0.04,
            }
        elif kind == "expire":
            r = rng.random()
            if r < 0.6:
                args = {"as_of": ("now", 0)}
            elif r < 0.9:
                args = {"as_of": ("back", rng.randint(1, 60 * 86400))}
            else:
                args = {"as_of": ("ahead", rng.choice([1, 3600, 400 * 86400]))}
        elif kind == "activity":
            args = {
                "id": f"a{step}",
                "customer": rng.choice(customers),
                "kind": rng.choice(["social", "referral", "survey"]),
            }
        elif kind == "review_earning" or kind == "review_redemption":
            args = {"pick": rng.random(), "any": rng.random() < 0.2, "approve": rng.random() < 0.6}
        else:  # pragma: no cover - the weights table and this chain must agree
            raise AssertionError(kind)
        rollback = kind in MUTATING and rng.random() < 0.07
        ops.append(Op(step, now, kind, args, rollback))
        if (
            kind == "hold" and rng.random() < 0.5
        ):  # the till settles its hold (the latest), even at its timeout
            timeout = args["timeout"] or 900
            if rng.random() < 0.25:  # a refund claws the held points back before the till captures
                back = {"pick": rng.random(), "share": None, "unknown": False, "customer": args["customer"]}
                follow.append(("reverse", back, [0, 1]))
            follow.append(
                (
                    rng.choice(["capture", "capture", "void"]),
                    {"pick": 0.999999, "unknown": False},
                    [0, 1, 5, 60, 240, timeout - 1, timeout, timeout],
                )
            )
        if kind == "earn" and rng.random() < 0.2:  # spend what was just earned: the rapid-redeem check
            share = rng.choice([0.6, 0.9, 1.0])
            follow.append(
                ("redeem", {"customer": args["customer"], "share": share, "reward": "gift"}, [0, 1, 60])
            )
    return ops


def pick(seq: list[Any], r: float) -> Any:
    return seq[int(r * len(seq))] if seq else None


# --- the reference model -----------------------------------------------------------------------------------


class Mismatch(AssertionError):
    """The ledger disagrees with the reference model."""


def check(cond: bool, what: str) -> None:
    if not cond:
        raise Mismatch(what)


def expect_error(outcome: object, cls: type[LoyaltyError], code: str | None = None) -> None:
    ok = isinstance(outcome, cls) and (code is None or getattr(outcome, "code", None) == code)
    if ok and cls is Conflict:
        ok = not isinstance(outcome, InsufficientPoints)
    check(ok, f"expected {cls.__name__}{f'({code})' if code else ''}, got {outcome!r}")


def expect_answer(outcome: object) -> dict[str, Any]:
    check(isinstance(outcome, dict), f"expected an answer, got {outcome!r}")
    assert isinstance(outcome, dict)
    return outcome


@dataclass
class MLot:
    seq: int
    origin: str | None  # the earning whose points it holds (None: an activity)
    points: int
    remaining: int
    earned_at: dt.datetime
    expires_at: dt.datetime


@dataclass
class MMember:
    id: str
    debt: int = 0
    lots: list[MLot] = field(default_factory=list)
    # Every movement of the member's points and debt, with its date: (effective_at, points, debt).
    moves: list[tuple[dt.datetime, int, int]] = field(default_factory=list)

    @property
    def balance(self) -> int:
        return sum(lot.remaining for lot in self.lots)

    def net_by_date(self) -> dict[dt.datetime, tuple[int, int]]:
        out: dict[dt.datetime, tuple[int, int]] = {}
        for at, p, d in self.moves:
            op, od = out.get(at, (0, 0))
            out[at] = (op + p, od + d)
        return {k: v for k, v in out.items() if v != (0, 0)}

    def as_of(self, t: dt.datetime) -> tuple[int, int]:
        return (
            sum(p for at, p, _ in self.moves if at <= t),
            sum(d for at, _, d in self.moves if at <= t),
        )


@dataclass
class MHold:
    id: str
    member: str
    points: int
    key: tuple[Any, ...]
    expires_at: dt.datetime
    answer: dict[str, Any]
    status: str = "active"  # active | captured | voided
    settled_at: dt.datetime | None = None
    capture_answer: dict[str, Any] | None = None
    void_answer: dict[str, Any] | None = None


@dataclass
class MRedemption:
    id: str
    member: str
    points: int
    key: tuple[Any, ...]
    answer: dict[str, Any]
    status: str  # posted | held
    review: str | None = None  # released | rejected (held ones)
    review_answer: dict[str, Any] | None = None


@dataclass
class MEarning:
    id: str
    key: tuple[Any, ...]
    answer: dict[str, Any]
    member: str
    status: str  # posted | held
    points: int  # credited (posted), or what a release would credit (held)
    amount: Decimal
    refunded: Decimal = Decimal(0)
    reversed_any: bool = False
    review: str | None = None
    review_answer: dict[str, Any] | None = None

    @property
    def credited(self) -> int:
        return self.points if self.status == "posted" or self.review == "released" else 0


def earning_key(t: TransactionIn) -> tuple[Any, ...]:
    return (t.customer_id, t.type, Decimal(t.amount).quantize(CENT), t.occurred_at, t.category, t.channel)


class Model:
    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.members: dict[str, MMember] = {}
        self.earnings: dict[str, MEarning] = {}
        self.redemptions: dict[str, MRedemption] = {}
        self.holds: dict[str, MHold] = {}
        self.reversals: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
        self.activities: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
        self.lot_seq = 0
        self.events: Counter[str] = Counter()  # situations reached, to show the runs cover what matters

    # -- state ---------------------------------------------------------------------------------------------
    def reserved(
        self,
        member: str,
        now: dt.datetime,
        *,
        exclude_hold: str | None = None,
        exclude_redemption: str | None = None,
    ) -> int:
        held = sum(
            h.points
            for h in self.holds.values()
            if h.member == member and h.status == "active" and h.expires_at > now and h.id != exclude_hold
        )
        held += sum(
            r.points
            for r in self.redemptions.values()
            if r.member == member and r.status == "held" and r.review is None and r.id != exclude_redemption
        )
        return held

    def available(self, member: str, now: dt.datetime, **exclude: str | None) -> int:
        m = self.members[member]
        live = sum(lot.remaining for lot in m.lots if lot.expires_at > now)
        return live - self.reserved(member, now, **exclude)

    def _expire(self, m: MMember, as_of: dt.datetime) -> tuple[int, int]:
        n = pts = 0
        for lot in m.lots:
            if lot.remaining > 0 and lot.expires_at <= as_of:
                self.events["lot expired"] += 1
                m.moves.append((lot.expires_at, -lot.remaining, 0))
                n += 1
                pts += lot.remaining
                lot.remaining = 0
        return n, pts

    def _expire_before_debit(self, m: MMember, now: dt.datetime, *, optional: bool, answer: object) -> None:
        """Expire the member's due lots before a debit; when the time model leaves it open (no points are
        taken), follow the ledger's choice, which its answer's balance shows."""
        due = sum(lot.remaining for lot in m.lots if lot.remaining and lot.expires_at <= now)
        if optional and due and isinstance(answer, dict) and answer.get("balance") == m.balance:
            self.events["due lots left for the next debit"] += 1
            return
        self._expire(m, now)

    def _credit(self, m: MMember, points: int, origin: str | None, at: dt.datetime, now: dt.datetime) -> None:
        """Debt first (settled now: it exists now), the rest a new lot dated ``at`` (time model 1, 6, 7)."""
        settle = min(points, m.debt)
        if settle:
            m.debt -= settle
            m.moves.append((now, 0, -settle))
            self.events["debt settled by a back-dated earning" if at < now else "debt settled"] += 1
        rest = points - settle
        if rest:
            if at + self.rules.lot_lifetime <= now:
                self.events["lot born already due"] += 1
            self.lot_seq += 1
            m.lots.append(MLot(self.lot_seq, origin, rest, rest, at, at + self.rules.lot_lifetime))
            m.moves.append((at, rest, 0))

    def _take(self, m: MMember, points: int, now: dt.datetime, first: str | None = None) -> int:
        """Earliest expiry first (ties: creation order); a reversal's own lot before all (time model 2)."""
        lots = sorted(
            (lot for lot in m.lots if lot.remaining > 0 and lot.expires_at > now),
            key=lambda lot: (first is None or lot.origin != first, lot.expires_at, lot.seq),
        )
        left = points
        for lot in lots:
            take = min(left, lot.remaining)
            lot.remaining -= take
            left -= take
        taken = points - left
        if taken:
            m.moves.append((now, -taken, 0))
        return taken

    def enrol(self, customer: str) -> MMember:
        return self.members.setdefault(customer, MMember(customer))

    # -- earnings ------------------------------------------------------------------------------------------
    def post(
        self, txns: list[TransactionIn], now: dt.datetime, outcomes: list[Any], held_points: dict[str, int]
    ) -> None:
        check(len(outcomes) == len(txns), f"{len(outcomes)} outcomes for {len(txns)} transactions")
        first: dict[str, int] = {}
        for i, (t, out) in enumerate(zip(txns, outcomes, strict=True)):
            where = f"item {i} ({t.transaction_id})"
            if t.occurred_at > now + FUTURE_TOLERANCE:
                expect_error(out, InvalidInput)
                continue
            key = earning_key(t)
            if t.transaction_id in first:
                j = first[t.transaction_id]
                if earning_key(txns[j]) != key:
                    expect_error(out, Conflict, "idempotency_conflict")
                elif isinstance(outcomes[j], PostingResult):
                    check(
                        isinstance(out, PostingResult)
                        and out.replayed
                        and out.response == outcomes[j].response,
                        f"{where}: duplicate in batch must replay the first answer, got {out!r}",
                    )
                else:
                    check(type(out) is type(outcomes[j]), f"{where}: duplicate must repeat {outcomes[j]!r}")
                continue
            first[t.transaction_id] = i
            m = self.enrol(t.customer_id)
            stored = self.earnings.get(t.transaction_id)
            if stored is not None:
                if stored.key != key:
                    expect_error(out, Conflict, "idempotency_conflict")
                else:
                    check(
                        isinstance(out, PostingResult) and out.replayed and out.response == stored.answer,
                        f"{where}: replay must return the first answer {stored.answer}, got {out!r}",
                    )
                continue
            check(
                isinstance(out, PostingResult) and not out.replayed,
                f"{where}: expected a new posting: {out!r}",
            )
            assert isinstance(out, PostingResult)
            r = out.response
            status = r.get("status")
            check(status in ("posted", "held"), f"{where}: status {status!r}")
            check(
                (r.get("transaction_id"), r.get("customer_id")) == (t.transaction_id, t.customer_id),
                f"{where}: answer names another posting: {r}",
            )
            effective = min(t.occurred_at, now)
            if t.occurred_at > now:
                self.events["earning dated ahead, booked now"] += 1
            if status == "posted":
                points = r["points"]
                check(isinstance(points, int) and points >= 0, f"{where}: points {points!r}")
                self._credit(m, points, t.transaction_id, effective, now)
            else:
                check(r.get("points") == 0 and bool(r.get("reason")), f"{where}: a held answer: {r}")
                points = held_points[t.transaction_id]
            check(r.get("balance") == m.balance, f"{where}: answer balance {r.get('balance')} != {m.balance}")
            self.earnings[t.transaction_id] = MEarning(
                t.transaction_id, key, r, m.id, status, points, Decimal(t.amount).quantize(CENT)
            )

    def review_earning(self, tid: str, approve: bool, now: dt.datetime, out: object) -> None:
        e = self.earnings.get(tid)
        if e is None:
            expect_error(out, NotFound)
            return
        m = self.members[e.member]
        if e.review is not None:
            if (e.review == "released") != approve:
                expect_error(out, Conflict)
            else:
                check(out == e.review_answer, f"review replay: {out!r} != {e.review_answer}")
            return
        if e.status != "held":
            expect_error(out, Conflict, "not_held")
            return
        if approve and e.reversed_any:
            expect_error(out, Conflict, "reversed_while_held")
            return
        self.events[f"held earning {'released' if approve else 'rejected'}"] += 1
        if approve:
            self._credit(m, e.points, tid, now, now)  # credited as of the release (time model 6)
        answer = {
            "transaction_id": tid,
            "customer_id": m.id,
            "status": "released" if approve else "rejected",
            "points": e.points if approve else 0,
            "balance": m.balance,
        }
        check(out == answer, f"review answer {out!r} != {answer}")
        e.review = "released" if approve else "rejected"
        e.review_answer = answer

    def activity(self, aid: str, customer: str, kind: str, now: dt.datetime, out: object) -> None:
        key = (customer, kind)
        if aid in self.activities:
            stored_key, stored = self.activities[aid]
            if stored_key != key:
                expect_error(out, Conflict, "idempotency_conflict")
            else:
                check(out == stored, f"activity replay {out!r} != {stored}")
            return
        m = self.enrol(customer)
        points = self.rules.activities[kind]
        self._credit(m, points, None, now, now)
        answer = {
            "activity_id": aid,
            "customer_id": customer,
            "kind": kind,
            "points": points,
            "balance": m.balance,
        }
        check(out == answer, f"activity answer {out!r} != {answer}")
        self.activities[aid] = (key, answer)

    # -- spending ------------------------------------------------------------------------------------------
    def redeem(
        self, rid: str, customer: str, points: int, reward: str, now: dt.datetime, out: object
    ) -> None:
        if customer not in self.members:
            expect_error(out, NotFound)
            return
        key = (customer, points, reward)
        stored = self.redemptions.get(rid)
        if stored is not None:
            if stored.key != key:
                expect_error(out, Conflict, "idempotency_conflict")
            else:
                check(out == stored.answer, f"redemption replay {out!r} != {stored.answer}")
            return
        if points > self.available(customer, now):
            expect_error(out, InsufficientPoints)
            return
        answer = expect_answer(out)
        m = self.members[customer]
        status = answer.get("status")
        # Due lots go before any points are taken (time model 2); a held redemption takes none yet, so
        # whether its due lots go now or at its release is the ledger's choice (its answer's balance says).
        self._expire_before_debit(m, now, optional=status == "held", answer=answer)
        check(status in ("posted", "held"), f"redemption status {status!r}")
        if status == "held":
            check(
                points >= self.rules.fraud.rapid_redeem_min_points and bool(answer.get("reason")),
                f"a redemption of {points} cannot be held by the rapid earn-and-redeem check: {answer}",
            )
        else:
            self._take(m, points, now)
        expected = {
            "redemption_id": rid,
            "customer_id": customer,
            "points": points,
            "reward": reward,
            "status": status,
            "balance": m.balance,
        }
        if status == "held":
            expected["reason"] = answer.get("reason")
        check(answer == expected, f"redemption answer {answer} != {expected}")
        self.redemptions[rid] = MRedemption(rid, customer, points, key, answer, str(status))

    def review_redemption(self, rid: str, approve: bool, now: dt.datetime, out: object) -> None:
        r = self.redemptions.get(rid)
        if r is None:
            expect_error(out, NotFound)
            return
        m = self.members[r.member]
        if r.review is not None:
            if (r.review == "released") != approve:
                expect_error(out, Conflict)
            else:
                check(out == r.review_answer, f"redemption review replay {out!r} != {r.review_answer}")
            return
        if r.status != "held":
            expect_error(out, Conflict, "not_held")
            return
        self.events[f"held redemption {'released' if approve else 'rejected'}"] += 1
        if approve:
            if r.points > self.available(m.id, now, exclude_redemption=rid):
                expect_error(out, InsufficientPoints)  # it stays held (time model 5)
                return
            self._expire(m, now)
            self._take(m, r.points, now)  # the debit is dated at the release
        answer = {
            "redemption_id": rid,
            "customer_id": m.id,
            "points": r.points,
            "status": "released" if approve else "rejected",
            "balance": m.balance,
        }
        check(out == answer, f"redemption review answer {out!r} != {answer}")
        r.review = "released" if approve else "rejected"
        r.review_answer = answer

    def hold(
        self,
        hid: str,
        customer: str,
        points: int,
        reward: str,
        timeout: int | None,
        now: dt.datetime,
        out: object,
    ) -> None:
        if customer not in self.members:
            expect_error(out, NotFound)
            return
        key = (customer, points, reward, timeout)
        stored = self.holds.get(hid)
        if stored is not None:
            if stored.key != key:
                expect_error(out, Conflict, "idempotency_conflict")
            else:
                check(out == stored.answer, f"hold replay {out!r} != {stored.answer}")
            return
        available = self.available(customer, now)
        if points > available:
            expect_error(out, InsufficientPoints)
            return
        expires = now + (dt.timedelta(seconds=timeout) if timeout else self.rules.hold_timeout)
        answer = {
            "hold_id": hid,
            "customer_id": customer,
            "points": points,
            "status": "active",
            "expires_at": expires.isoformat(),
            "available": available - points,
            "balance": self.members[customer].balance,
        }
        check(out == answer, f"hold answer {out!r} != {answer}")
        self.holds[hid] = MHold(hid, customer, points, key, expires, answer)

    def _timeout_answer(self, h: MHold) -> dict[str, Any]:
        h.status, h.settled_at = "voided", h.expires_at
        h.void_answer = {
            "hold_id": h.id,
            "customer_id": h.member,
            "points": h.points,
            "status": "voided",
            "balance": self.members[h.member].balance,
            "reason": "timeout",
        }
        return h.void_answer

    def capture(self, hid: str, now: dt.datetime, out: object) -> None:
        h = self.holds.get(hid)
        if h is None:
            expect_error(out, NotFound)
            return
        if h.capture_answer is not None:
            check(out == h.capture_answer, f"capture replay {out!r} != {h.capture_answer}")
            return
        if h.status != "active" or now >= h.expires_at:
            self.events["capture refused: " + ("timed out" if h.status == "active" else h.status)] += 1
            expect_error(out, Conflict, "hold_not_active")
            return
        m = self.members[h.member]
        if h.points > self.available(m.id, now, exclude_hold=hid):
            self.events["capture short of points"] += 1
            expect_error(out, InsufficientPoints)
            return
        self._expire(m, now)
        self._take(m, h.points, now)
        h.status, h.settled_at = "captured", now
        h.capture_answer = {
            "hold_id": hid,
            "customer_id": m.id,
            "points": h.points,
            "status": "captured",
            "balance": m.balance,
        }
        check(out == h.capture_answer, f"capture answer {out!r} != {h.capture_answer}")

    def void(self, hid: str, now: dt.datetime, out: object) -> None:
        h = self.holds.get(hid)
        if h is None:
            expect_error(out, NotFound)
            return
        if h.void_answer is not None:  # whoever voided it, the stored answer (time model 4)
            check(out == h.void_answer, f"void replay {out!r} != {h.void_answer}")
            return
        if h.status != "active":
            expect_error(out, Conflict)
            return
        if now >= h.expires_at:
            self.events["void after the timeout"] += 1
            answer = self._timeout_answer(h)
        else:
            h.status, h.settled_at = "voided", now
            h.void_answer = answer = {
                "hold_id": hid,
                "customer_id": h.member,
                "points": h.points,
                "status": "voided",
                "balance": self.members[h.member].balance,
            }
        check(out == answer, f"void answer {out!r} != {answer}")

    def timeout_job(self, now: dt.datetime, out: object) -> None:
        due = sorted(
            (h for h in self.holds.values() if h.status == "active" and h.expires_at <= now),
            key=lambda h: h.id,
        )
        for h in due:
            self.events["hold timed out by the sweep"] += 1
            self._timeout_answer(h)
        check(out == len(due), f"timeout job voided {out!r}, expected {len(due)}")

    # -- claw-backs and expiry -----------------------------------------------------------------------------
    def reverse(self, vid: str, tid: str, amount: Decimal | None, now: dt.datetime, out: object) -> None:
        e = self.earnings.get(tid)
        if e is None:
            expect_error(out, NotFound)
            return
        refund = amount.quantize(CENT) if amount is not None else None
        key = (tid, refund)
        if vid in self.reversals:
            stored_key, stored = self.reversals[vid]
            if stored_key != key:
                expect_error(out, Conflict, "idempotency_conflict")
            else:
                check(out == stored, f"reversal replay {out!r} != {stored}")
            return
        left = e.amount - e.refunded
        if left <= 0:
            expect_error(out, Conflict, "already_reversed")
            return
        if refund is None:
            refund = left
        if refund > left:
            expect_error(out, InvalidInput)
            return
        credited = e.credited
        pts = math.floor(credited * (e.refunded + refund) / e.amount) - math.floor(
            credited * e.refunded / e.amount
        )
        m = self.members[e.member]
        # A claw-back of nothing (a held earning's reversal) need not expire anything.
        self._expire_before_debit(m, now, optional=pts == 0, answer=out)
        taken = self._take(m, min(pts, m.balance), now, first=tid)
        shortfall = pts - taken
        if shortfall:
            self.events["reversal into debt"] += 1
            m.debt += shortfall
            m.moves.append((now, 0, shortfall))
        e.refunded += refund
        e.reversed_any = True
        answer = {
            "reversal_id": vid,
            "transaction_id": tid,
            "customer_id": m.id,
            "amount": str(refund),
            "points_reversed": pts,
            "debt": m.debt,
            "balance": m.balance,
        }
        check(out == answer, f"reversal answer {out!r} != {answer}")
        self.reversals[vid] = (key, answer)

    def expire(self, as_of: dt.datetime, now: dt.datetime, out: object) -> None:
        if as_of > now:
            expect_error(out, InvalidInput)  # expiry never runs past now (time model 3)
            return
        n = pts = 0
        for m in self.members.values():
            a, b = self._expire(m, as_of)
            n += a
            pts += b
        check(out == (n, pts), f"expiry returned {out!r}, expected {(n, pts)}")
