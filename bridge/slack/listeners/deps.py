"""What the listener families share; built by ``bridge.app``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bridge.desk import Desk
from bridge.slack.api import SlackApi
from bridge.store.db import Database


@dataclass(frozen=True)
class ListenerDeps:
    db: Database
    desk: Desk
    slack: SlackApi
    clock: Callable[[], float]
    wake: Callable[[], None]
    """Wake the delivery loops after something was enqueued."""
