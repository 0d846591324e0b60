"""What the core and the connectors share: frozen types that cross module boundaries, the checks on
customer-supplied links and handles, and a token bucket. No I/O here.

Links and handles are checked before they reach Slack markup. A URL goes inside ``<url|label>`` on the
card and into ``icon_url``: only ``https`` URLs with a host and none of ``<``, ``>``, ``|``, whitespace or
control characters are kept; anything else is dropped (the card then shows no link). Handles follow each
platform's own rules, so a forged one cannot smuggle markup into ``https://x.com/{handle}``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit


class Platform(StrEnum):
    X = "x"
    MESSENGER = "messenger"
    INSTAGRAM = "instagram"
    GENERIC = "generic"

    @property
    def label(self) -> str:
        return {"x": "X", "messenger": "Messenger", "instagram": "Instagram", "generic": "Webhook"}[self.value]


class Status(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Customer:
    """The person on the other side of a conversation."""

    id: str
    name: str
    handle: str | None = None
    avatar_url: str | None = None
    profile_url: str | None = None


FILE_KINDS = ("image", "video", "audio", "file", "sticker", "story")
MAX_FILE_NAME = 120


@dataclass(frozen=True)
class InboundFile:
    """A photo, video, voice note or file that came with a customer's message: fetched from ``url`` (https)
    and copied into the thread (``bridge.slack.files``)."""

    id: str
    """The platform's media id, or a stable hash of the URL: with the message's, the upload's dedupe key."""
    url: str
    kind: str = "file"
    """One of ``FILE_KINDS``."""
    name: str = ""
    """A file name safe to show (``safe_file_name``); "" to make one from the kind."""
    size: int | None = None
    content_type: str | None = None
    private: bool = False
    """Read through the platform's connector (``connectors.base.FetchesFiles``: X DM media needs the user
    token, X Chat media the conversation key); ``url`` is then the connector's own reference."""


@dataclass(frozen=True)
class AgentFile:
    """A file an agent attached to a thread reply, as the Slack event named it (Slack's ``files[]``)."""

    id: str
    name: str
    mimetype: str = ""
    size: int | None = None


@dataclass(frozen=True)
class OutboundFile:
    """An agent's file on its way to the customer: the bytes in a local file the core filled from Slack
    (``path``, read it in chunks), or, for a connector that passes links (``FileLimits.by_link``), dmbridge's
    signed, expiring link to it (``url``)."""

    name: str
    kind: str
    """``image``, ``video``, ``audio`` or ``file`` (``file_kind``)."""
    content_type: str
    size: int
    path: str = ""
    url: str = ""


def file_kind(content_type: str) -> str:
    """The kind of file a MIME type names, as the platforms group them."""
    major = content_type.split("/", 1)[0].lower()
    return major if major in ("image", "video", "audio") else "file"


def safe_file_name(name: object, kind: str, default_ext: str = "") -> str:
    """A file name that shows as itself: no path, no control or markup characters, at most 120 characters;
    ``{kind}{ext}`` when nothing is left."""
    text = name if isinstance(name, str) else ""
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(c for c in text if unicodedata.category(c)[0] not in "CZ" or c == " ").strip(" .")
    text = "".join(c for c in text if c not in "<>|*`&")
    if not text:
        text = (kind if kind in FILE_KINDS else "file") + default_ext
    if len(text) > MAX_FILE_NAME:
        stem, dot, ext = text.rpartition(".")
        ext = ext if dot and len(ext) <= 10 else ""
        text = (stem if dot else text)[: MAX_FILE_NAME - len(ext) - 1] + ("." + ext if ext else "")
    return text


@dataclass(frozen=True)
class InboundMessage:
    """One message of a platform conversation, as a connector hands it to the core.

    ``from_brand`` is True for messages the brand account itself sent (our own
    sends come back this way; the core drops the ones it recognises).
    """

    platform: Platform
    account: str
    remote_id: str
    conversation: str
    customer: Customer
    text: str
    sent_at: datetime
    from_brand: bool = False
    attachments: tuple[str, ...] = ()
    needs_profile: bool = False
    """Only the customer's id is known: the core asks the platform's ProfileLookup (at most daily)."""
    via: str = ""
    """How it came, where a platform has two ways: X's ``dm`` (legacy DMs) or ``xchat`` (encrypted)."""
    files: tuple[InboundFile, ...] = ()
    """Photos, videos and files to copy into the thread; ``attachments`` counts those that cannot be fetched."""
    unverified: bool = False
    """Its signature did not verify (X Chat): the thread shows a warning, never ``text`` as the customer's."""
    quick_reply: str = ""
    """The payload of the quick reply the customer tapped (Meta's ``message.quick_reply.payload``), if any."""


@dataclass(frozen=True)
class SealedEvent:
    """An encrypted X Chat event as X delivered it (webhook or events history), stored before it is opened."""

    account: str
    conversation: str
    event_id: str
    encoded_event: str
    """Base64 of X's Thrift event, exactly as received."""


@dataclass(frozen=True)
class Opened:
    """What opening one sealed event gave: a message to mirror, nothing (a key change, our own key set-up),
    or the reason it cannot be opened (``error``; never retried: garbage, not addressed to us)."""

    event_id: str
    message: InboundMessage | None = None
    error: str | None = None


@dataclass(frozen=True)
class Batch:
    """What one poll or webhook delivery found: messages oldest first, and the cursor to store with them
    (None for webhooks)."""

    messages: tuple[InboundMessage, ...]
    cursor: str | None
    sealed: tuple[SealedEvent, ...] = ()
    """X Chat events to store sealed; the opener decrypts them later (``bridge.pollers.Opener``)."""


@dataclass(frozen=True)
class OutboundMessage:
    """One piece of text for a customer."""

    platform: Platform
    account: str
    conversation: str
    recipient_id: str
    text: str
    last_inbound_at: float | None = None
    """Epoch seconds of the customer's newest message (Meta's messaging window), None if they never wrote."""
    key: str = ""
    """Stable across retries of the same delivery (the outbox key): for receivers that deduplicate."""
    via: str = ""
    """The way the customer last wrote (``InboundMessage.via``): X replies go back the same way."""
    file: OutboundFile | None = None
    """One file with the text ("" when the file goes alone), for connectors whose ``Limits.files`` take files."""
    quick_replies: tuple[tuple[str, str], ...] = ()
    """(title, payload) buttons offered with the text where the platform has them (Meta, X Chat); others send the
    text."""


@dataclass(frozen=True)
class SendResult:
    remote_id: str
    conversation: str | None = None


@dataclass(frozen=True)
class FileLimits:
    """Which files a platform takes from us, as its documentation states them."""

    max_bytes: dict[str, int]
    """Largest file per kind (``image``, ``video``, ``audio``, ``file``), in bytes (a platform's "MB" read as
    10^6, the safe side); a kind not listed is not accepted."""
    types: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """The MIME types accepted per kind; a kind not listed here takes any type."""
    with_text: bool = False
    """One message carries text and one file (X); otherwise each file is a message of its own (Meta)."""
    by_link: bool = False
    """The connector passes a link to the file (``OutboundFile.url``), not its bytes (generic sources)."""
    label: str = ""
    """How to name the platform in a refusal ("Instagram")."""
    type_bytes: dict[str, int] = field(default_factory=dict)
    """Largest file of one MIME type where it differs from its kind's (X: GIFs up to 15 MB, other images 5 MB)."""

    def refusal(self, name: str, content_type: str, size: int | None) -> str | None:
        """Why ``name`` cannot go to this platform (kind, type or size), or None when it can."""
        kind = file_kind(content_type)
        words = {"image": "images", "video": "videos", "audio": "audio files", "file": "other files"}
        cap = self.max_bytes.get(kind)
        if cap is None:
            return f"{self.label} does not take {words[kind]} ({name})"
        cap = self.type_bytes.get(content_type.lower(), cap)
        allowed = self.types.get(kind)
        if allowed and content_type.lower() not in allowed:
            kinds = ", ".join(t.split("/", 1)[1] for t in allowed)
            return f"{self.label} takes {words[kind]} as {kinds} only; {name} is {content_type or 'of unknown type'}"
        if size is not None and size > cap:
            return f"{self.label} takes {words[kind]} up to {cap / 1_000_000:g} MB; {name} is {size / 1_000_000:.1f} MB"
        return None


@dataclass(frozen=True)
class Limits:
    """What a platform accepts in one message."""

    max_chars: int
    count_bytes: bool = False
    extra: dict[str, int] = field(default_factory=dict)
    files: FileLimits | None = None
    """None: the platform takes text only from us."""


def limits_of(limits: dict[str, Limits], platform: str, via: str | None) -> Limits | None:
    """The limits a reply to a customer of ``platform`` who last wrote by ``via`` must keep."""
    return limits.get(f"{platform}:{via}") or limits.get(platform)


MAX_URL = 2000
# X: "Your username cannot be longer than 15 characters … can only contain alphanumeric characters
# (letters A-Z, numbers 0-9) with the exception of underscores".
X_HANDLE = re.compile(r"[A-Za-z0-9_]{1,15}")
# Instagram: at most 30 characters, letters, numbers, periods and underscores.
INSTAGRAM_HANDLE = re.compile(r"[A-Za-z0-9._]{1,30}")
# Generic sources document none: a short run of visible characters, no markup.
GENERIC_HANDLE = re.compile(r"[^\s<>|&*~`@]{1,64}")


def safe_https_url(url: object) -> str | None:
    """``url`` when it is an https URL that cannot break out of Slack's ``<…|…>``; else None."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        return None
    if any(c in "<>|" or c.isspace() or unicodedata.category(c)[0] in "CZ" for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() != "https" or not parts.hostname or parts.username or parts.password:
        return None
    return url


def valid_handle(platform: Platform | str, handle: object) -> str | None:
    """``handle`` (without "@") when it follows the platform's username rules; else None."""
    if not isinstance(handle, str):
        return None
    name = handle.removeprefix("@")
    if any(unicodedata.category(c)[0] in "CZ" for c in name):  # controls, bidi overrides, odd spaces
        return None
    rule = {Platform.X: X_HANDLE, Platform.INSTAGRAM: INSTAGRAM_HANDLE}.get(Platform(platform), GENERIC_HANDLE)
    return name if rule.fullmatch(name) else None


def profile_url(platform: Platform | str, handle: str | None) -> str | None:
    """The public profile page of a valid handle, where the platform has one."""
    name = valid_handle(platform, handle) if handle else None
    if name is None:
        return None
    base = {Platform.X: "https://x.com/", Platform.INSTAGRAM: "https://www.instagram.com/"}.get(Platform(platform))
    return base + name if base else None


@dataclass
class Pacer:
    """``rate`` posts per second per key with bursts of ``burst``; ``pause`` obeys a Retry-After."""

    rate: float
    burst: int
    _tokens: dict[str, float] = field(default_factory=dict)
    _stamp: dict[str, float] = field(default_factory=dict)
    _paused: dict[str, float] = field(default_factory=dict)

    def wait(self, key: str, now: float) -> float:
        """Seconds until a post to ``key`` may go (0 when it may go now)."""
        if self.rate <= 0:
            return 0.0
        paused = self._paused.get(key, 0.0) - now
        tokens = self._refill(key, now)
        need = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
        return max(paused, need, 0.0)

    def take(self, key: str, now: float) -> None:
        if self.rate <= 0:
            return
        self._tokens[key] = self._refill(key, now) - 1

    def pause(self, key: str, until: float) -> None:
        self._paused[key] = max(self._paused.get(key, 0.0), until)
        self._tokens[key] = 0.0

    def tracked(self) -> int:
        """How many keys hold state (callers keyed by something unbounded reset past a size)."""
        return len(self._stamp)

    def _refill(self, key: str, now: float) -> float:
        last = self._stamp.get(key, now)
        tokens = min(float(self.burst), self._tokens.get(key, float(self.burst)) + (now - last) * self.rate)
        self._tokens[key], self._stamp[key] = tokens, now
        return tokens
