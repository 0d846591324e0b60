"""The Slack emulator's ``conversations.*`` reads: ``conversations.info``, ``conversations.members``,
``conversations.history`` and ``conversations.replies``, paged with ``limit``/``cursor`` (a page holds at most
``page_size`` items; Slack may answer fewer than ``limit``), metadata only with ``include_all_metadata``."""

from __future__ import annotations

from typing import Any

from bridge.sandbox.slack_state import BOT_USER, ApiError, Channel, SlackWorld
from bridge.sandbox.slack_wire import cursor, offset, window

MAX_LIMIT = 1000


class ConversationMethods(SlackWorld):
    """Web API methods, called with the lock held (``WebApiMethods._api`` finds them by name)."""

    def _m_conversations_info(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(p)
        return {
            "channel": {
                "id": channel.id,
                "name": channel.name,
                "is_channel": not channel.is_private,
                "is_group": channel.is_private,
                "is_private": channel.is_private,
                "is_archived": False,
                "is_member": BOT_USER in channel.members,
            }
        }

    def _m_conversations_members(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(p)
        if channel.is_private and BOT_USER not in channel.members:
            raise ApiError("channel_not_found")  # a private channel is invisible to a bot outside it
        members, cursor = self._page(list(channel.members), p)
        return {"members": members, "response_metadata": {"next_cursor": cursor}}

    def _m_conversations_replies(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._readable(p)
        if not p.get("ts"):
            raise ApiError("invalid_arguments", messages=["[ERROR] missing required field: ts"])
        ts = str(p["ts"])
        root = self._find(channel.id, ts)
        if root.get("thread_ts", ts) != ts:
            ts = str(root["thread_ts"])  # a reply's ts answers its whole thread
        within = window(p)
        found = sorted(
            (dict(m) for m in channel.messages if (m["ts"] == ts or m.get("thread_ts") == ts) and within(m)),
            key=lambda m: float(m["ts"]),
        )
        return self._messages(found, p)

    def _m_conversations_history(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._readable(p)
        within = window(p)
        found = sorted(
            (dict(m) for m in channel.messages if m.get("thread_ts", m["ts"]) == m["ts"] and within(m)),
            key=lambda m: -float(m["ts"]),
        )
        return self._messages(found, p)

    # ------------------------------------------------------------------ helpers (called with the lock held)

    def _readable(self, p: dict[str, Any]) -> Channel:
        """Reading history needs the bot in the channel (a private one is invisible from outside)."""
        channel = self._channel(p)
        if BOT_USER not in channel.members:
            raise ApiError("channel_not_found" if channel.is_private else "not_in_channel")
        return channel

    def _page(self, items: list[Any], p: dict[str, Any]) -> tuple[list[Any], str]:
        try:
            limit = int(p.get("limit") or 0) or self.page_size
        except ValueError as exc:
            raise ApiError("invalid_limit") from exc
        if limit < 1 or limit > MAX_LIMIT:
            raise ApiError("invalid_limit")
        start = offset(str(p.get("cursor") or ""))
        size = min(limit, self.page_size)
        end = start + size
        return items[start:end], cursor(end) if end < len(items) else ""

    def _messages(self, found: list[dict[str, Any]], p: dict[str, Any]) -> dict[str, Any]:
        if str(p.get("include_all_metadata", "")).lower() not in ("true", "1"):
            for m in found:
                m.pop("metadata", None)
        page, cursor = self._page(found, p)
        out: dict[str, Any] = {"messages": page, "has_more": bool(cursor)}
        if cursor:
            out["response_metadata"] = {"next_cursor": cursor}
        return out
