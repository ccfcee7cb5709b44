"""Every request field against the column it lands in, then hostile values against PostgreSQL.

The first test reads the service's own OpenAPI document (what clients are promised) and compares each field
of each route, path and query parameters included, with the table columns it is stored in or looked up
by: a field that admits a longer string or a larger number than its column is a 500 on PostgreSQL waiting
to happen. A new field fails it until someone says where the field lands. The second sends, to every route
on PostgreSQL, NUL characters, strings at and past their limits and numbers at and past theirs: each must
be refused with a 4xx or accepted, never a 500.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient
from sqlalchemy import JSON, Engine, String

from loyalty_core import (
    CUSTOMER_ID_LEN,
    NO_CONTROL_PATTERN,
    OFFER_ID_LEN,
    Activation,
    Decision,
    Entry,
    Hold,
    Line,
    Lot,
    Member,
    Offer,
    OfferEvent,
    OnlineFeature,
    Settings,
    column_length,
    column_max,
    column_type,
    in_transaction,
    make_engine,
    record_decisions,
)
from serving.app import create_app
from tests.serving.conftest import API_KEYS, KEYS, NO_MULTIPLIER_RULE

# Where each request field lands: the columns it is written to or looked up by. ``()`` means the value is
# never stored or compared in SQL (a count, a flag, a choice of algorithm); a timestamp lands in a
# timestamp column, which every representable instant fits.
MEMBER = (Member.id, Entry.member_id, Line.member_id, Lot.member_id)
EXT = (Entry.ext_id,)
FIELD_COLUMNS: dict[tuple[str, str], tuple[Any, ...]] = {
    ("POST /v1/score", "body.customer_ids[]"): (OnlineFeature.customer_id, Member.id),
    ("POST /v1/transactions", "body.transaction_id"): EXT,
    ("POST /v1/transactions", "body.customer_id"): MEMBER,
    ("POST /v1/transactions", "body.type"): (Entry.txn_type,),
    ("POST /v1/transactions", "body.amount"): (Entry.amount,),
    ("POST /v1/transactions", "body.occurred_at"): (Entry.effective_at,),
    ("POST /v1/transactions", "body.category"): (Entry.category,),
    ("POST /v1/transactions", "body.channel"): (Entry.channel,),
    ("POST /v1/transactions", "body.currency"): (Entry.currency,),
    ("POST /v1/transactions/{transaction_id}/reversal", "path.transaction_id"): EXT,
    ("POST /v1/transactions/{transaction_id}/reversal", "body.reversal_id"): EXT,
    ("POST /v1/transactions/{transaction_id}/reversal", "body.amount"): (Entry.amount,),
    ("POST /v1/redemptions", "body.redemption_id"): (*EXT, Hold.id),
    ("POST /v1/redemptions", "body.customer_id"): (*MEMBER, Hold.member_id),
    ("POST /v1/redemptions", "body.points"): (Entry.points, Line.points, Hold.points),
    ("POST /v1/redemptions", "body.reward"): (Hold.reward,),
    ("POST /v1/activities", "body.activity_id"): EXT,
    ("POST /v1/activities", "body.customer_id"): MEMBER,
    ("POST /v1/activities", "body.kind"): (Entry.detail,),
    ("POST /v1/holds", "body.hold_id"): (*EXT, Hold.id),
    ("POST /v1/holds", "body.customer_id"): (*MEMBER, Hold.member_id),
    ("POST /v1/holds", "body.points"): (Entry.points, Line.points, Hold.points),
    ("POST /v1/holds", "body.reward"): (Hold.reward,),
    ("POST /v1/holds", "body.timeout_seconds"): (),
    ("POST /v1/holds/{hold_id}/capture", "path.hold_id"): (*EXT, Hold.id),
    ("POST /v1/holds/{hold_id}/void", "path.hold_id"): (*EXT, Hold.id),
    ("GET /v1/customers/{customer_id}", "path.customer_id"): MEMBER,
    ("GET /v1/customers/{customer_id}/balance", "path.customer_id"): MEMBER,
    ("GET /v1/customers/{customer_id}/balance", "query.as_of"): (Entry.effective_at,),
    ("POST /v1/offers/rank", "body.customer_id"): (Decision.customer_id, Member.id),
    ("POST /v1/offers/rank", "body.k"): (),
    ("POST /v1/offers/rank", "body.channel"): (Decision.channel,),
    ("POST /v1/campaigns", "body.offer_id"): (Decision.offer_id, Offer.id),
    ("POST /v1/campaigns", "body.budget"): (),
    ("POST /v1/campaigns", "body.limit"): (),
    ("POST /v1/campaigns", "body.channel"): (Decision.channel,),
    ("POST /v1/campaigns", "body.rank_by"): (),
    ("POST /v1/feedback", "body.decision_id"): (Decision.id, OfferEvent.decision_id),
    ("POST /v1/feedback", "body.offer_id"): (OfferEvent.offer_id,),
    ("POST /v1/feedback", "body.event"): (OfferEvent.event,),
    ("PUT /v1/offers/{offer_id}", "path.offer_id"): (Offer.id,),
    ("PUT /v1/offers/{offer_id}", "body.name"): (Offer.name,),
    ("PUT /v1/offers/{offer_id}", "body.kind"): (Offer.kind,),
    ("PUT /v1/offers/{offer_id}", "body.multiplier"): (Offer.multiplier,),
    ("PUT /v1/offers/{offer_id}", "body.bonus_points"): (Offer.bonus_points,),
    ("PUT /v1/offers/{offer_id}", "body.threshold"): (Offer.threshold,),
    ("PUT /v1/offers/{offer_id}", "body.categories[]"): (Offer.categories,),
    ("PUT /v1/offers/{offer_id}", "body.txn_types[]"): (Offer.txn_types,),
    ("PUT /v1/offers/{offer_id}", "body.channels[]"): (Offer.channels,),
    ("PUT /v1/offers/{offer_id}", "body.duration_days"): (Offer.duration_days,),
    ("PUT /v1/offers/{offer_id}", "body.cost"): (Offer.cost,),
    ("PUT /v1/offers/{offer_id}", "body.value"): (Offer.value,),
    ("PUT /v1/offers/{offer_id}", "body.min_tier"): (Offer.min_tier,),
    ("PUT /v1/offers/{offer_id}", "body.active"): (Offer.active,),
    ("POST /v1/offers/{offer_id}/activate", "path.offer_id"): (Activation.offer_id, Offer.id),
    ("POST /v1/offers/{offer_id}/activate", "body.customer_id"): (*MEMBER, Activation.member_id),
    ("POST /v1/offers/{offer_id}/activate", "body.decision_id"): (
        Activation.decision_id,
        OfferEvent.decision_id,
        Decision.id,
    ),
    ("POST /v1/admin/postings/{transaction_id}/release", "path.transaction_id"): EXT,
    ("POST /v1/admin/postings/{transaction_id}/reject", "path.transaction_id"): EXT,
    ("POST /v1/admin/redemptions/{redemption_id}/release", "path.redemption_id"): (*EXT, Hold.id),
    ("POST /v1/admin/redemptions/{redemption_id}/reject", "path.redemption_id"): (*EXT, Hold.id),
    ("GET /v1/admin/shadow", "query.since"): (Decision.made_at,),
    ("GET /v1/admin/shadow", "query.limit"): (),
}
# Samples of what no storable string may hold, each beside characters a pattern might otherwise admit.
UNSTORABLE = ("a\x00", "0\x00", "AB\x00", "a\x1f", "a\x7f", "a\x85")


def _app(engine: Engine) -> Any:
    return create_app(
        Settings(
            database_url=engine.url.render_as_string(hide_password=False),
            api_keys=API_KEYS,
            multiplier_file=NO_MULTIPLIER_RULE,
        )
    )


def _leaves(schema: dict[str, Any], components: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The concrete branches of a (possibly optional, possibly ``anyOf``) schema, ``null`` left out."""
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    if "anyOf" in schema:
        for branch in schema["anyOf"]:
            yield from _leaves(branch, components)
    elif schema.get("type") != "null":
        yield schema


def request_fields(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(``METHOD /path``, ``where.name``, leaf schema) for every parameter and body field of every route."""
    components = doc["components"]["schemas"]
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            name = f"{method.upper()} {path}"
            for param in op.get("parameters", []):
                for leaf in _leaves(param["schema"], components):
                    yield name, f"{param['in']}.{param['name']}", leaf
            body = op.get("requestBody")
            if body is None:
                continue
            (top,) = _leaves(body["content"]["application/json"]["schema"], components)
            for field, prop in top["properties"].items():
                for leaf in _leaves(prop, components):
                    if leaf.get("type") == "array":
                        for item in _leaves(leaf["items"], components):
                            yield name, f"body.{field}[]", item
                    else:
                        yield name, f"body.{field}", leaf


def test_every_request_field_fits_the_columns_it_lands_in(engine: Engine) -> None:
    doc = _app(engine).openapi()
    seen: set[tuple[str, str]] = set()
    problems: list[str] = []
    for route, field, leaf in request_fields(doc):
        key = (route, field)
        seen.add(key)
        if key not in FIELD_COLUMNS:
            problems.append(f"{route} {field}: not in FIELD_COLUMNS (say which columns it lands in)")
            continue
        columns = FIELD_COLUMNS[key]
        strings = [c for c in columns if isinstance(column_type(c), String)]
        kind = leaf.get("type")
        where = f"{route} {field}"
        if kind == "string" and "enum" in leaf:
            for value in leaf["enum"]:
                too_long = [c for c in strings if len(value) > column_length(c)]
                problems += [f"{where}: {value!r} is longer than {c}" for c in too_long]
        elif kind == "string" and leaf.get("format") == "date-time":
            continue
        elif kind == "string":
            if "maxLength" not in leaf and (strings or "pattern" not in leaf):
                problems.append(f"{where}: no maxLength")
            else:
                problems += [
                    f"{where}: maxLength {leaf['maxLength']} > {c} ({column_length(c)})"
                    for c in strings
                    if leaf["maxLength"] > column_length(c)
                ]
            pattern = leaf.get("pattern")
            if pattern is None or any(re.search(pattern, s) for s in UNSTORABLE):
                problems.append(f"{where}: its pattern {pattern!r} admits control characters (NUL)")
        elif kind in ("integer", "number"):
            if "maximum" not in leaf:
                problems.append(f"{where}: no maximum")
                continue
            numeric = [c for c in columns if not isinstance(column_type(c), String | JSON)]
            problems += [
                f"{where}: maximum {leaf['maximum']} > {c} ({column_max(c)})"
                for c in numeric
                if leaf["maximum"] > column_max(c)
            ]
    stale = FIELD_COLUMNS.keys() - seen
    problems += [f"{route} {field}: in FIELD_COLUMNS but no such field" for route, field in stale]
    assert not problems, "\n".join(problems)


# --- hostile values against PostgreSQL ---------------------------------------------------------------------

WHEN = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(microsecond=0).isoformat()
LONG_OFFER = "o" * OFFER_ID_LEN

# One valid request per route: (path parameters, query parameters, body).
VALID: dict[str, tuple[dict[str, str], dict[str, str], dict[str, Any] | None]] = {
    "POST /v1/score": ({}, {}, {"customer_ids": ["c-1"]}),
    "POST /v1/transactions": (
        {},
        {},
        {
            "transaction_id": "t-2",
            "customer_id": "c-1",
            "type": "purchase",
            "amount": "100.00",
            "occurred_at": WHEN,
            "category": "grocery",
            "channel": "pos",
            "currency": "RUB",
        },
    ),
    "POST /v1/transactions/{transaction_id}/reversal": (
        {"transaction_id": "t-1"},
        {},
        {"reversal_id": "r-1", "amount": "10.00"},
    ),
    "POST /v1/redemptions": (
        {},
        {},
        {"redemption_id": "x-1", "customer_id": "c-1", "points": 1, "reward": "gift"},
    ),
    "POST /v1/activities": ({}, {}, {"activity_id": "a-1", "customer_id": "c-1", "kind": "social"}),
    "POST /v1/holds": (
        {},
        {},
        {"hold_id": "h-2", "customer_id": "c-1", "points": 1, "reward": "gift", "timeout_seconds": 60},
    ),
    "POST /v1/holds/{hold_id}/capture": ({"hold_id": "h-1"}, {}, None),
    "POST /v1/holds/{hold_id}/void": ({"hold_id": "h-1"}, {}, None),
    "GET /v1/customers/{customer_id}": ({"customer_id": "c-1"}, {}, None),
    "GET /v1/customers/{customer_id}/balance": ({"customer_id": "c-1"}, {"as_of": WHEN}, None),
    "POST /v1/offers/rank": ({}, {}, {"customer_id": "c-1", "k": 1, "channel": "app"}),
    "POST /v1/campaigns": (
        {},
        {},
        {"offer_id": "o-1", "budget": "100.00", "limit": 10, "channel": "app", "rank_by": "value"},
    ),
    "POST /v1/feedback": ({}, {}, {"decision_id": "d-1", "offer_id": "o-1", "event": "shown"}),
    "PUT /v1/offers/{offer_id}": (
        {"offer_id": "o-2"},
        {},
        {
            "name": "Double points",
            "kind": "multiplier",
            "multiplier": "2",
            "bonus_points": 0,
            "threshold": "100.00",
            "categories": ["grocery"],
            "txn_types": ["purchase"],
            "channels": ["app"],
            "duration_days": 14,
            "cost": "10.00",
            "value": "20.00",
            "min_tier": "base",
            "active": True,
        },
    ),
    "POST /v1/offers/{offer_id}/activate": (
        {"offer_id": "o-1"},
        {},
        {"customer_id": "c-1", "decision_id": "d-1"},
    ),
    "POST /v1/admin/postings/{transaction_id}/release": ({"transaction_id": "t-1"}, {}, None),
    "POST /v1/admin/postings/{transaction_id}/reject": ({"transaction_id": "t-1"}, {}, None),
    "POST /v1/admin/redemptions/{redemption_id}/release": ({"redemption_id": "x-1"}, {}, None),
    "POST /v1/admin/redemptions/{redemption_id}/reject": ({"redemption_id": "x-1"}, {}, None),
    "GET /v1/admin/shadow": ({}, {"since": WHEN, "limit": "10"}, None),
}
SCORING = {"POST /v1/score", "POST /v1/offers/rank", "POST /v1/campaigns", "GET /v1/admin/shadow"}


def _variants(leaf: dict[str, Any], columns: tuple[Any, ...]) -> Iterator[tuple[str, Any, bool]]:
    """(label, value, must be refused) for one field: at its limits, past them, and unstorable."""
    kind = leaf.get("type")
    if kind == "string":
        yield "NUL", "a\x00b", True
        free = "enum" not in leaf and leaf.get("pattern") in (None, NO_CONTROL_PATTERN)
        if free and "maxLength" in leaf:
            longest = leaf["maxLength"]
            yield f"{longest} chars", "x" * longest, False
            yield f"{longest} accented chars", "é" * longest, False
            yield f"{longest + 1} chars", "x" * (longest + 1), True
            for c in columns:
                if isinstance(column_type(c), String):  # longer than its column: always refused
                    yield f"{c} + 1 chars", "x" * (column_length(c) + 1), True
    elif kind in ("integer", "number") and "maximum" in leaf:
        top = int(leaf["maximum"]) if kind == "integer" else leaf["maximum"]
        yield f"maximum {top}", top, False
        yield f"maximum {top} + 1", top + 1, True
        for huge in (2**31, 2**63, 10**30):
            if huge > top:
                yield str(huge), huge, True


def _send(client: TestClient, route: str, path: dict[str, str], query: dict[str, Any], body: Any) -> Any:
    method, template = route.split(" ", 1)
    url = template.format(**{k: quote(str(v), safe="") for k, v in path.items()})
    return client.request(method, url, params=query, json=body, headers={"X-API-Key": KEYS["admin"]})


def _world(engine: Engine, client: TestClient) -> None:
    """A customer with points, a held posting (t-1), a hold (h-1), offers and a served decision (d-1)."""
    admin = {"X-API-Key": KEYS["admin"]}
    body = {**VALID["POST /v1/transactions"][2], "transaction_id": "t-1", "amount": "6000000.00"}
    assert client.post("/v1/transactions", json=body, headers=admin).status_code == 200
    body = {**VALID["POST /v1/transactions"][2], "transaction_id": "t-0", "amount": "5000.00"}
    assert client.post("/v1/transactions", json=body, headers=admin).status_code == 200
    hold = {**VALID["POST /v1/holds"][2], "hold_id": "h-1"}
    assert client.post("/v1/holds", json=hold, headers=admin).status_code == 200
    offer = {"kind": "multiplier", "multiplier": "2", "duration_days": 14}
    for oid in ("o-1", LONG_OFFER):
        assert client.put(f"/v1/offers/{oid}", json=offer, headers=admin).status_code == 200
    decision = {
        "id": "d-1",
        "customer_id": "c-1",
        "made_at": dt.datetime.now(dt.UTC),
        "policy": "greedy",
        "offer_id": "o-1",
        "probability": 1.0,
        "served": True,
        "channel": "app",
        "offers": [{"offer_id": "o-1"}],
        "model_versions": {},
    }
    in_transaction(engine, lambda s: record_decisions(s, [decision]))


def test_hostile_values_are_4xx_never_500_on_postgres(pg_engine: Engine) -> None:
    doc = _app(pg_engine).openapi()
    fields: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for route, field, leaf in request_fields(doc):
        fields.setdefault(route, []).append((field, leaf))
    assert fields.keys() <= VALID.keys(), "a route with parameters or a body is missing from VALID"
    failures: list[str] = []
    engine = make_engine(pg_engine.url.render_as_string(hide_password=False))
    try:
        with TestClient(_app(pg_engine), raise_server_exceptions=False) as client:
            _world(engine, client)
            for route, (path, query, body) in VALID.items():
                for field, leaf in fields.get(route, []):
                    where, _, name = field.partition(".")
                    for label, value, refuse in _variants(leaf, FIELD_COLUMNS.get((route, field), ())):
                        p, q = dict(path), dict(query)
                        b = None if body is None else dict(body)
                        if where == "path":
                            p[name] = value
                        elif where == "query":
                            q[name] = value
                        elif name.endswith("[]"):
                            assert b is not None
                            b[name[:-2]] = [value]
                        else:
                            assert b is not None
                            b[name] = value
                        r = _send(client, route, p, q, b)
                        ok = 400 <= r.status_code < 500 if refuse else r.status_code < 500
                        if not ok and not (r.status_code == 503 and route in SCORING and not refuse):
                            failures.append(f"{route} {field}={label}: {r.status_code} {r.text[:160]}")
            # The longest ids the schemas admit, together: the activation's generated key must still fit.
            r = _send(
                client,
                "POST /v1/offers/{offer_id}/activate",
                {"offer_id": LONG_OFFER},
                {},
                {"customer_id": "c" * CUSTOMER_ID_LEN},
            )
            if r.status_code != 200:
                failures.append(f"activation with the longest ids: {r.status_code} {r.text[:160]}")
    finally:
        engine.dispose()
    assert not failures, "\n".join(failures)
