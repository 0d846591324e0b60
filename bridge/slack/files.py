"""A customer's photo, video or file copied into its thread: streamed from the platform, then Slack's external upload.

``files.upload`` is retired; the flow is ``files.getUploadURLExternal`` (name and length) → the bytes POSTed to the
upload URL it answers → ``files.completeUploadExternal`` (the file shared in the thread, with a comment saying who
sent it). The bytes never sit in memory whole: they stream from the platform into a ``SpooledTemporaryFile`` that
spills to disk past ``SPILL`` bytes, and stream from there to Slack. The cap (``DMBRIDGE_MAX_ATTACHMENT_MB``) is
checked on the declared length and again while reading.

Platform links are fetched only over https, and never from a loopback, private or link-local address (a link in a
webhook body must not reach the bridge's own network) unless ``DMBRIDGE_FETCH_PRIVATE`` allows it, for sources on
a private network. What cannot be copied for good raises :class:`NotCopied`, whose ``note`` the thread shows.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from tempfile import SpooledTemporaryFile
from typing import IO
from urllib.parse import urlsplit

import httpx

from bridge import tls
from bridge.deliveries import Upload
from bridge.domain import Platform
from bridge.errors import Rejected, RetryLater, unreachable
from bridge.slack.api import SlackApi
from bridge.store.tables import Conversation
from bridge.text import slack_escape
from connectors.base import FetchesFiles

MB = 1024 * 1024
SPILL = MB  # bytes kept in memory before the spool moves to a temporary file
CHUNK = 64 * 1024
WORDS = {"image": "a photo", "video": "a video", "audio": "a voice note", "sticker": "a sticker", "story": "a story"}

Resolver = Callable[[str], list[str]]


class NotCopied(Rejected):
    """The file cannot be copied into the thread; ``note`` says why, for the thread."""

    def __init__(self, note: str) -> None:
        super().__init__(note)
        self.note = note


def resolve(host: str) -> list[str]:
    """The addresses ``host`` resolves to (what the connection would use)."""
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)})


def public_only(resolver: Resolver = resolve) -> Callable[[str], bool]:
    """A check that a URL's host is on the public internet: no loopback, private, link-local or reserved address."""

    def allowed(url: str) -> bool:
        host = urlsplit(url).hostname or ""
        try:
            addresses = (
                [ipaddress.ip_address(host)] if _is_ip(host) else [ipaddress.ip_address(a) for a in resolver(host)]
            )
        except (OSError, ValueError):
            return False
        return bool(addresses) and all(a.is_global for a in addresses)

    return allowed


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def size_text(size: int) -> str:
    return f"{size / MB:.1f} MB" if size >= MB / 10 else f"{max(1, size // 1024)} KB"


def fetch(
    http: httpx.Client, url: str, *, cap: int, allowed: Callable[[str], bool], attempt: int
) -> tuple[IO[bytes], int]:
    """The file at ``url`` in a spool (rewound) and its size. A link that is gone (403/404/410: Meta's CDN links
    expire) is tried once more before it counts as gone for good."""
    if urlsplit(url).scheme != "https" or not allowed(url):
        raise NotCopied("its link is not one dmbridge fetches (https on a public address only)")
    spool: IO[bytes] = SpooledTemporaryFile(max_size=SPILL)  # noqa: SIM115  (handed to the caller, who closes it)
    try:
        with http.stream("GET", url) as resp:
            _refuse(resp, attempt, cap)
            total = 0
            for chunk in resp.iter_bytes(CHUNK):
                total += len(chunk)
                if total > cap:
                    raise NotCopied(f"it is larger than the {cap // MB} MB limit")
                spool.write(chunk)
    except httpx.HTTPError as exc:
        spool.close()
        raise unreachable("the platform's file server", exc, changes=False) from exc
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, total


def fetch_private(source: object, upload: Upload, conv: Conversation, cap: int) -> tuple[IO[bytes], int]:
    """A file only its connector can read (X DM media, X Chat media), in a spool (rewound), and its size."""
    if not isinstance(source, FetchesFiles):
        raise NotCopied(f"no {Platform(conv.platform).label} connector here reads its files")
    spool: IO[bytes] = SpooledTemporaryFile(max_size=SPILL)  # noqa: SIM115  (handed to the caller, who closes it)
    try:
        size = source.fetch_file(conv.account, conv.remote_id, upload.url, spool, cap)
    except RetryLater:
        spool.close()
        raise
    except Rejected as exc:
        spool.close()
        raise NotCopied(str(exc)) from exc
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, size


def _refuse(resp: httpx.Response, attempt: int, cap: int) -> None:
    status = resp.status_code
    if status in (403, 404, 410):
        if attempt == 0:
            raise RetryLater(f"the file's link answered {status}; trying once more")
        raise NotCopied(f"its link no longer works (the platform answered {status}; such links expire)")
    if status == 429 or status >= 500:
        raise RetryLater(f"the platform's file server answered {status}")
    if not 200 <= status < 300:
        raise NotCopied(f"the platform answered {status} for it")
    declared = resp.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise NotCopied(f"it is {size_text(int(declared))}, over the {cap // MB} MB limit")


def send_bytes(http: httpx.Client, upload_url: str, spool: IO[bytes], size: int) -> None:
    """POST the spooled bytes to Slack's upload URL, streamed, with their length."""

    def chunks() -> Iterator[bytes]:
        while block := spool.read(CHUNK):
            yield block

    try:
        resp = http.post(upload_url, content=chunks(), headers={"Content-Length": str(size)})
    except httpx.HTTPError as exc:  # nothing is visible until files.completeUploadExternal: a fresh upload is safe
        raise unreachable("Slack's upload URL", exc, changes=False) from exc
    if resp.status_code >= 500 or resp.status_code == 429:
        raise RetryLater(f"Slack's upload URL answered {resp.status_code}")
    if resp.status_code != 200:
        raise Rejected(f"Slack's upload URL refused the file ({resp.status_code})")


def comment(sender: str, kind: str, name: str) -> str:
    """Who sent what, shown with the file (Slack posts it as the bot's, so it names the customer); escaped."""
    return f"{slack_escape(sender)} sent {WORDS.get(kind, 'a file')}: {slack_escape(name)}"


def alt_text(sender: str, kind: str, name: str) -> str | None:
    """Images get alt text: what it is and who sent it (at most 1,000 characters, Slack's limit)."""
    if kind not in ("image", "sticker", "story"):
        return None
    return f"{WORDS.get(kind, 'a photo')} from {sender}: {name}"[:1000]


class Copier:
    """Copies ``Upload`` deliveries into their threads. ``fetcher`` reads platform links (each request, redirects
    included, checked for https and a public address); ``poster`` sends the bytes to Slack's upload URL."""

    def __init__(
        self,
        slack: SlackApi,
        *,
        cap_mb: float,
        timeout: float,
        private_ok: bool = False,
        resolver: Resolver = resolve,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.slack, self.cap = slack, int(cap_mb * MB)
        self.allowed: Callable[[str], bool] = (lambda url: True) if private_ok else public_only(resolver)
        self.fetcher = httpx.Client(
            timeout=timeout,
            follow_redirects=True,
            transport=transport,
            event_hooks={"request": [self._check]},
            verify=tls.verifying(),
        )
        self.poster = httpx.Client(timeout=timeout, transport=transport, verify=tls.verifying())

    def _check(self, request: httpx.Request) -> None:
        if request.url.scheme != "https" or not self.allowed(str(request.url)):
            raise NotCopied("its link leads somewhere dmbridge does not fetch (https on a public address only)")

    def copy(self, upload: Upload, conv: Conversation, attempt: int, source: object = None) -> str:
        """The file fetched (through ``source``, the platform's connector, for a private one) and shared in the
        conversation's thread; its Slack file id."""
        assert conv.thread_ts is not None
        if upload.private:
            spool, size = fetch_private(source, upload, conv, self.cap)
        else:
            spool, size = fetch(self.fetcher, upload.url, cap=self.cap, allowed=self.allowed, attempt=attempt)
        with spool:
            sender = sender_of(upload, conv)
            upload_url, file_id = self.slack.upload_url(
                upload.name, size, alt_text(sender, upload.file_kind, upload.name)
            )
            send_bytes(self.poster, upload_url, spool, size)
        self.slack.complete_upload(
            file_id, upload.name, conv.channel, conv.thread_ts, comment(sender, upload.file_kind, upload.name)
        )
        return file_id

    def find(
        self, upload: Upload, conv: Conversation, *, since: float, known: set[str], bot_user: str = ""
    ) -> str | None:
        if not conv.thread_ts:
            return None
        return self.slack.find_file(
            conv.channel, conv.thread_ts, upload.name, since=since, known=known, bot_user=bot_user
        )

    def close(self) -> None:
        self.fetcher.close()
        self.poster.close()


def sender_of(upload: Upload, conv: Conversation) -> str:
    """Who sent the file, as the thread names people (the brand's own from its app, outside Slack)."""
    if upload.from_brand:
        return f"@{conv.account} (from the {Platform(conv.platform).label} app, outside Slack)"
    return f"{conv.customer_name} ({Platform(conv.platform).label})"


def not_copied_note(upload: Upload, conv: Conversation, reason: str) -> str:
    """The thread's line for a file that could not be copied: what it was, who sent it, why, where to see it."""
    size = f", {size_text(upload.size)}" if upload.size else ""
    return (
        f":paperclip: {slack_escape(sender_of(upload, conv))} sent {WORDS.get(upload.file_kind, 'a file')} "
        f"({slack_escape(upload.name)}{size}) that could not be copied here: {slack_escape(reason)}. "
        f"Open the conversation on {Platform(conv.platform).label} to see it."
    )
