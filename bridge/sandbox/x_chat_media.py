"""The X emulator's X Chat media: encrypted uploads and downloads, and customers who send and read files.

Served as X's OpenAPI has them: ``POST /2/chat/media/upload/initialize`` (``conversation_id``, ``total_bytes``
→ ``session_id``, ``media_hash_key``), ``POST /2/chat/media/upload/{id}/append`` (``conversation_id``,
``media_hash_key``, ``segment_index``, ``media`` base64), ``POST /2/chat/media/upload/{id}/finalize``
(``conversation_id``, ``media_hash_key``, ``num_parts``) and ``GET /2/chat/media/{id}/{media_hash_key}`` (the
ciphertext, ``application/octet-stream``). Strict like X: unknown or missing fields, another conversation's
session, segments out of order or past ``total_bytes``, a ``total_bytes`` no chatxdk stream has, a finalize
whose bytes or parts do not add up, a second finalize, an OAuth 2.0 token without ``media.write``: refused.

X never sees plaintext: the customers' apps encrypt with chatxdk's stream cipher under the conversation key
(``customer_sends_file``), and read the brand's files by decrypting them the same way (``files_received_by``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chat_xdk import encrypted_stream_size
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.sandbox.x_parts import BRAND_ID, Problem, invalid

if TYPE_CHECKING:
    from bridge.sandbox.x import XEmulator

PATH_ID = r"^([0-9]{1,19}|[0-9]{1,19}-[0-9]{1,19}|g[0-9]{1,19})$"
MEDIA_HASH_KEY = r"^[a-zA-Z0-9]{1,50}$"
SESSION_ID = r"^[0-9]{1,19}$"
INITIALIZE = {"conversation_id", "total_bytes"}
APPEND = {"conversation_id", "media", "media_hash_key", "segment_index"}
FINALIZE = {"conversation_id", "media_hash_key", "message_id", "num_parts", "ttl_msec"}
MAX_SEGMENT = 5 * 1024 * 1024  # as X's media upload takes per APPEND
MAX_TOTAL = 1024 * 1024 * 1024
MEDIA_TYPES = {"image": 1, "gif": 2, "video": 3, "audio": 4, "file": 5}


@dataclass
class Upload:
    customer: str
    media_hash_key: str
    total: int
    segments: list[bytes] = field(default_factory=list)
    finalized: bool = False

    @property
    def received(self) -> int:
        return sum(map(len, self.segments))


@dataclass
class MediaWorld:
    """Upload sessions by id, and finished media by (customer, media hash key): ciphertext only."""

    uploads: dict[str, Upload] = field(default_factory=dict)
    blobs: dict[tuple[str, str], bytes] = field(default_factory=dict)
    next_session: int = 7_310_000_000_000_000_000

    def new_key(self) -> str:
        return secrets.token_hex(16)


def not_found(what: str) -> Problem:
    return Problem(
        404,
        "Not Found Error",
        f"Could not find {what}",
        body={
            "title": "Not Found Error",
            "detail": f"Could not find {what}",
            "type": "https://api.x.com/2/problems/resource-not-found",
            "resource_type": "media",
        },
    )


def stream_size_ok(total: int) -> bool:
    """Whether ``total`` is the size of some chatxdk stream (what ``encrypted_stream_size`` gives)."""
    low, high = 0, total
    while low < high:  # the smallest plaintext size whose stream is at least ``total`` bytes
        mid = (low + high) // 2
        if encrypted_stream_size(mid) < total:
            low = mid + 1
        else:
            high = mid
    return int(encrypted_stream_size(low)) == total


def customer_of(emu: XEmulator, conversation: Any) -> str:
    """The customer of a 1:1 conversation of the brand named ``a-b`` (or the customer's id alone)."""
    if not isinstance(conversation, str) or not re.match(PATH_ID, conversation) or conversation.startswith("g"):
        raise invalid("conversation_id is not a 1:1 conversation id")
    parts = conversation.split("-")
    if len(parts) == 2 and (BRAND_ID not in parts or parts[0] == parts[1]):
        raise Problem(403, "Forbidden", "You are not a participant of this conversation")
    customer = parts[0] if len(parts) == 1 else next(p for p in parts if p != BRAND_ID)
    if customer not in emu.users:
        raise not_found("the conversation")
    return customer


def _json(raw: bytes, allowed: set[str], required: set[str]) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, RecursionError) as exc:
        raise invalid("The request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise invalid(f"The request body has unknown fields: {', '.join(unknown)}")
    missing = sorted(k for k in required if body.get(k) in (None, ""))
    if missing:
        raise invalid(f"The request body is missing {', '.join(missing)}")
    return body


def needs_media_write(emu: XEmulator, request: Request) -> None:
    """The chat media endpoints' OAuth 2.0 scope: a token issued without ``media.write`` is refused."""
    auth = request.headers.get("authorization", "")
    found = emu.oauth.access.get(auth[7:]) if auth.startswith("Bearer ") else None
    if found is not None and "media.write" not in found[1].split():
        raise Problem(403, "Forbidden", "Missing required scope: media.write")


def _initialize(emu: XEmulator, request: Request, raw: bytes) -> tuple[dict[str, Any], int]:
    needs_media_write(emu, request)
    body = _json(raw, INITIALIZE, INITIALIZE)
    customer = customer_of(emu, body["conversation_id"])
    total = body["total_bytes"]
    if isinstance(total, bool) or not isinstance(total, int) or not 0 < total <= MAX_TOTAL:
        raise invalid("total_bytes must be a positive integer within the media size limit")
    if not stream_size_ok(total):
        raise invalid("total_bytes is not the size of an encrypted stream")
    world = emu.chat.media
    world.next_session += 1
    session, key = str(world.next_session), world.new_key()
    world.uploads[session] = Upload(customer, key, total)
    low, high = sorted((customer, BRAND_ID), key=int)
    return {"data": {"session_id": session, "media_hash_key": key, "conversation_id": f"{low}-{high}"}}, 200


def _session(emu: XEmulator, session: str, body: dict[str, Any]) -> Upload:
    upload = emu.chat.media.uploads.get(session)
    if upload is None:
        raise not_found(f"the upload session [{session[:40]}]")
    if customer_of(emu, body["conversation_id"]) != upload.customer or body["media_hash_key"] != upload.media_hash_key:
        raise invalid("conversation_id and media_hash_key must be those of the upload session")
    if upload.finalized:
        raise invalid("The upload session is already finalized")
    return upload


def _append(emu: XEmulator, request: Request, session: str, raw: bytes) -> tuple[dict[str, Any], int]:
    needs_media_write(emu, request)
    body = _json(raw, APPEND, APPEND)
    upload = _session(emu, session, body)
    index = body["segment_index"]
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= 999:
        raise invalid("segment_index must be an integer from 0 to 999")
    if index != len(upload.segments):
        raise invalid(f"segment_index {index} is out of order (expected {len(upload.segments)})")
    try:
        data = base64.b64decode(str(body["media"]), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid("media must be base64") from exc
    if not data or len(data) > MAX_SEGMENT:
        raise invalid(f"a segment must hold 1 to {MAX_SEGMENT} bytes")
    if upload.received + len(data) > upload.total:
        raise invalid("The segments are larger than total_bytes")
    upload.segments.append(data)
    return {"data": {"expires_at": 0}}, 200


def _finalize(emu: XEmulator, request: Request, session: str, raw: bytes) -> tuple[dict[str, Any], int]:
    needs_media_write(emu, request)
    if not re.match(SESSION_ID, session):
        raise invalid(f"The `id` path parameter value [{session[:40]}] does not match ^[0-9]{{1,19}}$")
    body = _json(raw, FINALIZE, {"conversation_id", "media_hash_key", "num_parts"})
    upload = _session(emu, session, body)
    if not isinstance(body["num_parts"], str) or not body["num_parts"].isdigit():
        raise invalid("num_parts must be a numeric string")
    if int(body["num_parts"]) != len(upload.segments):
        raise invalid(f"num_parts is {body['num_parts']}, {len(upload.segments)} segments were appended")
    if upload.received != upload.total:
        raise invalid(f"{upload.received} bytes were appended, total_bytes is {upload.total}")
    upload.finalized = True
    emu.chat.media.blobs[(upload.customer, upload.media_hash_key)] = b"".join(upload.segments)
    upload.segments = []
    return {"data": {"success": True}}, 200


def routes(emu: XEmulator) -> list[Route]:
    async def initialize(request: Request) -> Response:
        raw = await request.body()
        return await emu._respond(
            request, "send", lambda: _initialize(emu, request, raw), raw, "/2/chat/media/upload/initialize"
        )

    async def append(request: Request) -> Response:
        raw, session = await request.body(), str(request.path_params["id"])
        return await emu._respond(
            request, "send", lambda: _append(emu, request, session, raw), raw, "/2/chat/media/upload/{id}/append"
        )

    async def finalize(request: Request) -> Response:
        raw, session = await request.body(), str(request.path_params["id"])
        return await emu._respond(
            request, "send", lambda: _finalize(emu, request, session, raw), raw, "/2/chat/media/upload/{id}/finalize"
        )

    async def download(request: Request) -> Response:
        conversation, key = str(request.path_params["id"]), str(request.path_params["media_hash_key"])
        found: list[bytes] = []

        def produce() -> tuple[dict[str, Any], int]:
            needs_media_write(emu, request)
            if not re.match(MEDIA_HASH_KEY, key):
                raise invalid(f"The `media_hash_key` path parameter value [{key[:60]}] is not valid")
            blob = emu.chat.media.blobs.get((customer_of(emu, conversation), key))
            if blob is None:
                raise not_found(f"media [{key}] in this conversation")
            found.append(blob)
            return {}, 200

        answer = await emu._respond(request, "read", produce, endpoint="/2/chat/media/{id}/{media_hash_key}")
        if not found:
            return answer
        headers = {k: v for k, v in answer.headers.items() if k.startswith("x-rate-limit")}
        return Response(found[0], media_type="application/octet-stream", headers=headers)

    return [
        Route("/2/chat/media/upload/initialize", initialize, methods=["POST"]),
        Route("/2/chat/media/upload/{id}/append", append, methods=["POST"]),
        Route("/2/chat/media/upload/{id}/finalize", finalize, methods=["POST"]),
        Route("/2/chat/media/{id}/{media_hash_key}", download, methods=["GET"]),
    ]


def encrypt(chat: Any, key: bytes, data: bytes, chunk: int = 64 * 1024) -> bytes:
    """A customer's app encrypting a file for the conversation (chatxdk's stream cipher)."""
    encryptor = chat.stream_encryptor(key)
    out = [encryptor.push(data[i : i + chunk]) for i in range(0, len(data), chunk)]
    return b"".join(out) + encryptor.finish()


def describe(key: str, data: bytes, name: str, media_type: str, dims: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    return {
        "attachment_type": "media",
        "media_hash_key": key,
        "media_type": MEDIA_TYPES[media_type],
        "width": dims[0],
        "height": dims[1],
        "filesize_bytes": len(data),
        "filename": name,
    }
