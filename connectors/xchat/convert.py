"""Pure shapes of X Chat: conversation ids, webhook envelopes → sealed events, opened events → messages."""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.domain import Customer, InboundMessage, Platform, SealedEvent
from bridge.errors import BadPayload
from connectors.xchat import media

CHAT_EVENTS = ("chat.received", "chat.sent")
MAX_EVENT_CHARS = 64_000  # base64 of one event: a text message is well under 1 KB; X's text limit is 10,000
USER_ID = re.compile(r"[1-9][0-9]{0,18}")  # X ids: no leading zero (else "0123" and "123" would be two users)
EVENT_ID = re.compile(r"[A-Za-z0-9_\-:.]{1,128}")
# X documents no limits for X Chat quick replies; these are its legacy DM quick replies' (at most 20 options,
# a label of up to 36 characters, metadata of up to 1,000)
QUICK_REPLY_OPTIONS, QUICK_REPLY_LABEL, QUICK_REPLY_METADATA = 20, 36, 1000


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


@dataclass(frozen=True)
class Header:
    """The clear fields of an X Chat event (its Thrift ``MessageEvent``): who, where, which message."""

    message_id: str
    sender_id: str
    conversation_id: str


# Thrift binary protocol: the size of each fixed-width type; strings, structs, maps, sets and lists are walked
_FIXED = {2: 1, 3: 1, 4: 8, 6: 2, 8: 4, 10: 8}
_MAX_DEPTH = 16


def header(encoded: str) -> Header:
    """Fields 2 (message id), 3 (sender) and 4 (conversation) of an event, read without decrypting anything;
    ValueError for anything that is not a well-formed event."""
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64") from exc
    found: dict[int, str] = {}
    end = _skip_struct(data, 0, 0, found)
    if end != len(data):
        raise ValueError("bytes after the event")
    message_id, sender, conversation = found.get(2, ""), found.get(3, ""), found.get(4, "")
    if not EVENT_ID.fullmatch(message_id) or not USER_ID.fullmatch(sender) or not conversation:
        raise ValueError("an event needs a message id, a sender and a conversation")
    return Header(message_id, sender, conversation)


def _need(data: bytes, at: int, n: int) -> int:
    if n < 0 or at + n > len(data):
        raise ValueError("event cut short")
    return at + n


def _skip_struct(data: bytes, at: int, depth: int, top: dict[int, str] | None = None) -> int:
    if depth > _MAX_DEPTH:
        raise ValueError("event nested too deeply")
    while True:
        kind = data[_need(data, at, 1) - 1]
        at += 1
        if kind == 0:
            return at
        (field_id,) = struct.unpack_from(">h", data, _need(data, at, 2) - 2)
        at += 2
        if top is not None and kind == 11 and field_id in (2, 3, 4):
            (size,) = struct.unpack_from(">i", data, _need(data, at, 4) - 4)
            start = at + 4
            at = _need(data, start, size)
            top[field_id] = data[start:at].decode("utf-8", errors="strict")
            continue
        at = _skip(data, at, kind, depth)


def _skip(data: bytes, at: int, kind: int, depth: int) -> int:
    if depth > _MAX_DEPTH:  # lists and maps nest too: bounded like structs, never by the stack
        raise ValueError("event nested too deeply")
    if kind in _FIXED:
        return _need(data, at, _FIXED[kind])
    if kind == 11:
        (size,) = struct.unpack_from(">i", data, _need(data, at, 4) - 4)
        return _need(data, at + 4, size)
    if kind == 12:
        return _skip_struct(data, at, depth + 1)
    if kind == 13:
        key, value = data[_need(data, at, 2) - 2], data[at + 1]
        (count,) = struct.unpack_from(">i", data, _need(data, at + 2, 4) - 4)
        at += 6
        for _ in range(_count(count, data, at)):
            at = _skip(data, _skip(data, at, key, depth + 1), value, depth + 1)
        return at
    if kind in (14, 15):
        element = data[_need(data, at, 1) - 1]
        (count,) = struct.unpack_from(">i", data, _need(data, at + 1, 4) - 4)
        at += 5
        for _ in range(_count(count, data, at)):
            at = _skip(data, at, element, depth + 1)
        return at
    raise ValueError(f"unknown Thrift type {kind}")


def _count(count: int, data: bytes, at: int) -> int:
    if count < 0 or count > len(data) - at:  # every element takes at least a byte
        raise ValueError("impossible element count")
    return count


def sealed(encoded: Any, *, me: str, account: str) -> SealedEvent:
    """An encoded event as a sealed event of ours; ValueError when it is not one."""
    if not encoded_event_ok(encoded):
        raise ValueError("encoded_event must be base64 of at most 64,000 characters")
    assert isinstance(encoded, str)
    head = header(encoded)
    conversation = canonical(head.conversation_id, me)
    if conversation is None:
        raise ValueError("not a one-to-one conversation of ours")
    return SealedEvent(account=account, conversation=conversation, event_id=head.message_id, encoded_event=encoded)


def sealed_from_activity(data: dict[str, Any], *, me: str, account: str) -> list[SealedEvent]:
    """The sealed events of one X Activity API ``chat.received``/``chat.sent`` delivery (``data`` is the
    envelope's ``data``): ``payload.encoded_event``, and ``payload.conversation_key_change_event`` when the
    delivery carries the key it needs. Raises BadPayload for a delivery X would not send."""
    payload = data.get("payload")
    if not isinstance(payload, dict):
        raise BadPayload("a chat event needs a payload object")
    found = []
    try:
        if payload.get("conversation_key_change_event") is not None:
            found.append(sealed(payload["conversation_key_change_event"], me=me, account=account))
        found.append(sealed(payload.get("encoded_event"), me=me, account=account))
    except ValueError as exc:
        raise BadPayload(f"a chat event needs a well-formed encoded_event of ours: {exc}") from exc
    return found


def sealed_from_history(event: dict[str, Any], *, me: str, account: str) -> SealedEvent | None:
    """One event of ``GET /2/chat/conversations/{id}/events`` as a sealed event; None when malformed."""
    try:
        return sealed(event.get("encoded_event"), me=me, account=account)
    except ValueError:
        return None


def to_message(
    opened: dict[str, Any], *, event_id: str, conversation: str, me: str, account: str, customer: Customer
) -> InboundMessage | None:
    """A decrypted ``Message`` event as a domain message (None for other event types), its media as private
    files (``media.files_of``). An event whose signature or reply preview does not verify becomes an
    ``unverified`` message with no text and no files."""
    if opened.get("type") != "Message":
        return None
    sender = str(opened.get("sender_id") or "")
    content = opened.get("content") if isinstance(opened.get("content"), dict) else {}
    assert isinstance(content, dict)
    verified = opened.get("verified") is True and opened.get("reply_preview_validation", "Valid") == "Valid"
    text = str(content.get("text") or "") if verified else ""
    files, others = media.files_of(opened, conversation) if verified else ((), 0)
    return InboundMessage(
        platform=Platform.X,
        account=account,
        remote_id=event_id,
        conversation=conversation,
        customer=customer,
        text=text,
        sent_at=sent_at(opened.get("created_at_msec")),
        from_brand=sender == me,
        attachments=tuple(str(i) for i in range(others)),
        needs_profile=sender != me,
        via="xchat",
        files=files,
        unverified=not verified,
        quick_reply=tapped(content) if verified else "",
    )


def quick_reply_request(options: tuple[tuple[str, str], ...], request_id: str) -> dict[str, Any]:
    """chatxdk's ``quick_reply`` offering (title, payload) buttons: each payload comes back as the ``metadata``
    of the customer's response (``tapped``)."""
    if len(options) > QUICK_REPLY_OPTIONS:
        raise ValueError(f"X Chat offers at most {QUICK_REPLY_OPTIONS} quick replies")
    for title, payload in options:
        if not title or len(title) > QUICK_REPLY_LABEL or len(payload) > QUICK_REPLY_METADATA:
            raise ValueError(
                f"a quick reply's label is 1–{QUICK_REPLY_LABEL} characters, its metadata at most "
                f"{QUICK_REPLY_METADATA}"
            )
    chosen = [{"id": str(i), "label": title, "metadata": payload} for i, (title, payload) in enumerate(options, 1)]
    return {"request": {"options": {"id": request_id, "options": chosen}}}


def tapped(content: dict[str, Any]) -> str:
    """The metadata of the quick reply a decrypted message answers with (``content.quick_reply.response``); ""
    when it answers none or the shape is not one chatxdk makes."""
    answer = content.get("quick_reply")
    response = answer.get("response") if isinstance(answer, dict) else None
    chosen = response.get("options") if isinstance(response, dict) else None
    metadata = chosen.get("metadata") if isinstance(chosen, dict) else None
    return metadata if isinstance(metadata, str) and len(metadata) <= QUICK_REPLY_METADATA else ""


def sent_at(msec: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(msec) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.now(UTC)


def key_versions(events: list[dict[str, Any]]) -> set[str]:
    """The conversation key versions that opened events name (to know which keys to look for)."""
    return {str(e["key_version"]) for e in events if e.get("key_version")}
