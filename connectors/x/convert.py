"""Pure conversion of X API v2 payloads to domain types, and the high-water-mark cursor logic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.domain import Customer, InboundFile, InboundMessage, Platform, profile_url, safe_https_url, valid_handle
from bridge.errors import BadPayload
from connectors.x import media as x_media

# X's OpenAPI (2.167) has no ``sender_id`` among ``dm_event.fields``: it comes with ``expansions=sender_id``,
# which every read of ours asks for (the older prose docs list it as a field; this form works with both)
DM_EVENT_FIELDS = ["id", "event_type", "text", "dm_conversation_id", "created_at", "attachments"]
EXPANSIONS = ["sender_id", x_media.MEDIA_EXPANSION]
USER_FIELDS = ["name", "username", "profile_image_url"]


@dataclass(frozen=True)
class Page:
    """The new events of one page, and whether the whole page was new (then the next page may be too)."""

    events: list[dict[str, Any]]
    users: dict[str, dict[str, Any]]
    all_new: bool
    next_token: str | None
    media: dict[str, dict[str, Any]] | None = None
    """``includes.media`` by ``media_key``."""


def read_page(body: dict[str, Any], high_water: int) -> Page:
    """Pick the MessageCreate events newer than ``high_water`` (snowflake ids compared as integers)."""
    data = body.get("data") or []
    includes = body.get("includes") or {}
    users = {str(u["id"]): u for u in includes.get("users") or [] if "id" in u}
    fresh = [e for e in data if _id(e) > high_water]
    return Page(
        events=[e for e in fresh if e.get("event_type", "MessageCreate") == "MessageCreate"],
        users=users,
        all_new=bool(data) and len(fresh) == len(data),
        next_token=(body.get("meta") or {}).get("next_token"),
        media=x_media.media_by_key(includes),
    )


def _id(event: dict[str, Any]) -> int:
    try:
        return int(event.get("id", 0))
    except (TypeError, ValueError):
        return 0


def new_high_water(high_water: int, pages: list[Page]) -> int:
    ids = [_id(e) for p in pages for e in p.events]
    return max([high_water, *ids])


def chunks(items: list[str], size: int) -> list[list[str]]:
    """``items`` in consecutive lists of at most ``size`` (none for an empty list)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def other_participant(conversation_id: str, me: str) -> str | None:
    """The customer's id in a 1:1 conversation id ``{a}-{b}``; None for a group."""
    parts = conversation_id.split("-")
    if len(parts) != 2:
        return None
    return parts[1] if parts[0] == me else parts[0]


def customer_from_user(user: dict[str, Any] | None, user_id: str) -> Customer:
    if not user:
        return Customer(id=user_id, name=user_id)
    handle = valid_handle(Platform.X, user.get("username"))  # a forged one is dropped, never linked
    return Customer(
        id=user_id,
        name=str(user.get("name") or handle or user_id),
        handle=handle,
        avatar_url=safe_https_url(user.get("profile_image_url")),
        profile_url=profile_url(Platform.X, handle),
    )


def parse_time(value: str | None) -> datetime:
    if not value:
        return datetime.now(UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def to_message(
    event: dict[str, Any],
    *,
    me: str,
    account: str,
    users: dict[str, dict[str, Any]],
    media: dict[str, dict[str, Any]] | None = None,
    base_url: str = "",
    v1_media: dict[str, Any] | None = None,
) -> InboundMessage | None:
    """One dm event as a domain message; None for events we cannot place (group chats). Its media become files
    read from ``base_url`` (the X API's): v2 media objects by key (``media``) or the webhook's v1.1 entity
    (``v1_media``); ``attachments`` keeps the keys of those that cannot be fetched (or all, without ``base_url``)."""
    sender = str(event.get("sender_id", ""))
    conv = str(event.get("dm_conversation_id", ""))
    from_brand = sender == me
    customer_id = other_participant(conv, me) if from_brand else sender
    if not customer_id or not conv:
        return None
    keys = (event.get("attachments") or {}).get("media_keys") or ()
    files: list[InboundFile] = []
    attachments: list[str] = []
    for key in keys if isinstance(keys, list | tuple) else ():
        file = _media_file(str(event["id"]), str(key), media or {}, base_url, v1_media)
        if file is not None:
            files.append(file)
        else:
            attachments.append(str(key))
    return InboundMessage(
        platform=Platform.X,
        account=account,
        remote_id=str(event["id"]),
        conversation=conv,
        customer=customer_from_user(users.get(customer_id), customer_id),
        text=str(event.get("text") or ""),
        sent_at=parse_time(event.get("created_at")),
        from_brand=from_brand,
        attachments=tuple(attachments),
        via="dm",
        files=tuple(files),
    )


def _media_file(
    dm_id: str, key: str, media: dict[str, dict[str, Any]], base_url: str, v1_media: dict[str, Any] | None
) -> InboundFile | None:
    if not base_url:
        return None
    if v1_media is not None:
        return x_media.from_v1(base_url, dm_id, v1_media)
    found = media.get(key)
    return x_media.from_v2(base_url, dm_id, found) if found is not None else None


# ---------------------------------------------------------------- webhook deliveries


def webhook_messages(payload: Any, *, me: str, account: str, base_url: str = "") -> list[InboundMessage]:
    """The DMs of one webhook delivery, oldest first: Account Activity (``direct_message_events``) or an
    X Activity API envelope (``data.event_type`` ``dm.received``/``dm.sent``). Other events give nothing;
    a body of neither shape raises BadPayload. ``base_url``: the X API's, where DM media is read."""
    if not isinstance(payload, dict):
        raise BadPayload("body must be a JSON object")
    data = payload.get("data")
    if isinstance(data, dict) and "event_type" in data:
        if data["event_type"] not in ("dm.received", "dm.sent"):
            return []
        inner = data.get("payload")
        if not isinstance(inner, dict):
            raise BadPayload("an activity event needs a payload object")
        users = _users(inner.get("users")) | _users((data.get("includes") or {}).get("users"))
        if "direct_message_events" in inner:
            return _account_activity(inner, me, account, users, base_url)
        media = x_media.media_by_key(data.get("includes"))
        message = to_message(_v2_event(inner), me=me, account=account, users=users, media=media, base_url=base_url)
        return [message] if message is not None else []
    if "for_user_id" in payload or "direct_message_events" in payload:
        return _account_activity(payload, me, account, _users(payload.get("users")), base_url)
    raise BadPayload("neither an Account Activity nor an X Activity delivery")


def _account_activity(
    body: dict[str, Any], me: str, account: str, users: dict[str, dict[str, Any]], base_url: str = ""
) -> list[InboundMessage]:
    events = body.get("direct_message_events", [])
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise BadPayload("direct_message_events must be a list of objects")
    found = []
    for event in events:
        if event.get("type") != "message_create":
            continue
        create = event.get("message_create")
        if not isinstance(create, dict) or not numeric(event.get("id")):
            raise BadPayload("a message_create event needs a numeric id and message_create")
        target = create.get("target")
        sender = str(create.get("sender_id") or "")
        recipient = str((target if isinstance(target, dict) else {}).get("recipient_id") or "")
        if not numeric(sender) or not numeric(recipient):
            raise BadPayload("message_create needs sender_id and target.recipient_id")
        data = create.get("message_data") or {}
        data = data if isinstance(data, dict) else {}
        attachment = data.get("attachment")
        entity = attachment.get("media") if isinstance(attachment, dict) else None
        entity = entity if isinstance(entity, dict) else None
        media = (entity or {}).get("id_str")
        v2 = {
            "id": str(event["id"]),
            "sender_id": sender,
            "text": data.get("text") or "",
            "dm_conversation_id": conversation_id(sender, recipient),
            "created_at": _from_ms(event.get("created_timestamp")),
            "attachments": {"media_keys": [str(media)]} if media else None,
        }
        message = to_message(v2, me=me, account=account, users=users, base_url=base_url, v1_media=entity)
        if message is not None:
            found.append(message)
    return sorted(found, key=lambda m: int(m.remote_id))


def _v2_event(event: dict[str, Any]) -> dict[str, Any]:
    if not numeric(event.get("id")) or not numeric(event.get("sender_id")):
        raise BadPayload("a dm event needs a numeric id and sender_id")
    parts = str(event.get("dm_conversation_id") or "").split("-")
    if not all(numeric(p) for p in parts):
        raise BadPayload("a dm event needs a dm_conversation_id of numeric ids")
    return event


def numeric(value: Any) -> bool:
    """An X id: ASCII digits only (``str.isdigit`` alone admits ``²``, which ``int`` refuses), at most 20."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return False
    text = str(value)
    return text.isascii() and text.isdigit() and len(text) <= 20


def _users(raw: Any) -> dict[str, dict[str, Any]]:
    """Users from ``{id: user}``, ``{id: {"data": user}}`` or ``[user]``, in v2 field names."""
    items = list(raw.values()) if isinstance(raw, dict) else raw if isinstance(raw, list) else []
    found = {}
    for item in items:
        user = item.get("data", item) if isinstance(item, dict) else None
        if isinstance(user, dict) and "id" in user:
            found[str(user["id"])] = {
                "id": str(user["id"]),
                "name": user.get("name"),
                "username": user.get("username") or user.get("screen_name"),
                "profile_image_url": user.get("profile_image_url") or user.get("profile_image_url_https"),
            }
    return found


def conversation_id(a: str, b: str) -> str:
    """The id of the one-to-one conversation between two users: the smaller id first."""
    low, high = sorted((a, b), key=int)
    return f"{low}-{high}"


def _from_ms(value: Any) -> str | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC).isoformat()
    except (TypeError, ValueError, OverflowError, OSError):
        return None
