"""Slack deliveries acknowledged at once and never stored: our own posts echoed back (as Bolt middleware, and as
the HTTP fast path that skips Bolt), rate-limit notices, and events no listener takes."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, BoltResponse
from slack_sdk.signature import SignatureVerifier

from bridge.context import Context

log = logging.getLogger(__name__)


def own_echoes(ctx: Context) -> Callable[..., BoltResponse | None]:
    """Bolt middleware: Slack sends each of our own posts back as a ``message`` event; acknowledge those
    at once and store nothing (they would only be classified "bot message" and dropped). Also
    acknowledges ``app_rate_limited`` notices, which no event listener can take."""

    def middleware(body: dict[str, Any], next: Callable[[], BoltResponse | None]) -> BoltResponse | None:
        if isinstance(body, dict) and body.get("type") == "app_rate_limited":
            # Slack tells us it dropped events for a minute; nothing to store, and a 404 would be retried
            log.warning("Slack rate-limited event deliveries to this app (minute %s)", body.get("minute_rate_limited"))
            return BoltResponse(status=200, body="")
        event = body.get("event") if isinstance(body, dict) else None
        typed = isinstance(event, dict) and isinstance(event.get("type"), str)
        if body.get("type") == "event_callback" and not typed:
            return BoltResponse(status=200, body="")  # nothing any listener could take; a 404 would be retried
        if (
            isinstance(event, dict)
            and event.get("type") == "message"
            and ctx.bot_id
            and event.get("bot_id") == ctx.bot_id
            and event.get("subtype") in (None, "bot_message", "file_share")
        ):
            return BoltResponse(status=200, body="")
        return next()

    return middleware


def acknowledge_unhandled(ack: Ack) -> None:
    ack()


def own_echo_check(ctx: Context, signing_secret: str) -> Callable[[bytes, dict[str, str]], bool]:
    """The HTTP fast path for our own posts echoed back: signature verified, then recognised by bot id."""
    verifier = SignatureVerifier(signing_secret)

    def check(body: bytes, headers: dict[str, str]) -> bool:
        if not ctx.bot_id or b'"bot_id"' not in body:
            return False
        if not verifier.is_valid_request(body, headers):
            return False  # bolt answers it (401)
        try:
            envelope = json.loads(body)
        except ValueError:
            return False
        event = envelope.get("event") if isinstance(envelope, dict) else None
        return (
            isinstance(event, dict)
            and event.get("type") == "message"
            and event.get("bot_id") == ctx.bot_id
            and event.get("subtype") in (None, "bot_message", "file_share")
        )

    return check
