"""Replies to generic sources: a signed JSON POST to the source's callback URL, retried through the outbox."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from bridge import tls
from bridge.domain import FileLimits, Limits, OutboundMessage, Platform, SendResult
from bridge.errors import AuthFailed, Rejected, RetryLater, server_error, unreachable
from connectors import signing
from connectors.webhook import convert

SIGNATURE_HEADER = "X-Dmbridge-Signature"
TIMESTAMP_HEADER = "X-Dmbridge-Timestamp"
TIMESTAMP_WINDOW = 300.0
MAX_REPLY_CHARS = 10_000
MAX_LINKED_FILE = 1_000_000_000  # Slack's own cap on a file (1 GB): the source fetches the link, nothing is relayed
FILES = FileLimits(
    max_bytes=dict.fromkeys(("image", "video", "audio", "file"), MAX_LINKED_FILE),
    with_text=True,
    by_link=True,
    label="This source",
)


@dataclass(frozen=True)
class Source:
    name: str
    secret: str
    callback_url: str
    signed_timestamp: bool = False
    """Opt-in replay protection, both ways: the signature covers ``"{timestamp}.{body}"`` and a timestamp
    more than 5 minutes off is refused."""


def sign(source: Source, body: bytes, timestamp: int) -> dict[str, str]:
    """The signature headers for ``body`` sent at ``timestamp`` (Unix seconds) under ``source``'s rules."""
    if not source.signed_timestamp:
        return {SIGNATURE_HEADER: signing.hex_sha256(source.secret, body)}
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signing.hex_sha256(source.secret, f"{timestamp}.".encode() + body),
    }


class GenericConnector:
    name = "generic"
    platform = Platform.GENERIC
    limits = Limits(max_chars=MAX_REPLY_CHARS, files=FILES)

    def __init__(
        self,
        sources: dict[str, Source],
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.sources, self.clock = sources, clock
        self.client = httpx.Client(timeout=timeout, transport=transport, verify=tls.verifying())

    def start(self) -> None:
        """Nothing to learn: the sources are configured."""

    def send(self, message: OutboundMessage) -> SendResult:
        source = self.sources.get(message.account)
        if source is None:
            raise Rejected(f"the webhook source {message.account} is no longer configured")
        body = json.dumps(convert.reply_body(message, self.clock())).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Dmbridge-Source": source.name,
            **sign(source, body, int(self.clock())),
        }
        try:
            resp = self.client.post(source.callback_url, content=body, headers=headers)
        except httpx.HTTPError as exc:  # a timeout or reset may come after the source took the reply
            raise unreachable(source.name, exc) from exc
        if resp.status_code == 429:
            retry = resp.headers.get("retry-after")
            when = self.clock() + float(retry) if retry and retry.isdigit() else None
            raise RetryLater(f"{source.name} asked us to slow down", retry_at=when, rate_limited=True)
        if resp.status_code in (401, 403):
            raise AuthFailed(f"{source.name} refused our signature (HTTP {resp.status_code}): check its secret")
        if resp.status_code >= 500 or resp.status_code == 408:  # a 5xx may come after the source acted
            raise server_error(f"{source.name} answered {resp.status_code}", resp.status_code)
        if resp.status_code >= 400:
            raise Rejected(f"{source.name} refused the reply: {_error(resp)}")
        if not 200 <= resp.status_code < 300:
            # httpx does not follow redirects, and a POST followed elsewhere is not the source accepting it
            where = resp.headers.get("location", "")[:200]
            raise Rejected(
                f"{source.name} answered {resp.status_code} (a redirect{' to ' + where if where else ''}),"
                " not 2xx: nothing was delivered; set callback_url to the final address"
            )
        return SendResult(
            remote_id=_remote_id(resp) or convert.reply_id(message.key), conversation=message.conversation
        )


def _error(resp: httpx.Response) -> str:
    try:
        data = resp.json()
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            return str(data["error"])[:300]
    except ValueError:
        pass
    return f"HTTP {resp.status_code}"


def _remote_id(resp: httpx.Response) -> str | None:
    try:
        data = resp.json()
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("message_id"), str) and data["message_id"]:
        return str(data["message_id"])
    return None
