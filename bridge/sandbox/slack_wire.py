"""How the Slack emulator reads a Web API request (per-method encodings) and pages a list (``limit``/``cursor``)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from bridge.sandbox.slack_state import ApiError

# The methods whose spec ``consumes`` lists application/json (web-api.openapi.json); every other method takes
# form or query arguments only.
JSON_METHODS = frozenset(
    {
        "auth.test",
        "chat.postMessage",
        "chat.update",
        "chat.postEphemeral",
        "chat.delete",
        "reactions.add",
        "reactions.remove",
        "views.open",
        "views.update",
        "views.publish",
        "views.push",
        # not in the 2021 spec; docs.slack.dev lists application/json for it. files.getUploadURLExternal stays
        # form-only: api.slack.com lists only application/x-www-form-urlencoded, and live Slack is reported to
        # answer a JSON body as if filename and length were missing (Octember/earshot#10)
        "files.completeUploadExternal",
    }
)


def window(p: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """Messages between ``oldest`` and ``latest`` (bounds included only with ``inclusive``)."""
    try:
        oldest, latest = float(p.get("oldest") or 0), float(p.get("latest") or "inf")
    except ValueError as exc:
        raise ApiError("invalid_ts_oldest" if "oldest" in str(exc) else "invalid_ts_latest") from exc
    inclusive = str(p.get("inclusive", "")).lower() in ("true", "1")
    if inclusive:
        return lambda m: oldest <= float(m["ts"]) <= latest
    return lambda m: oldest < float(m["ts"]) < latest


def cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def offset(cursor: str) -> int:
    if not cursor:
        return 0
    try:
        kind, _, value = base64.b64decode(cursor, validate=True).decode().partition(":")
        if kind == "offset" and value.isdigit():
            return int(value)
    except (binascii.Error, UnicodeDecodeError):
        pass
    raise ApiError("invalid_cursor")


def parse_params(
    method: str, raw: bytes, content_type: str, query: dict[str, str]
) -> tuple[dict[str, Any], str, tuple[str, ...]]:
    """What Slack reads from a request: query arguments, a form body, and a JSON body only where the method
    takes JSON. Also the encoding and every argument name sent (for the contract tests)."""
    params: dict[str, Any] = dict(query)
    mime = content_type.split(";")[0].strip().lower()
    if mime == "application/json":
        body: Any = {}
        with contextlib.suppress(ValueError):
            body = json.loads(raw or b"{}")
        body = body if isinstance(body, dict) else {}
        if method in JSON_METHODS:
            params.update(body)
        return params, "json", tuple(sorted(set(query) | set(body)))
    if raw and mime in ("application/x-www-form-urlencoded", ""):
        form = dict(parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True))
        params.update(form)
        return params, "form", tuple(sorted(set(query) | set(form)))
    return params, "query", tuple(sorted(query))


def json_field(value: Any) -> Any:
    """Form bodies carry blocks/views/metadata as JSON strings; JSON bodies as objects."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
