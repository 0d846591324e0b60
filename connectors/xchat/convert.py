"""Pure shapes of X Chat: conversation ids, webhook envelopes → sealed events, opened events → messages."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any

from bridge.domain import Customer, InboundMessage, Platform, SealedEvent
from bridge.errors import BadPayload

CHAT_EVENTS = ("chat.received", "chat.sent")
MAX_EVENT_CHARS = 64_000  # base64 of one event: a text message is well under 1 KB; X's text limit is 10,000
USER_ID = re.compile(r"[0-9]{1,19}")
EVENT_ID = re.compile(r"[A-Za-z0-9_\-:.]{1,128}")


def canonical(conversation: str, me: str) -> str | None:
    """A 1:1 conversation as ``{low}-{high}`` (the legacy DM's ``dm_conversation_id``), from X's ``a:b``,
    ``a-b`` or the other user's id alone; None for a group (``g…``) or anything else."""
    parts = re.split("[:-]", conversation) if conversation else []
    if len(parts) == 1 and USER_ID.fullmatch(parts[0]) and parts[0] != me:
        parts = [parts[0], me]
    if len(parts) != 2 or not all(USER_ID.fullmatch(p) for p in parts) or me not in parts or parts[0] == parts[1]:
        return None
    low, high = sorted(parts, key=int)
    return f"{low}-{high}"


def other(conversation: str, me: str) -> str:
    """The customer's id in a canonical 1:1 conversation id."""
    low, high = conversation.split("-")
    return high if low == me else low


def encoded_event_ok(value: Any) -> bool:
    """Base64 of bounded size (X's events are standard base64 of Thrift binary)."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_EVENT_CHARS:
        return False
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def sealed_from_activity(data: dict[str, Any], *, me: str, account: str) -> list[SealedEvent]:
    """The sealed event of one X Activity API ``chat.received``/``chat.sent`` delivery (``data`` is the
    envelope's ``data``). Raises BadPayload for a delivery X would not send."""
    payload = data.get("payload")
    if not isinstance(payload, dict):
        raise BadPayload("a chat event needs a payload object")
    event = payload.get("message_event") if isinstance(payload.get("message_event"), dict) else payload
    assert isinstance(event, dict)
    encoded = event.get("encoded_event")
    event_id = str(event.get("id") or event.get("event_id") or "")
    conversation = canonical(str(event.get("conversation_id") or ""), me)
    if not encoded_event_ok(encoded) or not EVENT_ID.fullmatch(event_id) or conversation is None:
        raise BadPayload("a chat event needs an id, a 1:1 conversation_id of ours and a base64 encoded_event")
    assert isinstance(encoded, str)
    return [SealedEvent(account=account, conversation=conversation, event_id=event_id, encoded_event=encoded)]


def sealed_from_history(event: dict[str, Any], *, conversation: str, account: str) -> SealedEvent | None:
    """One event of ``GET /2/chat/conversations/{id}/events`` as a sealed event; None when malformed."""
    encoded, event_id = event.get("encoded_event"), str(event.get("id") or "")
    if not encoded_event_ok(encoded) or not EVENT_ID.fullmatch(event_id):
        return None
    assert isinstance(encoded, str)
    return SealedEvent(account=account, conversation=conversation, event_id=event_id, encoded_event=encoded)


def to_message(
    opened: dict[str, Any], *, event_id: str, conversation: str, me: str, account: str, customer: Customer
) -> InboundMessage | None:
    """A decrypted ``Message`` event as a domain message (None for other event types). An event whose
    signature or reply preview does not verify becomes an ``unverified`` message with no text."""
    if opened.get("type") != "Message":
        return None
    sender = str(opened.get("sender_id") or "")
    content = opened.get("content") if isinstance(opened.get("content"), dict) else {}
    assert isinstance(content, dict)
    verified = opened.get("verified") is True and opened.get("reply_preview_validation", "Valid") == "Valid"
    text = str(content.get("text") or "") if verified else ""
    attachments = content.get("attachments") if isinstance(content.get("attachments"), list) else []
    assert isinstance(attachments, list)
    return InboundMessage(
        platform=Platform.X,
        account=account,
        remote_id=event_id,
        conversation=conversation,
        customer=customer,
        text=text,
        sent_at=sent_at(opened.get("created_at_msec")),
        from_brand=sender == me,
        attachments=tuple(str(i) for i in range(len(attachments))) if verified else (),
        needs_profile=sender != me,
        via="xchat",
        unverified=not verified,
    )


def sent_at(msec: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(msec) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.now(UTC)


def key_versions(events: list[dict[str, Any]]) -> set[str]:
    """The conversation key versions that opened events name (to know which keys to look for)."""
    return {str(e["key_version"]) for e in events if e.get("key_version")}
