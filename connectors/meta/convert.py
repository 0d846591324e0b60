"""Pure conversion for Meta: webhook payloads → domain messages, the messaging window, Send API bodies,
profiles, and Graph errors → reasons people can act on."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from bridge.domain import (
    Customer,
    FileLimits,
    InboundFile,
    InboundMessage,
    Limits,
    Platform,
    profile_url,
    safe_file_name,
    safe_https_url,
    valid_handle,
)
from bridge.errors import AuthFailed, BadPayload, DeliveryError, Rejected, RetryLater, server_error

OBJECTS = {"page": Platform.MESSENGER, "instagram": Platform.INSTAGRAM}
MB = 1_000_000
# Messenger: any image, video, audio or file up to 25 MB (Send API, "Sending attachments"). Instagram: the
# Attachment Upload API's table (instagram-messaging/features/attachment-upload): audio aac/m4a/wav/mp4 25 MB,
# images png/jpeg/gif 8 MB, video mp4/ogg/avi/mov/webm 25 MB, files pdf 25 MB.
MESSENGER_FILES = FileLimits(max_bytes=dict.fromkeys(("image", "video", "audio", "file"), 25 * MB), label="Messenger")
INSTAGRAM_FILES = FileLimits(
    max_bytes={"image": 8 * MB, "video": 25 * MB, "audio": 25 * MB, "file": 25 * MB},
    types={
        "image": ("image/png", "image/jpeg", "image/gif"),
        "video": ("video/mp4", "video/ogg", "video/x-msvideo", "video/quicktime", "video/webm"),
        "audio": ("audio/aac", "audio/mp4", "audio/x-m4a", "audio/wav", "audio/x-wav", "audio/vnd.wave"),
        "file": ("application/pdf",),
    },
    label="Instagram",
)
LIMITS = {
    Platform.MESSENGER: Limits(max_chars=2_000, files=MESSENGER_FILES),
    Platform.INSTAGRAM: Limits(max_chars=1_000, count_bytes=True, files=INSTAGRAM_FILES),
}
STANDARD_WINDOW = 24 * 3600.0
PROFILE_FIELDS = {
    Platform.MESSENGER: "first_name,last_name,name,profile_pic",
    Platform.INSTAGRAM: "name,username,profile_pic",
}
RATE_LIMIT_CODES = {4, 17, 32, 613}
TRANSIENT_CODES = {1, 2}


def parse(payload: Any, our_app_id: str | None) -> list[InboundMessage]:
    """The messages of one webhook delivery (``entry[].messaging[]``), oldest first.

    Events other than messages (reads, deliveries, reactions, postbacks) are
    skipped; echoes of our own app's sends are dropped here; echoes from any
    other app (Meta Business Suite, the Instagram app) come back ``from_brand``.
    Raises BadPayload (400) when the structure is not Meta's.
    """
    if not isinstance(payload, dict) or payload.get("object") not in OBJECTS:
        raise BadPayload("not a Messenger or Instagram webhook (object must be page or instagram)")
    platform = OBJECTS[payload["object"]]
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise BadPayload("entry must be a list")
    found: list[InboundMessage] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str | int):
            raise BadPayload("each entry needs an id")
        events = entry.get("messaging", [])
        if not isinstance(events, list):
            raise BadPayload("entry.messaging must be a list")
        for event in events:
            if not isinstance(event, dict):
                raise BadPayload("each messaging item must be an object")
            msg = _message(platform, str(entry["id"]), event, our_app_id)
            if msg is not None:
                found.append(msg)
    return sorted(found, key=lambda m: m.sent_at)


def _message(platform: Platform, account: str, event: dict[str, Any], our_app_id: str | None) -> InboundMessage | None:
    message = event.get("message")
    if message is None:
        return None  # read, delivery, reaction, postback, referral: nothing to mirror
    sender, recipient = _id(event.get("sender")), _id(event.get("recipient"))
    if not isinstance(message, dict) or not isinstance(message.get("mid"), str) or not sender or not recipient:
        raise BadPayload("a message needs message.mid, and sender.id and recipient.id made of digits")
    if message.get("is_deleted"):
        return None
    echo = bool(message.get("is_echo"))
    if echo and our_app_id is not None and str(message.get("app_id", "")) == our_app_id:
        return None
    customer_id = recipient if echo else sender
    files, others, notes = attachments_of(message)
    text = "\n".join([str(message.get("text") or ""), *notes]).strip("\n")
    return InboundMessage(
        platform=platform,
        account=account,
        remote_id=message["mid"],
        conversation=customer_id,
        customer=Customer(id=customer_id, name=customer_id),
        text=text,
        sent_at=_time(event.get("timestamp")),
        from_brand=echo,
        attachments=others,
        files=files,
        needs_profile=not echo,
        quick_reply=_quick_reply(message),
    )


def _quick_reply(message: dict[str, Any]) -> str:
    """The payload of a tapped quick reply (``message.quick_reply.payload``); "" when there is none."""
    tapped = message.get("quick_reply")
    value = tapped.get("payload") if isinstance(tapped, dict) else None
    return value[:1000] if isinstance(value, str) else ""


MEDIA = {"image": "image", "video": "video", "audio": "audio", "file": "file"}
EXTENSIONS = {"image": ".jpg", "video": ".mp4", "audio": ".mp4", "file": ""}


def attachments_of(message: dict[str, Any]) -> tuple[tuple[InboundFile, ...], tuple[str, ...], list[str]]:
    """What a message carries besides text: files to copy (image, video, audio, file; a sticker is an image with
    ``sticker_id``), the types that cannot be copied (counted), and lines saying what an Instagram story
    mention or story reply is, with its link."""
    mid = str(message.get("mid") or "")
    files: list[InboundFile] = []
    others: list[str] = []
    notes: list[str] = []
    items = message.get("attachments") if isinstance(message.get("attachments"), list) else []
    for index, item in enumerate(items or []):
        if not isinstance(item, dict):
            continue
        kind = str(item.get("type") or "")
        payload: dict[str, Any] = item["payload"] if isinstance(item.get("payload"), dict) else {}
        url = safe_https_url(payload.get("url"))
        if kind in MEDIA and url:
            shown = "sticker" if payload.get("sticker_id") else MEDIA[kind]
            given = payload.get("name") or payload.get("title") or urlsplit(url).path.rsplit("/", 1)[-1]
            name = safe_file_name(given, shown, EXTENSIONS[kind])  # Meta sends no name: the link's last part
            files.append(InboundFile(id=f"{mid}:{index}", url=url, kind=shown, name=name))
        elif kind == "story_mention" and url:
            notes.append(f"Mentioned your account in their story: {url}")
        else:
            others.append(kind or "attachment")
    story = ((message.get("reply_to") or {}) if isinstance(message.get("reply_to"), dict) else {}).get("story")
    if isinstance(story, dict) and (link := safe_https_url(story.get("url"))):
        notes.append(f"Replied to your story: {link}")
    return tuple(files), tuple(others), notes


def _id(party: Any) -> str | None:
    """A page-scoped or Instagram-scoped id: digits only (it becomes a Graph URL path in profile look-ups)."""
    if isinstance(party, dict) and isinstance(party.get("id"), str | int) and not isinstance(party["id"], bool):
        value = str(party["id"])
        return value if is_graph_id(value) else None
    return None


def is_graph_id(value: str) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= 32


def _time(ms: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(ms) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError) as exc:
        raise BadPayload("timestamp must be epoch milliseconds") from exc


# ---------------------------------------------------------------- the messaging window


@dataclass(frozen=True)
class Response:
    """Within 24 hours of the customer's last message: ``messaging_type=RESPONSE``."""


@dataclass(frozen=True)
class HumanAgent:
    """Within the human-agent window: ``messaging_type=MESSAGE_TAG``, ``tag=HUMAN_AGENT``."""


@dataclass(frozen=True)
class Closed:
    reason: str


SendWindow = Response | HumanAgent | Closed


def send_window(platform: Platform, last_inbound_at: float | None, now: float, human_agent_days: float) -> SendWindow:
    """How (and whether) a reply may go out now. Pure."""
    label = platform.label
    if last_inbound_at is None:
        return Closed(f"{label} only allows replies after the customer has written; they have not yet.")
    age = now - last_inbound_at
    if age < STANDARD_WINDOW:
        return Response()
    if age < human_agent_days * 86_400:
        return HumanAgent()
    allowed = (
        f"{_days(human_agent_days)} for a human agent"
        if human_agent_days * 86_400 > STANDARD_WINDOW
        else "the human-agent extension is off for this account"
    )
    return Closed(
        f"{label} only allows replies within 24 hours of the customer's last message "
        f"({allowed}); their last message was {_days(age / 86_400)} ago. "
        "The reply can go out once they write again."
    )


def _days(days: float) -> str:
    if days < 2:
        return f"{round(days * 24)} hours"
    return f"{days:.0f} days"


def send_body(
    recipient_id: str, text: str, window: Response | HumanAgent, quick_replies: tuple[tuple[str, str], ...] = ()
) -> dict[str, Any]:
    """A text message; ``quick_replies`` (title, payload) as Meta's ``message.quick_replies`` (text buttons)."""
    message: dict[str, Any] = {"text": text}
    if quick_replies:
        message["quick_replies"] = [{"content_type": "text", "title": t, "payload": p} for t, p in quick_replies]
    return _windowed({"recipient": {"id": recipient_id}, "message": message}, window)


def attachment_form(recipient_id: str, kind: str, window: Response | HumanAgent) -> dict[str, str]:
    """The form fields of a Send API call that uploads its attachment (``filedata``) in the same request:
    each a JSON string, as the Attachment Upload API's "upload from a server" shows."""
    message = {"attachment": {"type": kind, "payload": {"is_reusable": False}}}
    body = _windowed({"recipient": {"id": recipient_id}, "message": message}, window)
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}


def _windowed(body: dict[str, Any], window: Response | HumanAgent) -> dict[str, Any]:
    match window:
        case Response():
            body["messaging_type"] = "RESPONSE"
        case HumanAgent():
            body |= {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
    return body


def customer_from_profile(platform: Platform, customer_id: str, data: dict[str, Any]) -> Customer:
    first_last = " ".join(str(data[k]) for k in ("first_name", "last_name") if data.get(k))
    handle = valid_handle(platform, data.get("username"))  # Instagram's username rules; a forged one is dropped
    name = str(data.get("name") or first_last or (f"@{handle}" if handle else customer_id))
    return Customer(
        id=customer_id,
        name=name,
        handle=handle,
        avatar_url=safe_https_url(data.get("profile_pic")),
        profile_url=profile_url(platform, handle) if platform is Platform.INSTAGRAM else None,
    )


# ---------------------------------------------------------------- errors


def error_for(
    platform: Platform, status: int, body: bytes, headers: dict[str, str], now: float, *, changes: bool = True
) -> DeliveryError:
    """A Graph API error answer as one of dmbridge's errors, with a reason for the team; a 5xx to a call
    that ``changes`` something (a send) is uncertain: Meta may have delivered it before failing."""
    try:
        error = json.loads(body).get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    code, sub = _int(error.get("code")), _int(error.get("error_subcode"))
    detail = str(error.get("message") or f"HTTP {status}")
    label = platform.label
    if status == 429 or code in RATE_LIMIT_CODES:
        return RetryLater(f"{label} rate limit reached", retry_at=_retry_at(headers, now), rate_limited=True)
    if code == 190 or status == 401:
        return AuthFailed(f"Meta refused the page access token (expired or revoked): {detail}")
    if code == 10 and sub == 2018278:
        return Rejected(
            f"{label} refused: the reply is outside the messaging window (more than 24 hours, "
            "or 7 days for a human agent, since the customer's last message)"
        )
    if code == 551 or sub == 1545041:
        return Rejected(
            f"{label} refused: this person isn't available right now (they may have blocked the "
            "account, deleted theirs, or restricted messages)"
        )
    if code in (10, 200) or (code is not None and 200 <= code < 300):
        return Rejected(f"{label} refused: the app lacks permission for this message ({detail})")
    if status >= 500 or code in TRANSIENT_CODES or error.get("is_transient"):
        return server_error(f"{label} temporary error: {detail}", status, changes=changes)
    return Rejected(f"{label} refused the message: {detail}")


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _retry_at(headers: dict[str, str], now: float) -> float | None:
    """Retry-After, else the Business Use Case header's ``estimated_time_to_regain_access`` (minutes)."""
    retry_after = headers.get("retry-after")
    if retry_after:
        try:
            return now + float(retry_after)
        except ValueError:
            pass
    try:
        usage = json.loads(headers.get("x-business-use-case-usage") or "{}")
        minutes = max(int(u.get("estimated_time_to_regain_access") or 0) for items in usage.values() for u in items)
    except (ValueError, TypeError, AttributeError):
        return None
    return now + minutes * 60 if minutes else None
