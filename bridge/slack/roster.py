"""Who the agents are, their names and presence: Slack look-ups, cached for a short while.

It only gathers facts (``facts``: channel members, user groups); what they
allow is decided in one place, ``bridge.authz``.

The cache only saves calls; every answer comes from Slack and is at most
``ttl`` seconds old. When Slack cannot be asked, the last known answer is
used, and with none the look-up fails closed (not an agent).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from bridge.authz import Facts
from bridge.errors import DeliveryError
from bridge.slack.api import SlackApi

log = logging.getLogger(__name__)


class Roster:
    def __init__(
        self,
        slack: SlackApi,
        agents_group: str | None,
        *,
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        admins: str | list[str] | None = None,
    ) -> None:
        self.slack, self.agents_group, self.ttl, self.clock = slack, agents_group, ttl, clock
        self.admins_config = admins
        """``admins`` of dmbridge.toml: a user group id, a list of user ids, or None (the agents are the admins)."""
        self._cache: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def _cached(self, key: str, fetch: Callable[[], Any], default: Any) -> Any:
        now = self.clock()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        try:
            value = fetch()
        except DeliveryError as exc:
            log.warning("Slack look-up %s failed: %s", key, exc.reason)
            return hit[1] if hit is not None else default
        with self._lock:
            self._cache[key] = (now, value)
        return value

    def agents(self, channel: str) -> frozenset[str]:
        """The people allowed to act: the agents user group, else the channel's members."""
        if self.agents_group:
            group = self.agents_group
            return frozenset(self._cached(f"group:{group}", lambda: self.slack.usergroup_members(group), []))
        return frozenset(self._cached(f"members:{channel}", lambda: self.slack.channel_members(channel), []))

    def admins(self) -> frozenset[str] | None:
        """The people who may change templates; None when not configured (then the agents may)."""
        admins = self.admins_config
        if admins is None:
            return None
        if isinstance(admins, str):
            return frozenset(self.group(admins))
        return frozenset(admins)

    def facts(self, channels: tuple[str, ...], *, admins: bool = False) -> Facts:
        """What ``bridge.authz.decide`` needs about ``channels`` (and the admins, when asked)."""
        return Facts(
            agents={c: self.agents(c) for c in dict.fromkeys(channels) if c}, admins=self.admins() if admins else None
        )

    def group(self, group: str) -> list[str]:
        members: list[str] = self._cached(f"group:{group}", lambda: self.slack.usergroup_members(group), [])
        return members

    def name(self, user: str) -> str:
        info = self._cached(f"user:{user}", lambda: self.slack.user_info(user), {})
        profile = info.get("profile") or {}
        return str(
            profile.get("real_name") or info.get("real_name") or profile.get("display_name") or info.get("name") or user
        )

    def away(self, user: str) -> bool:
        return bool(self._cached(f"presence:{user}", lambda: self.slack.presence(user) != "active", True))
