"""Pure conversion of X API v2 payloads to domain types, and the high-water-mark cursor logic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.domain import Customer, InboundMessage, Platform

DM_EVENT_FIELDS = ["id", "event_type", "text", "sender_id", "dm_conversation_id", "created_at", "attachments"]
USER_FIELDS = ["name", "username", "profile_image_url"]


@dataclass(frozen=True)
class Page:
    """The new events of one page, and whether the whole page was new (then the next page may be too)."""

    events: list[dict[str, Any]]
    users: dict[str, dict[str, Any]]
    all_new: bool
    next_token: str | None


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
    )


def _id(event: dict[str, Any]) -> int:
    try:
        return int(event.get("id", 0))
    except (TypeError, ValueError):
        return 0


def new_high_water(high_water: int, pages: list[Page]) -> int:
    ids = [_id(e) for p in pages for e in p.events]
    return max([high_water, *ids])


def other_participant(conversation_id: str, me: str) -> str | None:
    """The customer's id in a 1:1 conversation id ``{a}-{b}``; None for a group."""
    parts = conversation_id.split("-")
    if len(parts) != 2:
        return None
    return parts[1] if parts[0] == me else parts[0]


def customer_from_user(user: dict[str, Any] | None, user_id: str) -> Customer:
    if not user:
        return Customer(id=user_id, name=user_id)
    handle = user.get("username")
    return Customer(
        id=user_id,
        name=str(user.get("name") or handle or user_id),
        handle=handle,
        avatar_url=user.get("profile_image_url"),
        profile_url=f"https://x.com/{handle}" if handle else None,
    )


def parse_time(value: str | None) -> datetime:
    if not value:
        return datetime.now(UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def to_message(event: dict[str, Any], *, me: str, account: str, users: dict[str, dict[str, Any]]) -> \
        InboundMessage | None:
    """One dm event as a domain message; None for events we cannot place (group chats)."""
    sender = str(event.get("sender_id", ""))
    conv = str(event.get("dm_conversation_id", ""))
    from_brand = sender == me
    customer_id = other_participant(conv, me) if from_brand else sender
    if not customer_id or not conv:
        return None
    attachments = tuple((event.get("attachments") or {}).get("media_keys") or ())
    return InboundMessage(
        platform=Platform.X,
        account=account,
        remote_id=str(event["id"]),
        conversation=conv,
        customer=customer_from_user(users.get(customer_id), customer_id),
        text=str(event.get("text") or ""),
        sent_at=parse_time(event.get("created_at")),
        from_brand=from_brand,
        attachments=attachments,
    )
