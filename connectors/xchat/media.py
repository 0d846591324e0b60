"""X Chat media: photos, videos, voice notes and files, encrypted under the conversation key.

X's Chat docs (docs.x.com/xchat/media): media uses *the same conversation key* as the text, encrypted with
chatxdk's stream cipher (``StreamEncryptor`` / ``StreamDecryptor``), uploaded through
``/2/chat/media/upload/initialize`` → ``/{id}/append`` (segments, base64 in JSON) → ``/{id}/finalize``, and
named in the encrypted message by its ``media_hash_key`` (chatxdk's ``media`` attachment descriptor). Download
is ``GET /2/chat/media/{conversation}/{media_hash_key}`` (ciphertext), decrypted with the key *of the version
the message was encrypted under* (``key_version`` of the opened event), not the newest.

Our reference to a customer's file (``InboundFile.url``) is ``xchat:{conversation}:{key version}:{media hash
key}:{declared size}``: no key material. It is stored in the clear (the ``Upload`` delivery), so the key is
found again when the file is fetched, from the conversation's key events we hold or read again.
"""

from __future__ import annotations

import mimetypes
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol

from chat_xdk import detect_image_dimensions, detect_mime_type, encrypted_stream_size

from bridge.domain import FileLimits, InboundFile, OutboundFile, file_kind, safe_file_name
from bridge.errors import Rejected

if TYPE_CHECKING:
    from connectors.xchat.api import ChatApi

CHAT_REF = "xchat:"
"""How X Chat media references begin (``InboundFile.url``)."""
REF = re.compile(r"xchat:([1-9][0-9]{0,18}-[1-9][0-9]{0,18}):([0-9]{1,20}):([A-Za-z0-9]{1,50}):([0-9]{1,15})")
MEDIA_HASH_KEY = re.compile(r"[A-Za-z0-9]{1,50}")  # the spec's pattern for the download path

MB = 1_000_000
# X documents no X Chat file limits (docs.x.com/xchat/media is silent): legacy DMs' photo limit (5 MB) for
# images, and caps of our own for the rest, well under the 1,000 segments an upload may have.
LIMITS = FileLimits(
    max_bytes={"image": 5 * MB, "video": 100 * MB, "audio": 25 * MB, "file": 25 * MB},
    types={
        "image": ("image/jpeg", "image/png", "image/gif", "image/webp"),
        "video": ("video/mp4", "video/quicktime"),
    },
    with_text=True,
    label="X Chat",
)

SEGMENT = 2 * 1024 * 1024
"""Ciphertext bytes per ``append`` (its ``segment_index`` goes to 999)."""
READ = 256 * 1024
"""Plaintext bytes read from the file per ``StreamEncryptor.push``."""
HEAD = 256 * 1024
"""Bytes read first to detect the type and an image's dimensions."""

# chatxdk's media types (the Thrift enum of a media attachment), and what each is in dmbridge
MEDIA_TYPES = {"image": 1, "gif": 2, "video": 3, "audio": 4, "file": 5}
KINDS = {"image": "image", "gif": "image", "video": "video", "audio": "audio", "file": "file", "svg": "file"}
DEFAULT_EXT = {"image": ".jpg", "gif": ".gif", "video": ".mp4", "audio": ".m4a", "file": "", "svg": ".svg"}


@dataclass(frozen=True)
class MediaRef:
    """Where a customer's file is and which key opens it."""

    conversation: str
    key_version: str
    media_hash_key: str
    size: int = 0
    """The plaintext size the sender declared (0: not said); checked against the cap before any download."""

    def __str__(self) -> str:
        return f"{CHAT_REF}{self.conversation}:{self.key_version}:{self.media_hash_key}:{self.size}"


def parse_ref(ref: str) -> MediaRef:
    """``ref`` as a ``MediaRef``; ValueError when it is not one of ours."""
    found = REF.fullmatch(ref) if isinstance(ref, str) else None
    if found is None:
        raise ValueError("not an X Chat media reference")
    conversation, version, key, size = found.groups()
    low, high = conversation.split("-")
    if int(low) >= int(high):
        raise ValueError("not a canonical conversation id")
    return MediaRef(conversation, version, key, int(size))


def files_of(opened: dict[str, Any], conversation: str) -> tuple[tuple[InboundFile, ...], int]:
    """The media attachments of an opened message as files to copy, and how many other attachments it has
    (link cards, posts: counted, not fetched)."""
    found: list[InboundFile] = []
    others = 0
    version = str(opened.get("key_version") or "")
    for item in _attachments(opened):
        if item is None:
            others += 1
            continue
        key, media_type = item.get("media_hash_key"), str(item.get("media_type") or "file").lower()
        if not isinstance(key, str) or not MEDIA_HASH_KEY.fullmatch(key) or not version.isdigit():
            others += 1
            continue
        declared = item.get("filesize_bytes")
        size = declared if isinstance(declared, int) and 0 < declared < 10**15 else 0
        kind = KINDS.get(media_type, "file")
        name = safe_file_name(item.get("filename"), kind, DEFAULT_EXT.get(media_type, ""))
        guessed = mimetypes.guess_type(name)[0] or ("image/gif" if media_type == "gif" else None)
        ref = MediaRef(conversation, version, key, size)
        found.append(
            InboundFile(
                id=key, url=str(ref), kind=kind, name=name, size=size or None, content_type=guessed, private=True
            )
        )
    return tuple(found), others


def _attachments(opened: dict[str, Any]) -> Iterator[dict[str, Any] | None]:
    """The opened event's media attachments as chatxdk lists them (``attachments``: ``attachment_type`` Media,
    ``media_type`` image/gif/video/audio/file/svg), or from the message content (``content.attachments[].media``,
    ``type`` IMAGE…) when only that is there; None for each attachment that is not media."""
    listed = opened.get("attachments")
    if isinstance(listed, list):
        for item in listed:
            media = isinstance(item, dict) and str(item.get("attachment_type") or "").lower() == "media"
            yield item if media else None
        return
    content = opened.get("content")
    listed = content.get("attachments") if isinstance(content, dict) else None
    for item in listed if isinstance(listed, list) else []:
        described = item.get("media") if isinstance(item, dict) else None
        yield ({**described, "media_type": described.get("type")} if isinstance(described, dict) else None)


def media_type(content_type: str) -> int:
    """chatxdk's media type for a MIME type."""
    if content_type.lower() == "image/gif":
        return MEDIA_TYPES["gif"]
    return MEDIA_TYPES[file_kind(content_type)]


def attachment(file: OutboundFile, media_hash_key: str, size: int, head: bytes) -> dict[str, Any]:
    """chatxdk's media attachment descriptor for an uploaded file (``encrypt_message(attachments=[…])``):
    type and dimensions from the bytes where they tell (X's advice), else from what Slack said."""
    content_type = detect_mime_type(head) or file.content_type or "application/octet-stream"
    dims = detect_image_dimensions(head) if content_type.startswith("image/") else None
    width, height = dims if dims else (0, 0)
    return {
        "attachment_type": "media",
        "media_hash_key": media_hash_key,
        "media_type": media_type(content_type),
        "width": int(width),
        "height": int(height),
        "filesize_bytes": size,
        "filename": safe_file_name(file.name, file.kind),
    }


class Pushes(Protocol):
    def push(self, data: bytes, /) -> bytes: ...

    def finish(self) -> bytes: ...


def encrypted_segments(source: IO[bytes], encryptor: Pushes, size: int, segment: int = SEGMENT) -> Iterator[bytes]:
    """The file's ciphertext in segments of ``segment`` bytes (the last one shorter), read and encrypted chunk by
    chunk; Rejected when the file does not have the ``size`` bytes it was announced with."""
    buffer = bytearray()
    read = 0
    while block := source.read(READ):
        read += len(block)
        buffer += encryptor.push(block)
        while len(buffer) >= segment:
            yield bytes(buffer[:segment])
            del buffer[:segment]
    buffer += encryptor.finish()
    if read != size:
        raise Rejected(f"the file changed while it was being sent ({read} bytes, not {size})")
    while buffer:
        yield bytes(buffer[:segment])
        del buffer[:segment]


def upload_size(path: str) -> tuple[int, int]:
    """A local file's plaintext size and the ciphertext size X is told at ``initialize``."""
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise Rejected(f"the file to send is not readable: {exc.strerror}") from exc
    return size, int(encrypted_stream_size(size))


MIB = 1024 * 1024  # the copier's cap (``DMBRIDGE_MAX_ATTACHMENT_MB``) counts these


def too_large(size: int, cap: int) -> str:
    """Why a file is not copied, in the words the copier uses for a link over the cap."""
    shown = f"{size / MIB:.1f} MB" if size >= MIB / 10 else f"{max(1, size // 1024)} KB"
    return f"it is {shown}, over the {cap / MIB:.3g} MB limit"


def decrypt_into(chunks: Iterable[bytes], decryptor: Pushes, sink: IO[bytes], cap: int) -> int:
    """Ciphertext chunks decrypted into ``sink`` as they come; the plaintext's size. Rejected over ``cap`` or
    when the stream does not decrypt (altered, cut short, another key): nothing of it is to be shown."""
    total = 0
    try:
        for chunk in chunks:
            plain = decryptor.push(chunk)
            total += len(plain)
            if total > cap:
                raise Rejected(too_large(total, cap))
            sink.write(plain)
        plain = decryptor.finish()
    except ValueError as exc:
        raise Rejected("it does not decrypt (altered on the way, or not encrypted for this conversation)") from exc
    total += len(plain)
    if total > cap:
        raise Rejected(too_large(total, cap))
    sink.write(plain)
    return total


def upload(api: ChatApi, conversation: str, file: OutboundFile, encryptor: Pushes) -> dict[str, Any]:
    """``file`` (``path``) encrypted chunk by chunk and uploaded (initialize → append each segment → finalize);
    the attachment descriptor that names it in the message."""
    if not file.path:
        raise Rejected("X Chat takes the file itself, not a link to it")
    size, total = upload_size(file.path)
    refusal = LIMITS.refusal(file.name, file.content_type, size)
    if refusal is not None:
        raise Rejected(refusal)
    with open(file.path, "rb") as source:
        head = source.read(HEAD)
        source.seek(0)
        session, key = api.upload_initialize(conversation, total)
        parts = 0
        for index, segment in enumerate(encrypted_segments(source, encryptor, size)):
            api.upload_append(session, conversation, key, index, segment)
            parts += 1
    api.upload_finalize(session, conversation, key, parts)
    return attachment(file, key, size, head)


def check_length(declared: str, cap: int) -> None:
    """Rejected before the body is read when the ciphertext's ``Content-Length`` says the file is over ``cap``."""
    if declared.isdigit() and int(declared) > encrypted_stream_size(cap):
        raise Rejected(too_large(int(declared), cap))
