from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.domain import OutboundMessage, Platform
from bridge.errors import BadPayload
from connectors.webhook.convert import parse_message, reply_body, reply_id

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "generic-webhook.schema.json"
GOOD: dict[str, Any] = {
    "conversation_id": "chat-8812",
    "message_id": "msg-0001",
    "sender": {"id": "visitor-42", "name": "Ana Costa", "handle": "ana.c", "avatar_url": "https://cdn/ana.png"},
    "text": "Do you deliver on Sundays?",
    "attachments": [{"url": "https://cdn/receipt.pdf", "name": "r.pdf"}],
    "timestamp": "2026-05-01T10:00:00Z",
}


def test_documented_example_parses() -> None:
    msg = parse_message("shop", GOOD, now=0)
    assert (msg.platform, msg.account, msg.conversation, msg.remote_id) == (
        Platform.GENERIC,
        "shop",
        "chat-8812",
        "msg-0001",
    )
    assert (msg.customer.name, msg.customer.handle, msg.customer.avatar_url) == (
        "Ana Costa",
        "ana.c",
        "https://cdn/ana.png",
    )
    assert [(f.url, f.name, f.kind) for f in msg.files] == [("https://cdn/receipt.pdf", "r.pdf", "file")]
    assert msg.attachments == () and msg.sent_at.isoformat() == "2026-05-01T10:00:00+00:00"
    assert not msg.from_brand and not msg.needs_profile


def test_schema_file_documents_the_same_fields() -> None:
    schema = json.loads(SCHEMA.read_text())
    assert set(schema["required"]) == {"conversation_id", "message_id", "sender"}
    assert set(schema["properties"]) == {
        "conversation_id",
        "message_id",
        "sender",
        "text",
        "attachments",
        "timestamp",
        "from_brand",
    }
    assert set(schema["properties"]["sender"]["required"]) == {"id", "name"}
    assert schema["examples"][0] == GOOD


@pytest.mark.parametrize(
    "change",
    [
        {"conversation_id": ""},
        {"message_id": 5},
        {"sender": "ana"},
        {"sender": {"id": "v"}},
        {"sender": {"id": "v", "name": "  "}},
        {"text": 3},
        {"text": "", "attachments": []},
        {"attachments": [{"name": "no url"}]},
        {"timestamp": "2026-05-01T10:00:00"},
        {"timestamp": 1714557600},
        {"from_brand": "yes"},
        {"message_id": "x" * 257},
    ],
)
def test_invalid_messages_say_what_is_wrong(change: dict[str, Any]) -> None:
    with pytest.raises(BadPayload) as err:
        parse_message("shop", {**GOOD, **change}, now=0)
    assert err.value.status == 400 and err.value.reason


@given(st.text(min_size=1, max_size=80))
def test_reply_id_is_stable_per_delivery_and_differs_between_deliveries(key: str) -> None:
    assert reply_id(key) == reply_id(key) != reply_id(key + "!")


def test_reply_body() -> None:
    out = OutboundMessage(
        platform=Platform.GENERIC,
        account="shop",
        conversation="chat-1",
        recipient_id="v-1",
        text="hello",
        key="relay:C1:1.2:0",
    )
    body = reply_body(out, now=1_777_000_000)
    assert body == {
        "type": "reply",
        "id": reply_id("relay:C1:1.2:0"),
        "source": "shop",
        "conversation_id": "chat-1",
        "recipient_id": "v-1",
        "text": "hello",
        "sent_at": "2026-04-24T03:06:40Z",
    }


@pytest.mark.parametrize(
    "url", ["http://cdn.example/a.png", "file:///etc/passwd", "https://user:pw@cdn.example/a", "https://a b/c", ""]
)
def test_an_attachment_link_that_is_not_plain_https_is_refused(url: str) -> None:
    body = dict(GOOD, attachments=[{"url": url, "name": "a.png"}])
    with pytest.raises(BadPayload, match=r"attachments\[0\]\.url must be an https URL"):
        parse_message("shop", body, 0)


def test_attachment_names_lose_paths_and_markup() -> None:
    body = dict(GOOD, attachments=[{"url": "https://cdn.example/x", "name": "../../<!channel>|evil.pdf"}])
    (file,) = parse_message("shop", body, 0).files
    assert file.name == "!channelevil.pdf"
