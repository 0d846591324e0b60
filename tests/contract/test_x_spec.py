"""X's OpenAPI document (``../shared/specs/x/openapi.json``) against what the product sends and what the emulator
enforces: every X endpoint, method, query parameter, field and expansion value the connector uses exists there;
the scopes we request cover each endpoint's; the emulator's hand-written tables equal the spec's enums."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from bridge.domain import OutboundMessage, Platform
from bridge.sandbox import x_rules
from bridge.sandbox.x import BRAND_ID, XEmulator
from connectors.x import convert, oauth
from connectors.x.connector import XConnector

# ``../shared/specs`` beside the checkout (a git worktree sits one level deeper)
SPEC = next(
    (
        p / "shared" / "specs" / "x" / "openapi.json"
        for p in Path(__file__).resolve().parents[3:5]
        if (p / "shared" / "specs" / "x" / "openapi.json").exists()
    ),
    Path(__file__).resolve().parents[3] / "shared" / "specs" / "x" / "openapi.json",
)
pytestmark = pytest.mark.skipif(
    not SPEC.exists(), reason=f"X's OpenAPI spec not found at {SPEC} (../shared/specs is present under CI)"
)
CUSTOMER = "1290011223344556677"
Sent = list[tuple[str, str, list[tuple[str, str]]]]


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return dict(json.loads(SPEC.read_text(encoding="utf-8")))


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def operation(spec: dict[str, Any], method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The spec's path template matching a concrete path (literal segments preferred), and its operation."""
    candidates = []
    for template in spec["paths"]:
        pattern = "^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            candidates.append((template.count("{"), template))
    assert candidates, f"{method} {path} is not an X API endpoint in the spec"
    template = min(candidates)[1]
    op = spec["paths"][template].get(method.lower())
    assert op is not None, f"{method} is not allowed on {template}"
    return template, op


def parameters(spec: dict[str, Any], op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in (resolve(spec, p) for p in op.get("parameters", []))}


def enum_of(spec: dict[str, Any], param: dict[str, Any]) -> set[str] | None:
    schema = resolve(spec, param.get("schema", {}))
    items = resolve(spec, schema["items"]) if "items" in schema else schema
    return set(items["enum"]) if "enum" in items else None


@pytest.fixture(scope="module")
def sent() -> Iterator[Sent]:
    """Every request the X connector makes in a poll (with a backlog and a user lookup), a send and a
    verify-before-resend, recorded as it went on the wire."""
    x = XEmulator()
    x.start()
    x.add_user(CUSTOMER, "maria_l", "Maria López")
    records: Sent = []
    c = XConnector(
        base_url=x.api_url,
        consumer_key=x.consumer_key,
        consumer_secret=x.consumer_secret,
        access_token=x.access_token,
        access_token_secret=x.access_token_secret,
    )
    original = c.client.session.request

    def recording(method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        resp: requests.Response = original(method, url, *args, **kwargs)
        assert resp.request.url is not None
        parts = urlsplit(resp.request.url)
        records.append((str(resp.request.method), parts.path, parse_qsl(parts.query)))
        return resp

    c.client.session.request = recording  # type: ignore[method-assign]
    try:
        c.start()
        cursor = c.poll(None).cursor
        x.customer_sends(CUSTOMER, "hello")
        x.brand_sends_from_app(CUSTOMER, "from the app")
        c.poll(cursor)
        x.add_user("1290011223344558888", "lone", "Lone Person")
        x.brand_sends_from_app("1290011223344558888", "only we spoke")
        c.poll(cursor)  # a conversation where only the brand spoke: the customer is looked up
        message = OutboundMessage(
            platform=Platform.X,
            account="acme_help",
            conversation=convert.conversation_id(CUSTOMER, BRAND_ID),
            text="answer",
            recipient_id=CUSTOMER,
        )
        c.send(message)
        c.find_sent(message, since=0.0, known=set())
        yield records
    finally:
        x.stop()


def test_every_request_the_connector_makes_is_in_the_spec(spec: dict[str, Any], sent: Sent) -> None:
    used = {(m, p) for m, p, _ in sent}
    assert {("GET", "/2/users/me"), ("GET", "/2/dm_events"), ("GET", "/2/users")} <= used
    for method, path, query in sent:
        template, op = operation(spec, method, path)
        params = parameters(spec, op)
        for name, value in query:
            assert name in params and params[name]["in"] == "query", f"{template}: no query parameter {name}"
            enum = enum_of(spec, params[name])
            if enum is not None:
                assert set(value.split(",")) <= enum, f"{template} {name}: {set(value.split(',')) - enum}"
            if name == "ids":
                schema = resolve(spec, params[name]["schema"])
                assert len(value.split(",")) <= schema["maxItems"]
            if name == "max_results":
                schema = resolve(spec, params[name]["schema"])
                assert schema["minimum"] <= int(value) <= schema["maximum"]


def test_the_scopes_we_request_cover_every_endpoint_we_call(spec: dict[str, Any], sent: Sent) -> None:
    scheme = spec["components"]["securitySchemes"]["OAuth2UserToken"]["flows"]["authorizationCode"]
    assert set(oauth.SCOPES) <= set(scheme["scopes"])
    assert scheme["tokenUrl"] == oauth.TOKEN_URL
    for method, path, _ in sent:
        template, op = operation(spec, method, path)
        needed = {s for req in op.get("security", []) for s in req.get("OAuth2UserToken", [])}
        assert needed <= set(oauth.SCOPES), f"{method} {template} needs {needed - set(oauth.SCOPES)}"


def test_the_connector_field_lists_are_spec_values(spec: dict[str, Any]) -> None:
    params = parameters(spec, spec["paths"]["/2/dm_events"]["get"])
    assert set(convert.DM_EVENT_FIELDS) <= (enum_of(spec, params["dm_event.fields"]) or set())
    assert set(convert.EXPANSIONS) <= (enum_of(spec, params["expansions"]) or set())
    users = parameters(spec, spec["paths"]["/2/users"]["get"])
    assert set(convert.USER_FIELDS) <= (enum_of(spec, users["user.fields"]) or set())


def test_the_emulator_rules_are_the_spec_enums(spec: dict[str, Any]) -> None:
    """The emulator encodes the spec by hand (it never reads the file): the tables must equal it."""
    for endpoint, allowed in x_rules.QUERY.items():
        path = spec["paths"][endpoint]
        op = path["get"] if "get" in path else path["post"]
        params = {n: p for n, p in parameters(spec, op).items() if p["in"] == "query"}
        assert set(allowed) == set(params), endpoint
        for name, values in allowed.items():
            assert values == (frozenset(enum_of(spec, params[name]) or ()) or None), f"{endpoint} {name}"
    users = resolve(spec, parameters(spec, spec["paths"]["/2/users"]["get"])["ids"]["schema"])
    assert users["maxItems"] == x_rules.MAX_IDS
    scheme = spec["components"]["securitySchemes"]["OAuth2UserToken"]["flows"]["authorizationCode"]
    assert set(scheme["scopes"]) == x_rules.OAUTH2_SCOPES
