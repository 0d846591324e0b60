"""X Chat (``connectors/xchat``) and the X emulator's Chat API against X's OpenAPI document
(``../shared/specs/x/openapi.json``): every request of a realistic flow — identity registration, start, two
reconciliation passes, opening sealed events, a reply into a conversation the customer started and a first
message into one the brand starts, a verify-before-resend and a profile — is an operation of the spec, with
its query parameters, path ids and JSON bodies inside the spec's schemas (no field X does not define); the
scopes we request cover each endpoint's; and the emulator refuses over HTTP what X refuses."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import jsonschema
import pytest
import requests

from bridge import x_chat_keys
from bridge.domain import OutboundFile, OutboundMessage, Platform
from bridge.sandbox import x_chat_api, x_chat_media
from bridge.sandbox.x import BRAND_ID, XEmulator
from bridge.store import migrate
from bridge.store.db import Database
from connectors.x import oauth
from connectors.xchat import convert
from connectors.xchat.api import ChatApi
from connectors.xchat.connector import XChatConnector
from tests.contract.test_x_spec import SPEC, enum_of, operation, parameters, resolve
from tests.unit.test_xchat_media import png

pytestmark = pytest.mark.skipif(
    not SPEC.exists(), reason=f"X's OpenAPI spec not found at {SPEC} (../shared/specs is present under CI)"
)
MARIA, JDOE, LEE = "1290011223344556677", "1290011223344558888", "1290011223344559999"
CHAT_ID = "/2/chat/conversations/{id}"


@dataclass(frozen=True)
class Call:
    """One request as it went on the wire, and the emulator's answer."""

    method: str
    path: str
    query: list[tuple[str, str]]
    body: Any  # the JSON body, None without one
    content_type: str
    status: int


@dataclass
class Flow:
    calls: list[Call]
    x: XEmulator


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return dict(json.loads(SPEC.read_text(encoding="utf-8")))


def schema_of(spec: dict[str, Any], node: dict[str, Any], *, strict: bool, depth: int = 0) -> dict[str, Any]:
    """``node`` with every ``$ref`` inlined, as JSON Schema. ``strict``: objects with ``properties`` take no
    other property (``additionalProperties: false``, X refuses unknown fields), at every depth."""
    assert depth < 32, "schema nested too deeply (a recursive $ref?)"
    node = resolve(spec, node)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties"):
            out[key] = {k: schema_of(spec, v, strict=strict, depth=depth + 1) for k, v in value.items()}
        elif key in ("items", "not") or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = schema_of(spec, value, strict=strict, depth=depth + 1)
        elif key in ("allOf", "oneOf", "anyOf"):  # a branch sees only its own properties: never closed
            out[key] = [schema_of(spec, v, strict=strict and key != "allOf", depth=depth + 1) for v in value]
        elif key not in ("discriminator", "example", "nullable", "description", "format"):
            out[key] = value
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if strict and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def request_schema(spec: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    body = resolve(spec, op["requestBody"])
    assert "application/json" in body["content"], f"{op['operationId']} takes no JSON body"
    return schema_of(spec, body["content"]["application/json"]["schema"], strict=True)


def body_errors(spec: dict[str, Any], op: dict[str, Any], body: Any) -> list[str]:
    validator = jsonschema.Draft7Validator(request_schema(spec, op))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in validator.iter_errors(body)]


def path_values(template: str, path: str) -> dict[str, str]:
    pattern = re.sub(r"\\\{([^/]+?)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    found = re.fullmatch(pattern, path)
    assert found is not None, f"{path} is not {template}"
    return found.groupdict()


def all_parameters(spec: dict[str, Any], template: str, op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The operation's parameters and its path item's (the operation's win)."""
    shared = parameters(spec, {"parameters": spec["paths"][template].get("parameters", [])})
    return shared | parameters(spec, op)


def recorded(calls: list[Call], session: requests.Session) -> None:
    """Record every request the session makes, as sent."""
    original = session.request

    def recording(method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        resp: requests.Response = original(method, url, *args, **kwargs)
        sent = resp.request
        assert sent.url is not None
        parts = urlsplit(str(sent.url))
        raw = sent.body
        body = json.loads(raw) if raw else None
        kind = str(sent.headers.get("Content-Type", ""))
        calls.append(
            Call(
                str(sent.method),
                parts.path,
                parse_qsl(parts.query, keep_blank_values=True),
                body,
                kind,
                resp.status_code,
            )
        )
        return resp

    session.request = recording  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    x = XEmulator()
    x.start()
    try:
        db = Database(f"sqlite:///{tmp_path_factory.mktemp('xchat') / 'bridge.db'}")
        migrate.upgrade(db)
        secret = x_chat_keys.new_secret_key()
        api = ChatApi(x.api_url, user_bearer_token=x.user_bearer_token)
        calls: list[Call] = []
        recorded(calls, api.client.session)
        assert x_chat_keys.setup(db, api, secret).ok  # POST /2/users/{id}/public_keys
        conn = XChatConnector(api, lambda: x_chat_keys.load(db, secret))
        conn.start()
        for user, username, name in ((MARIA, "maria_l", "Maria López"), (JDOE, "jdoe", "J Doe"), (LEE, "lee", "Lee")):
            x.add_chat_customer(user, username, name)
        cursor = conn.poll(None).cursor
        x.customer_chats(MARIA, "Hola, ¿tienen talla M?")
        x.customer_chats(JDOE, "Do you ship to Canada?")
        batch = conn.poll(cursor)
        opened = conn.open(list(batch.sealed))  # key reads: the conversations' key events and public keys
        texts = {o.message.text for o in opened if o.message is not None}
        assert texts == {"Hola, ¿tienen talla M?", "Do you ship to Canada?"}
        replies = []
        for customer, text in ((MARIA, "¡Sí!"), (LEE, "We start this one")):  # LEE never wrote: brand's keys
            message = OutboundMessage(
                platform=Platform.X,
                account=conn.account,
                conversation=str(convert.canonical(customer, BRAND_ID)),
                recipient_id=customer,
                text=text,
                via="xchat",
            )
            replies.append(conn.send(message))
            assert x.chat_received_by(customer) == [text]
        assert conn.find_sent(message, since=0.0, known=set()) == replies[-1]
        assert conn.profile(conn.account, MARIA).name == "Maria López"
        photo = png(40, 30)  # media: a customer's encrypted photo read, and an agent's file sent
        x.customer_sends_file(MARIA, photo, "photo.png", "image", "una foto")
        opened = conn.open(list(conn.poll(batch.cursor).sealed))
        (file,) = [f for o in opened if o.message is not None for f in o.message.files]
        sink = io.BytesIO()
        assert conn.fetch_file(conn.account, str(convert.canonical(MARIA, BRAND_ID)), file.url, sink, 10**7) > 0
        assert sink.getvalue() == photo
        path = tmp_path_factory.mktemp("files") / "manual.pdf"
        path.write_bytes(b"%PDF-1.4 the manual")
        agents = OutboundFile(name="manual.pdf", kind="file", content_type="application/pdf", size=19, path=str(path))
        conn.send(
            dataclasses.replace(message, conversation=str(convert.canonical(JDOE, BRAND_ID)), text="", file=agents)
        )
        assert x.chat_files_received_by(JDOE) == [("manual.pdf", b"%PDF-1.4 the manual")]
        yield Flow(calls, x)
    finally:
        x.stop()


def templates(spec: dict[str, Any], calls: list[Call]) -> list[tuple[str, str]]:
    return [(c.method, operation(spec, c.method, c.path)[0]) for c in calls]


def test_the_flow_makes_every_kind_of_chat_request(spec: dict[str, Any], flow: Flow) -> None:
    made = templates(spec, flow.calls)
    assert set(made) == {
        ("GET", "/2/users/me"),
        ("POST", "/2/users/{id}/public_keys"),
        ("GET", "/2/users/{id}/public_keys"),
        ("GET", "/2/users/{id}"),
        ("GET", "/2/chat/conversations"),
        ("GET", f"{CHAT_ID}/events"),
        ("POST", f"{CHAT_ID}/keys"),
        ("POST", f"{CHAT_ID}/messages"),
        ("POST", "/2/chat/media/upload/initialize"),
        ("POST", "/2/chat/media/upload/{id}/append"),
        ("POST", "/2/chat/media/upload/{id}/finalize"),
        ("GET", "/2/chat/media/{id}/{media_hash_key}"),
    }
    assert made.count(("POST", f"{CHAT_ID}/messages")) == 3 and made.count(("POST", f"{CHAT_ID}/keys")) == 1
    keys = next(c for c in flow.calls if c.path.endswith("/keys"))
    assert LEE in keys.path  # the brand set up the keys of the conversation it starts, not of MARIA's
    refused = [(c.method, c.path, c.status) for c in flow.calls if c.status >= 300]
    assert not refused, refused


def test_every_request_is_an_operation_of_the_spec_with_its_parameters(spec: dict[str, Any], flow: Flow) -> None:
    for call in flow.calls:
        template, op = operation(spec, call.method, call.path)
        params = all_parameters(spec, template, op)
        for name, value in path_values(template, call.path).items():
            assert name in params and params[name]["in"] == "path", f"{template}: no path parameter {name}"
            pattern = resolve(spec, params[name]["schema"]).get("pattern")
            if pattern is not None:
                assert re.search(pattern, value), f"{call.method} {call.path}: {name}={value!r} is not {pattern}"
        sent = dict(call.query)
        assert len(sent) == len(call.query), f"{template}: a query parameter sent twice"
        for name, param in params.items():
            if param["in"] == "query" and param.get("required"):
                assert name in sent, f"{template}: required query parameter {name} not sent"
        for name, value in call.query:
            assert name in params and params[name]["in"] == "query", f"{template}: no query parameter {name}"
            schema = resolve(spec, params[name]["schema"])
            enum = enum_of(spec, params[name])
            if enum is not None:
                values = value.split(",") if schema.get("type") == "array" else [value]
                assert set(values) <= enum, f"{template} {name}: {set(values) - enum}"
            if schema.get("type") == "integer":
                assert schema.get("minimum", -(2**63)) <= int(value) <= schema.get("maximum", 2**63), (template, name)


def test_every_body_validates_against_the_operations_request_schema(spec: dict[str, Any], flow: Flow) -> None:
    bodies = 0
    for call in flow.calls:
        template, op = operation(spec, call.method, call.path)
        if "requestBody" not in op:
            assert call.body is None, f"{call.method} {template} takes no body"
            continue
        assert call.body is not None or not resolve(spec, op["requestBody"]).get("required"), f"{template}: no body"
        assert call.content_type.split(";")[0] == "application/json", f"{template}: sent as {call.content_type}"
        errors = body_errors(spec, op, call.body)
        assert not errors, f"{call.method} {template}: {errors}"
        bodies += 1
    assert bodies == 8  # the registration, one key change, three messages, initialize, one append, finalize


def sig(body: dict[str, Any]) -> dict[str, Any]:
    """The ``message_event_signature`` of a keys body's action."""
    found: dict[str, Any] = body["action_signatures"][0]["message_event_signature"]
    return found


def test_the_strict_schema_refuses_unknown_fields_at_any_depth(spec: dict[str, Any], flow: Flow) -> None:
    """The check above is not vacuous: the keys body X would refuse is refused, down to nested objects."""
    keys = next(c for c in flow.calls if c.path.endswith("/keys"))
    _, op = operation(spec, "POST", keys.path)
    signature: tuple[Any, ...] = ("action_signatures", 0, "message_event_signature")
    for change, where, wanted in (
        (lambda b: b.update(extra=1), (), "additional properties"),
        (
            lambda b: b["conversation_participant_keys"][0].update(extra=1),
            ("conversation_participant_keys", 0),
            "additional properties",
        ),
        (lambda b: sig(b).update(extra=1), signature, "additional properties"),
        (lambda b: sig(b).pop("signature_version"), signature, "required"),
        (lambda b: sig(b).update(signature="a b"), (*signature, "signature"), "does not match"),
        (lambda b: b["action_signatures"][0].update(message_id=""), ("action_signatures", 0, "message_id"), "empty"),
        (lambda b: b.pop("conversation_key_version"), (), "required"),
    ):
        body = copy.deepcopy(keys.body)
        change(body)
        at = "/".join(map(str, where)) or "(body)"
        errors = body_errors(spec, op, body)
        assert any(e.startswith(at + ":") and wanted in e.lower() for e in errors), (at, wanted, errors)


def test_the_scopes_we_request_cover_every_chat_endpoint(spec: dict[str, Any], flow: Flow) -> None:
    scheme = spec["components"]["securitySchemes"]["OAuth2UserToken"]["flows"]["authorizationCode"]
    assert set(oauth.SCOPES) <= set(scheme["scopes"])
    for method, template in set(templates(spec, flow.calls)):
        op = spec["paths"][template][method.lower()]
        needed = {s for req in op.get("security", []) for s in req.get("OAuth2UserToken", [])}
        assert needed, f"{method} {template} takes no OAuth 2.0 user token"
        assert needed <= set(oauth.SCOPES), f"{method} {template} needs {needed - set(oauth.SCOPES)}"


def test_the_emulator_body_tables_are_the_spec_schemas(spec: dict[str, Any]) -> None:
    """The emulator checks bodies with hand-written field sets (it never reads the file): they must equal it."""

    def props(name: str) -> set[str]:
        return set(spec["components"]["schemas"][name]["properties"])

    assert props("SendChatMessageRequest") == x_chat_api.MESSAGE_BODY
    assert props("AddConversationKeysRequest") == x_chat_api.KEYS_BODY
    assert props("AddConversationKeysActionSignatures") == x_chat_api.ACTION
    assert props("AddConversationKeysConversationParticipantKeys") == x_chat_api.PARTICIPANT_KEY
    assert props("AddConversationKeysActionSignaturesMessageEventSignature") == x_chat_api.SIGNATURE
    assert props("AddUserPublicKeyRequest") == x_chat_api.REGISTRATION
    assert props("AddUserPublicKeyPublicKey") == x_chat_api.PUBLIC_KEY
    assert props("ChatMediaUploadInitializeRequest") == x_chat_media.INITIALIZE
    assert props("ChatMediaUploadAppendRequest") == x_chat_media.APPEND
    assert props("ChatMediaUploadFinalizeRequest") == x_chat_media.FINALIZE
    download = parameters(spec, spec["paths"]["/2/chat/media/{id}/{media_hash_key}"]["get"])
    assert resolve(spec, download["id"]["schema"])["pattern"] == x_chat_media.PATH_ID
    assert resolve(spec, download["media_hash_key"]["schema"])["pattern"] == x_chat_media.MEDIA_HASH_KEY
    finalize = parameters(spec, spec["paths"]["/2/chat/media/upload/{id}/finalize"]["post"])
    assert resolve(spec, finalize["id"]["schema"])["pattern"] == x_chat_media.SESSION_ID
    for suffix in ("/events", "/keys", "/messages"):
        path = spec["paths"][CHAT_ID + suffix]
        op = path.get("get") or path["post"]
        assert resolve(spec, parameters(spec, op)["id"]["schema"])["pattern"] == x_chat_api.PATH_ID


# ---------------------------------------------------------------------------- the emulator refuses what X refuses


def call(flow: Flow, method: str, path: str, body: Any = None, **query: Any) -> httpx.Response:
    return httpx.request(
        method,
        flow.x.api_url.rstrip("/") + path,
        params=query,
        json=body,
        headers={"Authorization": f"Bearer {flow.x.user_bearer_token}"},
        timeout=30,
    )


def invalid_request(spec: dict[str, Any], resp: httpx.Response) -> None:
    """A 400 with X's invalid-request problem document (the spec's ``Problem``)."""
    assert resp.status_code == 400, (resp.status_code, resp.text)
    problem = resp.json()
    jsonschema.validate(problem, schema_of(spec, {"$ref": "#/components/schemas/Problem"}, strict=False))
    assert problem["type"] == "https://api.x.com/2/problems/invalid-request"


def sent_body(flow: Flow, suffix: str, conversation_of: str) -> tuple[str, dict[str, Any]]:
    """The path and a copy of the body of a request the connector made (and the emulator took)."""
    found = next(c for c in flow.calls if c.path.endswith(suffix) and conversation_of in c.path and c.body)
    return found.path, copy.deepcopy(found.body)


def test_a_message_with_an_unknown_field_is_refused(spec: dict[str, Any], flow: Flow) -> None:
    path, body = sent_body(flow, "/messages", MARIA)
    assert call(flow, "POST", path, body).status_code == 201  # the same message again: accepted, not sent twice
    invalid_request(spec, call(flow, "POST", path, body | {"text": "in the clear"}))
    assert flow.x.chat_received_by(MARIA) == ["¡Sí!"]


def test_a_message_whose_event_is_not_base64_is_refused(spec: dict[str, Any], flow: Flow) -> None:
    path, body = sent_body(flow, "/messages", MARIA)
    for bad in ("%%% not base64 %%%", "Q", "", "AAAA AAAA"):
        invalid_request(spec, call(flow, "POST", path, body | {"encoded_message_create_event": bad}))


KEY_CHANGES_X_REFUSES: dict[str, Callable[[dict[str, Any]], object]] = {
    "no-action-signatures": lambda b: b.pop("action_signatures"),
    "empty-action-signatures": lambda b: b.update(action_signatures=[]),
    "unknown-field": lambda b: b.update(extra=1),
    "unknown-participant-key-field": lambda b: b["conversation_participant_keys"][0].update(extra=1),
    "unknown-action-field": lambda b: b["action_signatures"][0].update(extra=1),
    "unknown-signature-field": lambda b: sig(b).update(extra=1),
    "key-version-off-pattern": lambda b: sig(b).update(public_key_version="v1"),
    "signature-off-pattern": lambda b: sig(b).update(signature="not base64!"),
    "detail-not-base64": lambda b: b["action_signatures"][0].update(encoded_message_event_detail="%%%"),
}


@pytest.mark.parametrize("change", KEY_CHANGES_X_REFUSES.values(), ids=KEY_CHANGES_X_REFUSES.keys())
def test_a_key_change_x_would_refuse_is_refused(spec: dict[str, Any], flow: Flow, change: Any) -> None:
    path, body = sent_body(flow, "/keys", LEE)
    change(body)
    invalid_request(spec, call(flow, "POST", path, body))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/2/chat/conversations/abc/events"),
        ("GET", "/2/chat/conversations/1:2/events"),
        ("POST", "/2/chat/conversations/abc/messages"),
        ("POST", "/2/chat/conversations/1:2/messages"),
        ("POST", "/2/chat/conversations/abc/keys"),
        ("POST", "/2/chat/conversations/1:2/keys"),
        ("GET", "/2/users/abc/public_keys"),
        ("POST", "/2/users/1:2/public_keys"),
        ("GET", "/2/users/abc"),
    ],
)
def test_a_path_id_off_the_spec_pattern_is_refused(spec: dict[str, Any], flow: Flow, method: str, path: str) -> None:
    template, op = operation(spec, method, path)
    ids = path_values(template, path)
    pattern = resolve(spec, parameters(spec, op)["id"]["schema"])["pattern"]
    assert not re.search(pattern, ids["id"])  # X refuses this id
    suffix = template.rsplit("}", 1)[1]
    body = sent_body(flow, suffix, "")[1] if method == "POST" else None  # a body X would take
    resp = call(flow, method, path, body)
    assert resp.status_code in (400, 404), (resp.status_code, resp.text)
    if resp.status_code == 400:
        invalid_request(spec, resp)


@pytest.mark.parametrize("size", [0, 101, "ten"])
@pytest.mark.parametrize("path", ["/2/chat/conversations", f"/2/chat/conversations/{MARIA}-{BRAND_ID}/events"])
def test_max_results_outside_1_to_100_is_refused(spec: dict[str, Any], flow: Flow, path: str, size: Any) -> None:
    assert call(flow, "GET", path, max_results=100).status_code == 200
    invalid_request(spec, call(flow, "GET", path, max_results=size))


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("GET", "/2/chat/conversations", {"since": "2026-01-01"}),
        ("GET", f"/2/chat/conversations/{MARIA}-{BRAND_ID}/events", {"dm_event.fields": "text"}),
        ("GET", f"/2/chat/conversations/{MARIA}-{BRAND_ID}/events", {"chat_message_event.fields": "text"}),
        ("GET", f"/2/users/{MARIA}/public_keys", {"public_key.fields": "private_key"}),
        ("GET", f"/2/users/{MARIA}/public_keys", {"max_results": "10"}),
        ("POST", f"/2/chat/conversations/{MARIA}-{BRAND_ID}/messages", {"dry_run": "true"}),
    ],
)
def test_an_unknown_query_parameter_or_value_is_refused(
    spec: dict[str, Any], flow: Flow, method: str, path: str, query: dict[str, str]
) -> None:
    _, op = operation(spec, method, path)
    (name, value), params = next(iter(query.items())), parameters(spec, op)
    assert name not in params or value not in (enum_of(spec, params[name]) or {value})  # X refuses it
    body = sent_body(flow, "/messages", MARIA)[1] if method == "POST" else None
    invalid_request(spec, call(flow, method, path, body, **query))
