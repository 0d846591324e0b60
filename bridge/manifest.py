"""The Slack app manifest, with the request URL filled in or in its Socket Mode variant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PACKAGED = Path(__file__).resolve().parent / "manifest.yml"
PLACEHOLDER = "https://dmbridge.example.com"


def load() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(PACKAGED.read_text(encoding="utf-8"))
    return data


def render(url: str | None = None, socket: bool = False) -> dict[str, Any]:
    m = load()
    settings, features = m["settings"], m["features"]
    if socket:
        settings["socket_mode_enabled"] = True
        settings["event_subscriptions"].pop("request_url", None)
        settings["interactivity"].pop("request_url", None)
        for cmd in features.get("slash_commands", []):
            cmd.pop("url", None)
        return m
    base = (url or PLACEHOLDER).rstrip("/")
    endpoint = f"{base}/slack/events"
    settings["event_subscriptions"]["request_url"] = endpoint
    settings["interactivity"]["request_url"] = endpoint
    for cmd in features.get("slash_commands", []):
        cmd["url"] = endpoint
    return m


def dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
