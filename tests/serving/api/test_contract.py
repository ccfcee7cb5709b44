"""The contract's fine print: the amount grammar, exact JSON numbers, marked replays, a body limit that holds
every valid body, activations tied to real decisions, and offers restricted to tiers that exist."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from loyalty_core import Settings, in_transaction, record_decisions
from serving.app import create_app
from tests.serving.conftest import API_KEYS, NO_MULTIPLIER_RULE

Headers = dict[str, dict[str, str]]
REPLAYED = "Idempotent-Replayed"
WHEN = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(microsecond=0).isoformat()


def txn(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "transaction_id": "t-1",
        "customer_id": "c-1",
        "type": "purchase",
        "amount": "1550.00",
        "occurred_at": WHEN,
    }
    return {**body, **overrides}


def raw_post(client: TestClient, url: str, text: str, headers: dict[str, str]) -> Any:
    """A body sent exactly as written: JSON numbers as typed, not as a Python float would print them."""
    return client.post(url, content=text.encode(), headers={**headers, "Content-Type": "application/json"})


def assert_error(response: Any, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, response.text
    if field is not None:
        details = error.get("details")
        fields = [details.get("field")] if isinstance(details, dict) else [d["field"] for d in details or []]
        assert field in fields, response.text


# --- amounts ------------------------------------------------------------------------------------------------

OFF_GRAMMAR = [
    "1_000",
    "\uff11\uff10\uff10\uff10",  # full-width digits
    "\u0661\u0660\u0660\u0660",  # Arabic-Indic digits
    " 1000",
    "1000 ",
    "1000\n",
    "+1000",
    "1e3",
    "1,000",
    "10.",
    ".5",
    "10.005",
    "10.050",
]


def _refused(response: Any, field: str) -> bool:
    """A 422 naming ``field``, as a client reading the error would see it."""
    if response.status_code != 422:
        return False
    details = response.json()["error"].get("details")
    fields = [details.get("field")] if isinstance(details, dict) else [d["field"] for d in details or []]
    return field in fields


def test_amount_strings_outside_the_grammar_are_422_on_every_amount_field(
    client: TestClient, auth: Headers
) -> None:
    admitted = []
    for amount in OFF_GRAMMAR:
        sent = {
            "transaction amount": (
                client.post("/v1/transactions", json=txn(amount=amount), headers=auth["core"]),
                "amount",
            ),
            "reversal amount": (
                client.post(
                    "/v1/transactions/t-1/reversal",
                    json={"reversal_id": "r-1", "amount": amount},
                    headers=auth["core"],
                ),
                "amount",
            ),
            "campaign budget": (
                client.post(
                    "/v1/campaigns", json={"offer_id": "o-1", "budget": amount}, headers=auth["marketing"]
                ),
                "budget",
            ),
        }
        for field in ("cost", "value", "threshold"):
            offer = {"kind": "cashback", "duration_days": 7, field: amount}
            sent[f"offer {field}"] = (client.put("/v1/offers/o-1", json=offer, headers=auth["admin"]), field)
        admitted += [
            f"{where} {amount!r}: {r.status_code}" for where, (r, f) in sent.items() if not _refused(r, f)
        ]
    assert not admitted, "\n".join(admitted)
    assert client.get("/v1/customers/c-1", headers=auth["core"]).status_code == 404  # nothing was posted


def test_json_numbers_are_judged_as_written_not_rounded(client: TestClient, auth: Headers) -> None:
    wrong = []
    for number in ["10.005", "10.0000000000000001", "1550.001", "1E-3", "1550.0000000000000000001"]:
        text = json.dumps(txn(amount="AMOUNT")).replace('"AMOUNT"', number)
        if not _refused(raw_post(client, "/v1/transactions", text, auth["core"]), "amount"):
            wrong.append(f"transaction amount {number} admitted")
        offer = f'{{"kind": "cashback", "duration_days": 7, "cost": {number}}}'
        headers = {**auth["admin"], "Content-Type": "application/json"}
        if not _refused(client.put("/v1/offers/o-1", content=offer.encode(), headers=headers), "cost"):
            wrong.append(f"offer cost {number} admitted")
    for i, number in enumerate(["1550.5", "1550.50", "1.55e3", "1550", "1550.500000"]):
        text = json.dumps(txn(transaction_id=f"t-{i}", amount="AMOUNT")).replace('"AMOUNT"', number)
        r = raw_post(client, "/v1/transactions", text, auth["core"])
        if r.status_code != 200 or r.json()["points"] != 15:
            wrong.append(f"transaction amount {number}: {r.status_code} {r.text[:100]}")
    assert not wrong, "\n".join(wrong)


def test_numbers_and_nesting_the_parser_cannot_hold_are_400(client: TestClient, auth: Headers) -> None:
    huge = '{"redemption_id": "x-1", "customer_id": "c-1", "reward": "gift", "points": ' + "9" * 5000 + "}"
    assert_error(raw_post(client, "/v1/redemptions", huge, auth["core"]), 400, "malformed_json")
    deep = "[" * 5000 + "]" * 5000
    assert_error(raw_post(client, "/v1/redemptions", deep, auth["core"]), 400, "malformed_json")


# --- replays ------------------------------------------------------------------------------------------------


def _twice(client: TestClient, method: str, url: str, headers: dict[str, str], body: Any = None) -> Any:
    first = client.request(method, url, json=body, headers=headers)
    assert first.status_code == 200, f"{method} {url}: {first.text}"
    assert REPLAYED not in first.headers, f"{method} {url}: a first answer marked as a replay"
    again = client.request(method, url, json=body, headers=headers)
    assert again.status_code == 200, f"{method} {url}: {again.text}"
    assert again.headers.get(REPLAYED) == "true", f"{method} {url}: a replay not marked"
    return again.json()


def _decision(engine: Engine, did: str, customer: str, offers: list[str], *, served: bool = True) -> None:
    row = {
        "id": did,
        "customer_id": customer,
        "made_at": dt.datetime.now(dt.UTC),
        "policy": "greedy" if served else "shadow:thompson",
        "offer_id": offers[0] if offers else None,
        "probability": 1.0,
        "served": served,
        "channel": "app",
        "offers": [{"offer_id": o} for o in offers],
        "model_versions": {},
    }
    in_transaction(engine, lambda s: record_decisions(s, [row]))


def test_every_replayed_answer_carries_idempotent_replayed(
    client: TestClient, engine: Engine, auth: Headers
) -> None:
    core, admin = auth["core"], auth["admin"]
    _twice(client, "POST", "/v1/transactions", core, txn(amount="50000.00"))
    redemption = {"redemption_id": "x-1", "customer_id": "c-1", "points": 10, "reward": "gift"}
    _twice(client, "POST", "/v1/redemptions", core, redemption)
    _twice(
        client, "POST", "/v1/activities", core, {"activity_id": "a-1", "customer_id": "c-1", "kind": "social"}
    )
    _twice(client, "POST", "/v1/transactions/t-1/reversal", core, {"reversal_id": "r-1", "amount": "10.00"})
    for hold_id in ("h-1", "h-2"):
        hold = {"hold_id": hold_id, "customer_id": "c-1", "points": 5, "reward": "gift"}
        _twice(client, "POST", "/v1/holds", core, hold)
    _twice(client, "POST", "/v1/holds/h-1/capture", core)
    _twice(client, "POST", "/v1/holds/h-2/void", core)
    for tid, review in (("t-big-1", "release"), ("t-big-2", "reject")):
        held = client.post(
            "/v1/transactions", json=txn(transaction_id=tid, amount="6000000.00"), headers=core
        )
        assert held.json()["status"] == "held", held.text
        _twice(client, "POST", f"/v1/admin/postings/{tid}/{review}", admin)
    offer = {"kind": "multiplier", "multiplier": "2", "duration_days": 14}
    assert client.put("/v1/offers/o-1", json=offer, headers=admin).status_code == 200
    _decision(engine, "d-1", "c-1", ["o-1"])
    activation = _twice(
        client, "POST", "/v1/offers/o-1/activate", core, {"customer_id": "c-1", "decision_id": "d-1"}
    )
    assert activation["decision_id"] == "d-1"
    feedback = _twice(
        client, "POST", "/v1/feedback", core, {"decision_id": "d-1", "offer_id": "o-1", "event": "shown"}
    )
    assert feedback["replayed"] is True


# --- body size ----------------------------------------------------------------------------------------------

ESCAPED_CHAR = 12  # one character outside the BMP, as a client escaping to ASCII sends it: "\ud83d\ude00"


def _largest_json(schema: dict[str, Any], components: dict[str, Any]) -> int:
    """Bytes of the largest compact JSON value ``schema`` admits; fails on an unbounded string or list."""
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    if "anyOf" in schema:
        return max(_largest_json(branch, components) for branch in schema["anyOf"])
    if "enum" in schema:
        return max(len(json.dumps(v)) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        assert schema.get("additionalProperties") is False, f"open object {schema.get('title')}"
        fields = [len(json.dumps(k)) + 1 + _largest_json(v, components) for k, v in props.items()]
        return 2 + sum(fields) + max(0, len(fields) - 1)
    if kind == "array":
        assert "maxItems" in schema, f"unbounded list {schema}"
        return 2 + schema["maxItems"] * (_largest_json(schema["items"], components) + 1)
    if kind == "string":
        if schema.get("format") == "date-time":
            return 2 + 64  # ISO 8601 with nanoseconds and an offset, and room to spare
        if "maxLength" in schema:
            return 2 + ESCAPED_CHAR * schema["maxLength"]
        assert "pattern" in schema, f"unbounded string {schema}"
        return 2 + 64  # the anchored patterns (amounts, currencies) admit a few characters
    if kind in ("integer", "number"):
        return len(str(schema["maximum"])) + 1 + 3  # a sign, and a point with two decimals
    if kind in ("boolean", "null"):
        return 5
    raise AssertionError(f"unexpected schema {schema}")


def test_the_default_body_limit_holds_every_valid_request_body(engine: Engine) -> None:
    settings = Settings(database_url=engine.url.render_as_string(hide_password=False))
    doc = create_app(settings).openapi()
    components = doc["components"]["schemas"]
    largest = {
        f"{method.upper()} {path}": _largest_json(
            op["requestBody"]["content"]["application/json"]["schema"], components
        )
        for path, operations in doc["paths"].items()
        for method, op in operations.items()
        if "requestBody" in op
    }
    assert largest["POST /v1/score"] > 700_000  # 1000 ids of 64 escaped characters
    too_large = {route: size for route, size in largest.items() if size > settings.max_body_bytes}
    assert not too_large, f"valid bodies over the {settings.max_body_bytes}-byte limit: {too_large}"


@pytest.fixture
def default_client(engine: Engine) -> Iterator[TestClient]:
    """The service with the default body limit (the ``client`` fixture runs with a small one)."""
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(Settings(database_url=url, api_keys=API_KEYS, multiplier_file=NO_MULTIPLIER_RULE))
    with TestClient(app) as client:
        yield client


def test_the_largest_valid_score_body_passes_the_body_limit(
    default_client: TestClient, auth: Headers
) -> None:
    ids = [f"{i:04d}" + "\U0001f600" * 60 for i in range(1000)]
    body = json.dumps({"customer_ids": ids}).encode()  # ASCII-escaped: 12 bytes per emoji
    assert len(body) > 700_000
    r = default_client.post(
        "/v1/score", content=body, headers={**auth["core"], "Content-Type": "application/json"}
    )
    # Past the limit and the schema: the empty registry of these tests has no model to score with.
    assert_error(r, 503, "model_unavailable")


# --- activations and their decisions -----------------------------------------------------------------------


def test_activation_decision_must_be_a_served_choice_of_this_offer_for_this_customer(
    client: TestClient, engine: Engine, auth: Headers
) -> None:
    offer = {"kind": "multiplier", "multiplier": "2", "duration_days": 14}
    for oid in ("o-1", "o-2"):
        assert client.put(f"/v1/offers/{oid}", json=offer, headers=auth["admin"]).status_code == 200
    assert client.post("/v1/transactions", json=txn(), headers=auth["core"]).status_code == 200
    _decision(engine, "d-mine", "c-1", ["o-1", "o-2"])
    _decision(engine, "d-other", "c-2", ["o-1"])
    _decision(engine, "d-shadow", "c-1", ["o-1"], served=False)
    _decision(engine, "d-o2", "c-1", ["o-2"])

    def activate(decision_id: str) -> Any:
        body = {"customer_id": "c-1", "decision_id": decision_id}
        return client.post("/v1/offers/o-1/activate", json=body, headers=auth["core"])

    assert_error(activate("d-missing"), 404, "unknown_decision")
    assert_error(activate("d-other"), 409, "decision_mismatch")
    assert_error(activate("d-shadow"), 409, "not_served")
    assert_error(activate("d-o2"), 422, "not_offered")
    assert client.get("/v1/customers/c-1", headers=auth["core"]).json()["active_offers"] == []
    ok = activate("d-mine")
    assert ok.status_code == 200, ok.text
    assert ok.json()["decision_id"] == "d-mine"


def test_offers_name_only_tiers_the_rules_know(client: TestClient, auth: Headers) -> None:
    offer = {"kind": "multiplier", "multiplier": "2", "duration_days": 14}
    assert_error(
        client.put("/v1/offers/o-1", json={**offer, "min_tier": "platinum"}, headers=auth["admin"]),
        422,
        "unknown_tier",
        "min_tier",
    )
    assert client.get("/v1/offers", headers=auth["marketing"]).json() == []
    r = client.put("/v1/offers/o-1", json={**offer, "min_tier": "gold"}, headers=auth["admin"])
    assert r.status_code == 200, r.text
    assert r.json()["min_tier"] == "gold"
