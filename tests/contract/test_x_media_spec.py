"""X's OpenAPI document against the legacy connector's media requests: the poll's media expansion and fields, the DM
media download, the chunked upload (initialize, append, finalize, status) and the DM with an attachment — every
path, path value, query parameter and body (JSON, and the multipart append's fields) is what the spec allows, the
scopes we ask for cover them, and the emulator's answers fit the spec's response schemas."""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jsonschema
import pytest
import requests

from bridge.domain import OutboundFile, OutboundMessage, Platform
from bridge.sandbox.x import BRAND_ID, XEmulator
from connectors.x import convert, media, oauth
from connectors.x.connector import XConnector
from tests.contract.test_x_chat_spec import all_parameters, body_errors, path_values, schema_of
from tests.contract.test_x_spec import SPEC, enum_of, operation, resolve

pytestmark = pytest.mark.skipif(
    not SPEC.exists(), reason=f"X's OpenAPI spec not found at {SPEC} (../shared/specs is present under CI)"
)
CUSTOMER = "1290011223344556677"


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    query: list[tuple[str, str]]
    json_body: Any
    form: dict[str, Any] | None
    """A multipart body's fields (files as base64 text, as a JSON body would carry them)."""
    status: int
    answer: Any


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return dict(json.loads(SPEC.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def calls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Call]]:
    """A poll that finds a customer's photo, its download, a photo and a video sent with DMs, and a verify."""
    x = XEmulator()
    x.start()
    x.add_user(CUSTOMER, "maria_l", "Maria López")
    found: list[Call] = []
    c = XConnector(base_url=x.api_url, user_bearer_token=x.user_bearer_token)
    c.wire.sleep = lambda seconds: None
    original = c.client.session.request

    def recording(method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        resp: requests.Response = original(method, url, *args, **kwargs)
        parts = urlsplit(str(resp.request.url))
        form = None
        if kwargs.get("files") is not None:
            form = dict(kwargs.get("data") or {})
            form |= {k: base64.b64encode(v[1]).decode() for k, v in kwargs["files"].items()}
        is_json = resp.headers.get("content-type", "").startswith("application/json")
        answer = resp.json() if is_json and not kwargs.get("stream") else None
        found.append(
            Call(method, parts.path, parse_qsl(parts.query), kwargs.get("json"), form, resp.status_code, answer)
        )
        return resp

    c.client.session.request = recording  # type: ignore[method-assign]
    try:
        c.start()
        cursor = c.poll(None).cursor
        x.customer_sends(CUSTOMER, "the dent", media=(b"\xff\xd8\xff" + os.urandom(5000), "image/jpeg"))
        (message,) = c.poll(cursor).messages
        c.fetch_file("acme_help", message.conversation, message.files[0].url, io.BytesIO(), 10_000_000)
        folder = tmp_path_factory.mktemp("files")
        for name, kind, data, text in [
            ("label.png", "image/png", b"\x89PNG\r\n\x1a\n" + os.urandom(4000), "Here is the label"),
            ("how-to.mp4", "video/mp4", os.urandom(2 * 1024 * 1024 + 10), ""),
        ]:
            (folder / name).write_bytes(data)
            out = OutboundMessage(
                platform=Platform.X,
                account="acme_help",
                conversation=convert.conversation_id(CUSTOMER, BRAND_ID),
                recipient_id=CUSTOMER,
                text=text,
                file=OutboundFile(
                    name=name, kind=kind.split("/")[0], content_type=kind, size=len(data), path=str(folder / name)
                ),
            )
            c.send(out)
        c.find_sent(out, since=0.0, known=set())
        yield found
    finally:
        x.stop()


def test_every_media_request_is_in_the_spec(spec: dict[str, Any], calls: list[Call]) -> None:
    used = {(call.method, operation(spec, call.method, call.path)[0]) for call in calls}
    assert {
        ("GET", "/2/dm_conversations/media/{dm_id}/{media_id}/{resource_id}"),
        ("POST", "/2/media/upload/initialize"),
        ("POST", "/2/media/upload/{id}/append"),
        ("POST", "/2/media/upload/{id}/finalize"),
        ("GET", "/2/media/upload"),
        ("POST", "/2/dm_conversations/{dm_conversation_id}/messages"),
    } <= used
    for call in calls:
        assert 200 <= call.status < 300, call
        template, op = operation(spec, call.method, call.path)
        params = all_parameters(spec, template, op)
        for name, value in path_values(template, call.path).items():
            pattern = resolve(spec, params[name]["schema"]).get("pattern")
            assert pattern is None or jsonschema.Draft7Validator({"pattern": pattern}).is_valid(value), (name, value)
        for name, value in call.query:
            assert name in params and params[name]["in"] == "query", f"{template}: no query parameter {name}"
            enum = enum_of(spec, params[name])
            assert enum is None or set(value.split(",")) <= enum, f"{template} {name}: {value}"


def test_the_media_fields_and_expansion_are_spec_values(spec: dict[str, Any], calls: list[Call]) -> None:
    (poll, *_) = [c for c in calls if c.path == "/2/dm_events"]
    query = dict(poll.query)
    assert media.MEDIA_EXPANSION in query["expansions"].split(",")
    assert set(query["media.fields"].split(",")) == set(media.MEDIA_FIELDS)
    _, op = operation(spec, "GET", "/2/dm_events")
    assert set(media.MEDIA_FIELDS) <= (enum_of(spec, all_parameters(spec, "/2/dm_events", op)["media.fields"]) or set())


def test_request_bodies_fit_the_spec(spec: dict[str, Any], calls: list[Call]) -> None:
    bodies = 0
    for call in calls:
        template, op = operation(spec, call.method, call.path)
        if call.form is not None:
            content = resolve(spec, op["requestBody"])["content"]["multipart/form-data"]["schema"]
            form = {k: int(v) if k == "segment_index" else v for k, v in call.form.items()}
            errors = list(jsonschema.Draft7Validator(schema_of(spec, content, strict=True)).iter_errors(form))
            assert not errors, (template, [e.message for e in errors])
            bodies += 1
        elif call.json_body is not None:
            assert not body_errors(spec, op, call.json_body), (template, call.json_body)
            bodies += 1
        else:
            assert "requestBody" not in op or not resolve(spec, op["requestBody"]).get("required"), template
    sends = [c.json_body for c in calls if c.path.endswith("/messages")]
    assert sends[0]["text"] == "Here is the label" and len(sends[0]["attachments"]) == 1
    assert "text" not in sends[1] and len(sends[1]["attachments"]) == 1  # the video went alone
    assert [c.json_body["media_category"] for c in calls if c.path.endswith("/initialize")] == ["dm_image", "dm_video"]
    assert bodies >= 7


def test_the_emulators_answers_fit_the_spec(spec: dict[str, Any], calls: list[Call]) -> None:
    for call in calls:
        if call.answer is None:
            continue
        template, op = operation(spec, call.method, call.path)
        content = resolve(spec, op["responses"][str(call.status)])["content"]["application/json"]["schema"]
        errors = list(jsonschema.Draft7Validator(schema_of(spec, content, strict=False)).iter_errors(call.answer))
        assert not errors, (template, [e.message for e in errors])


def test_the_scopes_we_request_cover_the_media_calls(spec: dict[str, Any], calls: list[Call]) -> None:
    for call in calls:
        template, op = operation(spec, call.method, call.path)
        needed = {s for req in op.get("security", []) for s in req.get("OAuth2UserToken", [])}
        assert needed <= set(oauth.SCOPES), f"{call.method} {template} needs {needed - set(oauth.SCOPES)}"


def test_the_emulators_categories_and_types_are_the_spec_enums(spec: dict[str, Any]) -> None:
    from bridge.sandbox import x_media

    init = resolve(spec, spec["components"]["schemas"]["InitializeMediaUploadRequest"])["properties"]
    assert set(x_media.CATEGORIES) == set(init["media_category"]["enum"])
    assert set(x_media.MEDIA_TYPES) == set(init["media_type"]["enum"])
    assert set(x_media.RULES) == set(x_media.CATEGORIES)
