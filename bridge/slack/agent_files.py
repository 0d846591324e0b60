"""An agent's file on its way to the customer: looked up in Slack, checked against the platform's limits, read.

``files.info`` says what the file is now (name, type, size, ``url_private_download``); the platform's
``FileLimits`` are checked on that before a byte moves. The bytes stream from ``url_private_download`` with the
bot token, only from Slack's own hosts (``slack.com`` and its subdomains, or the configured ``SLACK_API_URL``
host), into a temporary file the connector reads and that is deleted after the send. A web page where the file
should be is Slack's sign-in page: the app lacks ``files:read``.

A connector that passes links (``FileLimits.by_link``, generic sources) gets dmbridge's own link instead:
``{DMBRIDGE_PUBLIC_URL}/media/{token}``, the token naming the file and the conversation until an expiry, signed
with a key derived from the bot token (``MediaLinks``); ``GET /media/{token}`` streams the file from Slack.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from bridge import tls
from bridge.domain import AgentFile, FileLimits, OutboundFile, file_kind, safe_file_name
from bridge.errors import AuthFailed, DeliveryError, Rejected, RetryLater, unreachable
from bridge.slack.api import SlackApi
from bridge.slack.files import CHUNK, MB

TOKEN = re.compile(r"[A-Za-z0-9_-]{8,200}\.[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class SlackFile:
    """What ``files.info`` says of an agent's file now."""

    id: str
    name: str
    mimetype: str
    size: int
    url: str


class MediaLinks:
    """Signed, expiring links to agents' files, served by ``GET /media/{token}``."""

    def __init__(self, secret: str, base_url: str, hours: float, clock: Callable[[], float] = time.time) -> None:
        self.key = hmac.new(secret.encode(), b"dmbridge media links v1", hashlib.sha256).digest()
        self.base_url, self.seconds, self.clock = base_url.rstrip("/"), hours * 3600, clock

    def link(self, file_id: str, conversation_id: int) -> str:
        claim = f"{file_id}:{conversation_id}:{int(self.clock() + self.seconds)}".encode()
        body = base64.urlsafe_b64encode(claim).rstrip(b"=").decode()
        return f"{self.base_url}/media/{body}.{self._sign(body)}"

    def read(self, token: str) -> tuple[str, int] | None:
        """The (file id, conversation id) a valid, unexpired token names; None for anything else."""
        if not TOKEN.fullmatch(token):
            return None
        body, _, signature = token.partition(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            file_id, conv, expires = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode().split(":")
            if int(expires) < self.clock():
                return None
            return file_id, int(conv)
        except ValueError:
            return None

    def _sign(self, body: str) -> str:
        digest = hmac.new(self.key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class AgentFiles:
    """Reads agents' files from Slack for the platform side (``bridge.platform_delivery``)."""

    def __init__(
        self,
        slack: SlackApi,
        *,
        token: str,
        api_url: str,
        cap_mb: float,
        timeout: float,
        links: MediaLinks | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.slack, self.cap, self.links = slack, int(cap_mb * MB), links
        api = urlsplit(api_url)
        self.own_origin = (api.scheme, api.netloc)
        self.http = httpx.Client(
            timeout=timeout,
            transport=transport,
            verify=tls.verifying(),
            headers={"Authorization": f"Bearer {token}"},  # httpx drops it on a redirect to another host
            follow_redirects=True,
            event_hooks={"request": [self._check]},
        )

    def _check(self, request: httpx.Request) -> None:
        if not self.slack_host(str(request.url)):
            raise Rejected("Slack pointed the file somewhere that is not Slack; it was not fetched")

    def slack_host(self, url: str) -> bool:
        """Whether ``url`` is on Slack's own hosts (the bot token goes nowhere else)."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if (parts.scheme, parts.netloc) == self.own_origin:
            return True
        return parts.scheme == "https" and (host == "slack.com" or host.endswith(".slack.com"))

    def info(self, file: AgentFile, data: dict[str, Any] | None = None) -> SlackFile:
        data = self.slack.file_info(file.id) if data is None else data
        url = str(data.get("url_private_download") or data.get("url_private") or "")
        size = data.get("size")
        if not url or not isinstance(size, int):
            raise Rejected(f"Slack does not offer {file.name} for download (an external or deleted file?)")
        name = safe_file_name(data.get("name") or file.name, "file")
        return SlackFile(file.id, name, str(data.get("mimetype") or file.mimetype), size, url)

    @contextmanager
    def outbound(self, file: AgentFile, limits: FileLimits, conversation_id: int) -> Iterator[OutboundFile]:
        """The file ready for the connector: on disk (deleted afterwards), or as dmbridge's link."""
        found = self.info(file)
        refusal = limits.refusal(found.name, found.mimetype, found.size)
        if refusal is not None:
            raise Rejected(refusal)
        kind = file_kind(found.mimetype)
        if limits.by_link:
            if self.links is None:
                raise Rejected("files for this source go as links: set DMBRIDGE_PUBLIC_URL to dmbridge's address")
            link = self.links.link(found.id, conversation_id)
            yield OutboundFile(found.name, kind, found.mimetype, found.size, url=link)
            return
        cap = min(self.cap, limits.max_bytes[kind])
        with tempfile.NamedTemporaryFile(prefix="dmbridge-file-") as spool:
            with self.stream(found) as chunks:
                total = 0
                for chunk in chunks:
                    total += len(chunk)
                    if total > cap:
                        raise Rejected(f"{found.name} is larger than the {cap / 1_000_000:g} MB this platform takes")
                    spool.write(chunk)
            spool.flush()
            yield OutboundFile(found.name, kind, found.mimetype, total, path=spool.name)

    @contextmanager
    def stream(self, found: SlackFile) -> Iterator[Iterator[bytes]]:
        """The file's bytes from Slack, as they arrive."""
        if not self.slack_host(found.url):
            raise Rejected("Slack named a download address that is not Slack's; the file was not fetched")
        try:
            with self.http.stream("GET", found.url) as resp:
                _refuse(resp, found)
                yield resp.iter_bytes(CHUNK)
        except httpx.HTTPError as exc:
            raise unreachable("Slack's file server", exc, changes=False) from exc

    def serve(self, token: str, channel_of: Callable[[int], str | None]) -> tuple[SlackFile, Iterator[bytes]] | None:
        """``GET /media/{token}``: the file a valid link names, streamed from Slack, if it is still shared in its
        conversation's channel; None (404) for anything else, a Slack failure included."""
        named = self.links.read(token) if self.links is not None else None
        channel = channel_of(named[1]) if named is not None else None
        if named is None or channel is None:
            return None
        stack = ExitStack()
        try:
            data = self.slack.file_info(named[0])
            if channel not in shared_in(data):
                return None
            found = self.info(AgentFile(named[0], ""), data)
            chunks = stack.enter_context(self.stream(found))
        except DeliveryError:
            stack.close()
            return None

        def body() -> Iterator[bytes]:
            with stack:
                yield from chunks

        return found, body()


def shared_in(data: dict[str, Any]) -> set[str]:
    """The channels ``files.info`` says a file is shared in."""
    found = {str(c) for key in ("channels", "groups") for c in data.get(key) or []}
    for where in (data.get("shares") or {}).values():
        found |= set(where) if isinstance(where, dict) else set()
    return found


def _refuse(resp: httpx.Response, found: SlackFile) -> None:
    status = resp.status_code
    if status == 429 or status >= 500:
        raise RetryLater(f"Slack's file server answered {status}")
    if status in (401, 403):
        raise AuthFailed("Slack refused the bot token for a file download")
    if status != 200:
        raise Rejected(f"Slack answered {status} for {found.name}")
    if resp.headers.get("content-type", "").startswith("text/html") and not found.mimetype.startswith("text/html"):
        raise Rejected("Slack answered its sign-in page instead of the file: the app needs the files:read scope")
