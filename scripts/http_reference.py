"""Writes docs/http.md, the HTTP reference, from the app's own OpenAPI document.

    .venv/bin/python scripts/http_reference.py > docs/http.md

Generated rather than written so it cannot drift: tests/test_docs.py fails when docs/http.md differs from
this script's output. Scopes come from each route's ``serving.api.deps`` dependency (the OpenAPI document only
says that a key is needed), activity kinds and their points from the default rules file.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.routing import APIRoute

from loyalty_core import NO_CONTROL_PATTERN, Settings, load_rules
from serving import create_app

VERBS = ("get", "post", "put", "patch", "delete")
Schema = dict[str, Any]

HEADER = """\
# HTTP reference

Generated from the service's OpenAPI document by `scripts/http_reference.py`
(`.venv/bin/python scripts/http_reference.py > docs/http.md`); `tests/test_docs.py` fails when this file and
the service differ. The same document is served at `/openapi.json`, and browsable at `/docs` (Swagger UI)
and `/redoc`, with their assets served by the service itself.

## Conventions

- **Keys.** Every `/v1` route needs the header `X-API-Key`. Keys carry scopes (`core`, `marketing`,
  `admin`), configured as `LOYALTY_API_KEYS=core:KEY1,marketing:KEY2,admin:KEY3`; an `admin` key is
  admitted everywhere. No key or an unknown key is 401, a key without the route's scope is 403.
- **Bodies** are JSON and strict: unknown fields, booleans for numbers, numeric strings for points, NaN,
  more than two decimals and text with control characters are refused with 422 naming the field.
- **Amounts** are in the currency's units (RUB by default), at most 2 decimals: a JSON number or a string
  of digits (`"1500.00"`). **Points** are integers.
- **Timestamps** are ISO 8601 with an offset (`2024-05-01T10:00:00+03:00`; `Z` for UTC); a timestamp
  without one is refused. Answers give timestamps in UTC.
- **Idempotency.** Every write carries the caller's id (`transaction_id`, `redemption_id`, `reversal_id`,
  `hold_id`, `activity_id`...). A replay of the same body answers the first result again with the header
  `Idempotent-Replayed: true`; the same id with another body is 409.
- **Errors** have one shape, `{"error": {"code": "...", "message": "..."}}`, with the status below; bad
  input is never a 500.
"""


def scopes_of(route: APIRoute) -> tuple[str, ...]:
    """The scopes a route's key dependency admits, read from the closures ``security.require_scope`` and
    ``deps.caller_with_scope`` build (admin is always admitted on top)."""

    def found_in(call: Callable[..., Any] | None, depth: int = 0) -> tuple[str, ...] | None:
        if call is None or depth > 3 or not inspect.isfunction(call):
            return None
        nonlocals = inspect.getclosurevars(call).nonlocals
        if isinstance(nonlocals.get("scopes"), tuple):
            return tuple(nonlocals["scopes"])
        for value in nonlocals.values():
            if callable(value) and (inner := found_in(value, depth + 1)) is not None:
                return inner
        return None

    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if (scopes := found_in(dep.call)) is not None:
            return scopes
        stack.extend(dep.dependencies)
    return ()


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every route of the app, inside included routers too (FastAPI keeps an included router whole, as its
    ``original_router``, and resolves its routes lazily)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (router := getattr(route, "original_router", None)) is not None:
            yield from api_routes(list(router.routes))


def ref_name(schema: Schema) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def type_of(schema: Schema) -> str:
    """A field's type in a few words; a named schema is a link to its table."""
    if (name := ref_name(schema)) is not None:
        return f"[{name}](#{name.lower()})"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        kinds = [o.get("type") for o in options]
        if sorted(k for k in kinds if k) == ["number", "string"]:
            return "decimal (number or string)"
        rendered = [type_of(o) for o in options if o.get("type") != "null"]
        text = " or ".join(rendered)
        return f"{text} or null" if len(rendered) < len(options) else text
    kind = schema.get("type")
    if kind == "array":
        return f"array of {type_of(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {type_of(schema['additionalProperties'])}"
    if kind == "string" and schema.get("format") == "date-time":
        return "timestamp"
    if kind == "string" and schema.get("format"):
        return f"string ({schema['format']})"
    return str(kind or "any")


def bounds_of(schema: Schema) -> str:
    """Limits of a field and of each of its alternatives, in words."""
    parts: list[str] = []

    def visit(s: Schema) -> None:
        if "minLength" in s or "maxLength" in s:
            parts.append(f"length {s.get('minLength', 0)}..{s.get('maxLength', '')}".rstrip("."))
        if "minItems" in s or "maxItems" in s:
            parts.append(f"{s.get('minItems', 0)} to {s.get('maxItems', 'any number of')} items")
        for key, sign in (("exclusiveMinimum", "> "), ("minimum", ">= "), ("maximum", "<= ")):
            if key in s:
                parts.append(f"{sign}{number(s[key])}")
        if "exclusiveMaximum" in s:
            parts.append(f"< {number(s['exclusiveMaximum'])}")
        pattern = s.get("pattern")
        if pattern == NO_CONTROL_PATTERN:
            parts.append("no control characters")
        elif pattern and s.get("type") == "string" and "number" not in {o.get("type") for o in options}:
            parts.append(f"pattern `{pattern}`")
        if "default" in s and s is schema:
            parts.append(f"default `{json.dumps(s['default'])}`")

    options: list[Schema] = list(schema.get("anyOf") or schema.get("oneOf") or [])
    visit(schema)
    for option in options:
        visit(option)
    return "; ".join(dict.fromkeys(parts))


def number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def field_table(schema: Schema) -> Iterator[str]:
    required = set(schema.get("required", []))
    yield "| field | type | required | bounds | meaning |"
    yield "| --- | --- | --- | --- | --- |"
    for name, prop in schema.get("properties", {}).items():
        yield (
            f"| `{name}` | {cell(type_of(prop))} | {'yes' if name in required else 'no'} | "
            f"{cell(bounds_of(prop))} | {cell(prop.get('description', ''))} |"
        )


def body_schema(content: Schema | None) -> Schema | None:
    if not content:
        return None
    media = content.get("content", {}).get("application/json")
    return media.get("schema") if media else None


def render() -> str:
    settings = Settings(database_url="sqlite:///:memory:")
    app = create_app(settings)
    doc = app.openapi()
    schemas: dict[str, Schema] = doc["components"]["schemas"]
    scopes = {
        (method.lower(), route.path): scopes_of(route)
        for route in api_routes(list(app.routes))
        for method in route.methods or ()
    }
    out: list[str] = [HEADER]

    errors: dict[str, str] = {}
    for item in doc["paths"].values():
        for verb in VERBS:
            for code, answer in item.get(verb, {}).get("responses", {}).items():
                if code.startswith(("4", "5")):
                    errors.setdefault(code, answer.get("description", ""))
    out += ["| status | when |", "| --- | --- |"]
    out += [f"| {code} | {cell(text)} |" for code, text in sorted(errors.items())]

    rules = load_rules(settings.rules)
    out += [
        "",
        "## Activity kinds",
        "",
        "`POST /v1/activities` accepts the activity kinds of the rules file in force (`LOYALTY_RULES`); the",
        "default rules (`loyalty_core/default_rules.toml`) give:",
        "",
        "| kind | points |",
        "| --- | ---: |",
    ]
    out += [f"| `{kind}` | {points} |" for kind, points in sorted(rules.activities.items())]

    out += ["", "## Routes", "", "| method and path | scope | summary |", "| --- | --- | --- |"]
    for path, item in doc["paths"].items():
        for verb in VERBS:
            if verb in item:
                anchor = f"{verb}-{path}".lower().translate({ord(c): None for c in "/{}"})
                listed = ", ".join(scopes.get((verb, path), ())) or "none"
                summary = item[verb].get("summary", "")
                out.append(f"| [`{verb.upper()} {path}`](#{anchor}) | {listed} | {summary} |")

    for path, item in doc["paths"].items():
        for verb in VERBS:
            if verb not in item:
                continue
            op = item[verb]
            granted = scopes.get((verb, path), ())
            out += ["", f"### {verb.upper()} {path}", ""]
            who = ", ".join(f"`{s}`" for s in granted) or "none"
            if granted and "admin" not in granted:
                who += " (or `admin`)"
            out.append(f"Scope: {who}.")
            if op.get("description"):
                out += ["", op["description"].strip()]
            params = op.get("parameters", [])
            if params:
                out += [
                    "",
                    "| parameter | in | type | required | bounds |",
                    "| --- | --- | --- | --- | --- |",
                ]
                for p in params:
                    out.append(
                        f"| `{p['name']}` | {p['in']} | {cell(type_of(p['schema']))} | "
                        f"{'yes' if p.get('required') else 'no'} | {cell(bounds_of(p['schema']))} |"
                    )
            if (request := body_schema(op.get("requestBody"))) is not None:
                out += ["", f"Body: {type_of(request)}."]
            responses = op.get("responses", {})
            for code, answer in responses.items():
                if code.startswith("2"):
                    schema = body_schema(answer)
                    shape = type_of(schema) if schema else answer.get("description", "")
                    out += ["", f"Answer {code}: {shape}."]
            failures = [c for c in responses if c.startswith(("4", "5"))]
            if failures:
                out += ["", f"Errors: {', '.join(failures)}."]

    out += ["", "## Schemas"]
    for name, schema in sorted(schemas.items()):
        out += ["", f"### {name}", ""]
        if schema.get("description"):
            out += [cell(schema["description"]), ""]
        if schema.get("properties"):
            out += list(field_table(schema))
        else:
            out.append(f"{type_of(schema)}.")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
