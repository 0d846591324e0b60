"""What of a Slack event envelope is worth storing (pure).

Slack sends every message of every channel the bot is in, wrapped in an
envelope that carries the app's verification ``token``, the workspace, the
authorizations and more. The event processor reads only a handful of fields
(``bridge.thread_messages.classify`` and the App Home refresh in
``bridge.processor``); ``slim`` keeps exactly those and nothing else:

- ``app_home_opened``: ``type``, ``user``, ``tab``;
- a message or mention that ``classify`` would act on, in a desk channel:
  ``type``, ``subtype``, ``channel``, ``ts``, ``thread_ts``, ``user``,
  ``text``, ``bot_id``, ``app_id``, and of each of its ``files`` (at most 10)
  ``id``, ``name``, ``mimetype``, ``size``, ``mode``; for an edit or deletion, of the message
  and the previous message only ``ts``, ``thread_ts``, ``bot_id``, ``app_id``
  and, for an edit, a digest of each text (``classify`` only compares them);
- anything else (other channels, top-level messages, bots' messages, other
  event types): only ``{"ignored": reason}`` (why it needs nothing, the same
  words ``classify`` gives, so the stored outcome is unchanged) — the row
  keeps its dedupe key, so a retry of it still stores nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from typing import Any

from bridge import thread_messages

MESSAGE_FIELDS = ("type", "subtype", "channel", "ts", "thread_ts", "user", "text", "bot_id", "app_id")
CHANGE_FIELDS = ("type", "subtype", "channel")
CHANGED_MESSAGE_FIELDS = ("ts", "thread_ts", "bot_id", "app_id")
FILE_FIELDS = ("id", "name", "mimetype", "size", "mode")
HOME_FIELDS = ("type", "user", "tab")
CHANGES = ("message_changed", "message_deleted")


def slim(envelope: dict[str, Any], desk_channels: Collection[str] | None = None) -> dict[str, Any]:
    """The part of ``envelope`` the processor uses; only the reason when it uses none of it.

    ``desk_channels``: the channels conversations live in (``None``: any).
    """
    event = envelope.get("event")
    if not isinstance(event, dict):
        return ignored("not an event")
    kind = event.get("type")
    if kind == "app_home_opened":
        return {"event": _pick(event, HOME_FIELDS)}
    if kind not in ("message", "app_mention"):
        return ignored("event type not used")
    if event.get("subtype") in CHANGES:
        kept = _pick(event, CHANGE_FIELDS)
        for key in ("message", "previous_message"):
            if key in event:
                kept[key] = _changed_message(event[key], with_text=event.get("subtype") == "message_changed")
    else:
        kept = _pick(event, MESSAGE_FIELDS)
        if isinstance(event.get("files"), list):
            files = event["files"][: thread_messages.MAX_FILES]
            kept["files"] = [_pick(f, FILE_FIELDS) for f in files if isinstance(f, dict)]
    try:
        action: thread_messages.Action | None = thread_messages.classify(kept, "", ())
    except Exception:  # malformed: keep what we picked, so processing meets the same problem as with all of it
        action = None
    if isinstance(action, thread_messages.Ignore):
        return ignored(action.reason)
    if desk_channels is not None and event.get("channel") not in desk_channels:
        return ignored("outside the desk channels")
    return {"event": kept}


def ignored(reason: str) -> dict[str, Any]:
    """What is stored of an event the processor will ignore: the reason only."""
    return {thread_messages.IGNORED: reason[:80]}


def _pick(event: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {k: event[k] for k in fields if k in event}


def _changed_message(value: Any, *, with_text: bool) -> Any:
    if not isinstance(value, dict):
        return value  # not a message: classify treats it as it is
    kept = _pick(value, CHANGED_MESSAGE_FIELDS)
    if with_text and value.get("text") is not None:
        kept["text"] = digest(value["text"])
    return kept


def digest(value: Any) -> str:
    """Equal texts give equal digests; the text itself is not kept."""
    return "sha256:" + hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
