"""Pure conversion for generic webhook sources: the documented JSON (docs/generic-webhook.schema.json) → a
domain message, and the body of a reply sent to the source's callback URL."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from bridge.domain import (
    Customer,
    InboundFile,
    InboundMessage,
    OutboundFile,
    OutboundMessage,
    Platform,
    safe_file_name,
    safe_https_url,
    valid_handle,
)
from bridge.errors import BadPayload

MAX_ID = 256
MAX_TEXT = 40_000
MAX_ATTACHMENTS = 20


def parse_message(source: str, payload: Any, now: float) -> InboundMessage:
    """One message as a source posts it; BadPayload (400) naming the first problem found."""
    if not isinstance(payload, dict):
        raise BadPayload("body must be a JSON object")
    conversation = _id(payload, "conversation_id")
    message_id = _id(payload, "message_id")
    sender = payload.get("sender")
    if not isinstance(sender, dict):
        raise BadPayload("sender must be an object with id and name")
    sender_id, name = _id(sender, "id", "sender.id"), sender.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadPayload("sender.name must be a non-empty string")
    text = payload.get("text", "")
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise BadPayload(f"text must be a string of at most {MAX_TEXT} characters")
    attachments = payload.get("attachments", [])
    if (
        not isinstance(attachments, list)
        or len(attachments) > MAX_ATTACHMENTS
        or not all(isinstance(a, dict) and isinstance(a.get("url"), str) for a in attachments)
    ):
        raise BadPayload(f"attachments must be a list of at most {MAX_ATTACHMENTS} objects with a url")
    files = tuple(_file(message_id, i, a) for i, a in enumerate(attachments))
    if not text.strip() and not attachments:
        raise BadPayload("a message needs text or attachments")
    from_brand = payload.get("from_brand", False)
    if not isinstance(from_brand, bool):
        raise BadPayload("from_brand must be true or false")
    return InboundMessage(
        platform=Platform.GENERIC,
        account=source,
        remote_id=message_id,
        conversation=conversation,
        # links and handles that could break out of Slack markup are dropped, not refused: the message counts
        customer=Customer(
            id=sender_id,
            name=name.strip(),
            handle=valid_handle(Platform.GENERIC, _optional(sender, "handle")),
            avatar_url=safe_https_url(_optional(sender, "avatar_url")),
            profile_url=safe_https_url(_optional(sender, "profile_url")),
        ),
        text=text,
        sent_at=_timestamp(payload.get("timestamp"), now),
        from_brand=from_brand,
        files=files,
    )


def _file(message_id: str, index: int, item: dict[str, Any]) -> InboundFile:
    """One attachment: an https URL dmbridge fetches (anything else is refused: 400), a name, a content type."""
    url = safe_https_url(item["url"])
    if url is None:
        raise BadPayload(f"attachments[{index}].url must be an https URL")
    content_type = item.get("content_type")
    if content_type is not None and (not isinstance(content_type, str) or len(content_type) > 200):
        raise BadPayload(f"attachments[{index}].content_type must be a short string")
    major = (content_type or "").split("/", 1)[0]
    kind = {"image": "image", "video": "video", "audio": "audio"}.get(major, "file")
    return InboundFile(
        id=f"{message_id}:{index}",
        url=url,
        kind=kind,
        name=safe_file_name(item.get("name"), kind),
        content_type=content_type,
    )


def _id(obj: dict[str, Any], key: str, label: str | None = None) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value or len(value) > MAX_ID:
        raise BadPayload(f"{label or key} must be a non-empty string of at most {MAX_ID} characters")
    return value


def _optional(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadPayload(f"sender.{key} must be a string")
    return value or None


def _timestamp(value: Any, now: float) -> datetime:
    if value is None:
        return datetime.fromtimestamp(now, UTC)
    if not isinstance(value, str):
        raise BadPayload("timestamp must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadPayload("timestamp must be an ISO 8601 string") from exc
    if parsed.tzinfo is None:
        raise BadPayload("timestamp needs a time zone (for example 2026-05-01T10:00:00Z)")
    return parsed


def reply_id(key: str) -> str:
    """The reply's id: the same for every retry of one delivery, so the source can deduplicate."""
    return "dmb-" + hashlib.sha256(key.encode()).hexdigest()[:24]


def reply_body(message: OutboundMessage, now: float) -> dict[str, Any]:
    return {
        "type": "reply",
        "id": reply_id(message.key),
        "source": message.account,
        "conversation_id": message.conversation,
        "recipient_id": message.recipient_id,
        "text": message.text,
        "sent_at": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
        **({} if message.file is None else {"attachments": [attachment(message.file)]}),
    }


def attachment(file: OutboundFile) -> dict[str, Any]:
    """An agent's file in a reply: dmbridge's signed link to it, valid for DMBRIDGE_MEDIA_LINK_HOURS."""
    return {"url": file.url, "name": file.name, "type": file.kind, "content_type": file.content_type, "size": file.size}
