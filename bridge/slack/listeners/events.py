"""Events API listeners: they only store, then acknowledge (bolt runs with process_before_response).

Every event type in the manifest's subscription has a listener here, so
bolt never answers 404 (which Slack would retry).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from slack_bolt import Ack, App

from bridge.slack.slim import slim
from bridge.store import events
from bridge.store.db import Database


def dedupe_key(body: dict[str, Any]) -> str:
    """``msg:{channel}:{ts}`` for a posted message (so message and app_mention store once), else the event id."""
    event = body.get("event") or {}
    if (
        event.get("type") in ("message", "app_mention")
        and event.get("subtype") not in ("message_changed", "message_deleted")
        and event.get("channel")
        and event.get("ts")
    ):
        return f"msg:{event['channel']}:{event['ts']}"
    return f"ev:{body.get('event_id') or event.get('event_ts') or event.get('ts')}"


def register(
    app: App,
    db: Database,
    clock: Callable[[], float],
    wake: Callable[[], None],
    desk_channels: Collection[str] | None = None,
) -> None:
    """``desk_channels``: where conversations live; other channels' messages keep only their dedupe key."""

    def store(ack: Ack, body: dict[str, Any]) -> None:
        with db.session() as s:
            events.record_slack_event(
                s,
                dedupe_key=dedupe_key(body),
                event_id=body.get("event_id"),
                kind=str((body.get("event") or {}).get("type", "unknown")),
                payload=slim(body, desk_channels),
                now=clock(),
            )
        ack()
        wake()

    app.event("message")(store)
    app.event("app_mention")(store)
    app.event("app_home_opened")(store)  # the processor publishes the Home tab
