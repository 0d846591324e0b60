"""Slack mrkdwn as typed by agents → plain text for customers (pure)."""

from __future__ import annotations

import re

_ANGLE = re.compile(r"<([^<>]*)>")


def _angle(match: re.Match[str]) -> str:
    inner = match.group(1)
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        return "@" + (label or "someone")
    if target.startswith("#"):
        return "#" + (label or "channel")
    if target.startswith("!subteam^"):
        return "@" + (label.lstrip("@") or "team")
    if target.startswith("!"):
        name = target[1:].split("^", 1)[0]
        return "@" + (label.lstrip("@") or name)
    if label:
        return f"{label} ({target})" if label != target and label not in target else target
    return target.removeprefix("mailto:")


def slack_to_plain(text: str) -> str:
    """Turn ``<https://x|label>``, ``<@U1|ann>``, ``&amp;`` … into what a customer should read."""
    out = _ANGLE.sub(_angle, text)
    return out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
