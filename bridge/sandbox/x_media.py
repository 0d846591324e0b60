"""The X emulator's media: DM media customers send (served by ``GET /2/dm_conversations/media/{dm_id}/{media_id}/
{resource_id}``, OAuth 2.0 user token with ``dm.read`` only) and the v2 media upload (``POST /2/media/upload``,
``…/initialize``, ``…/{id}/append``, ``…/{id}/finalize``, ``GET /2/media/upload?command=STATUS``; OAuth 2.0 with
``media.write`` or OAuth 1.0a).

Strict, from X's OpenAPI and docs.x.com: bodies take only the spec's fields and enums; ``media_type`` must suit
``media_category`` and its cap (images 5 MB, GIFs 15 MB, videos 512 MB, read as MiB); appended bytes must add up to
``total_bytes``; videos and GIFs are ``pending``, ``in_progress``, then ``succeeded`` over status polls. A DM takes
a processed ``dm_*`` media its sender uploaded in the last 24 hours (``x_dm``).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.sandbox import x_rules
from bridge.sandbox.x_parts import BRAND_ID, Problem

if TYPE_CHECKING:
    from bridge.sandbox.x import XEmulator

MIB = 1024 * 1024
CATEGORIES = ("amplify_video", "tweet_gif", "tweet_image", "tweet_video", "dm_gif", "dm_image", "dm_video", "subtitles")
MEDIA_TYPES = (
    *("video/mp4", "video/webm", "video/mp2t", "video/quicktime", "text/srt", "text/vtt", "image/jpeg", "image/gif"),
    *("image/bmp", "image/png", "image/webp", "image/pjpeg", "image/tiff", "model/gltf-binary", "model/vnd.usdz+zip"),
)
STILL = ("image/jpeg", "image/pjpeg", "image/png", "image/webp", "image/bmp", "image/tiff")
VIDEO = ("video/mp4", "video/quicktime", "video/webm", "video/mp2t")
# category → (media types it takes, largest size)
RULES = {
    "tweet_image": (STILL, 5 * MIB),
    "dm_image": (STILL, 5 * MIB),
    "tweet_gif": (("image/gif",), 15 * MIB),
    "dm_gif": (("image/gif",), 15 * MIB),
    "tweet_video": (VIDEO, 512 * MIB),
    "dm_video": (VIDEO, 512 * MIB),
    "amplify_video": (VIDEO, 512 * MIB),
    "subtitles": (("text/srt", "text/vtt"), MIB),
}
USABLE_SECONDS = 86_400.0
KEY_PREFIX = {"image": "3", "gif": "16", "video": "7"}


@dataclass
class Upload:
    id: str
    owner: str
    category: str
    media_type: str
    total: int
    created: float
    segments: dict[int, bytes] = field(default_factory=dict)
    finalized: bool = False
    polls: int = 0

    @property
    def kind(self) -> str:
        return "gif" if self.media_type == "image/gif" else "video" if self.media_type in VIDEO else "image"

    @property
    def state(self) -> str | None:
        if not self.finalized:
            return None
        if self.kind == "image":
            return "succeeded"
        return ("pending", "in_progress", "succeeded")[min(self.polls, 2)]

    def data(self) -> bytes:
        return b"".join(self.segments[i] for i in sorted(self.segments))


@dataclass
class DmMedia:
    """Uploads, and the media of DM events (``(dm_id, media_id, resource_id)`` → bytes)."""

    uploads: dict[str, Upload] = field(default_factory=dict)
    files: dict[tuple[str, str, str], bytes] = field(default_factory=dict)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    """v2 media objects by ``media_key``."""
    entities: dict[str, dict[str, Any]] = field(default_factory=dict)
    """v1.1 media entities (webhooks) by ``media_key``."""
    last_id: int = 1_800_000_000_000_000_000

    def new_id(self) -> str:
        self.last_id += 1
        return str(self.last_id)

    def attach(self, dm_id: str, data: bytes, media_type: str, media_id: str = "") -> str:
        """Media of DM event ``dm_id``: stored to serve, and described as X describes it; the ``media_key``."""
        media_id = media_id or self.new_id()
        kind = "gif" if media_type == "image/gif" else "video" if media_type.startswith("video/") else "image"
        ext = {"image/png": "png", "image/webp": "webp"}.get(media_type, "jpg") if kind == "image" else "mp4"
        resource = secrets.token_urlsafe(9).replace("-", "A").replace("_", "B") + "." + ext
        self.files[(dm_id, media_id, resource)] = data
        key = f"{KEY_PREFIX[kind]}_{media_id}"
        kind_name = {"image": "photo", "gif": "animated_gif", "video": "video"}[kind]
        preview = f"https://pbs.twimg.com/dm_video_preview/{media_id}/img/{resource.split('.')[0]}.jpg"
        if kind == "image":
            link = f"https://ton.twitter.com/1.1/ton/data/dm/{dm_id}/{media_id}/{resource}"
            self.objects[key] = {"media_key": key, "type": kind_name, "url": link}
            self.entities[key] = {"id": int(media_id), "id_str": media_id, "type": kind_name, "media_url_https": link}
            return key
        video = f"https://video.twimg.com/dm_{'gif' if kind == 'gif' else 'video'}/{media_id}/vid/480x270/{resource}"
        variants: list[dict[str, Any]] = [
            {"bit_rate": 832000, "content_type": "video/mp4", "url": video + "?tag=1"},
            {"content_type": "application/x-mpegURL", "url": video.rsplit(".", 1)[0] + ".m3u8?tag=1"},
        ]
        self.objects[key] = {"media_key": key, "type": kind_name, "preview_image_url": preview, "variants": variants}
        v1_variants = [{("bitrate" if k == "bit_rate" else k): v for k, v in x.items()} for x in variants]
        self.entities[key] = {
            "id": int(media_id),
            "id_str": media_id,
            "type": kind_name,
            "media_url_https": preview,
            "video_info": {"variants": v1_variants},
        }
        return key

    def usable(self, media_id: object, sender: str, now: float) -> Upload:
        """The upload a DM of ``sender`` may attach, or X's refusal."""
        upload = self.uploads.get(str(media_id))
        if upload is None or upload.owner != sender:
            raise Problem(403, "Forbidden", f"The media {media_id} was not found or does not belong to this user")
        if now - upload.created > USABLE_SECONDS:
            raise Problem(403, "Forbidden", f"The media {media_id} has expired (media are usable for 24 hours)")
        if not upload.category.startswith("dm_"):
            raise Problem(400, "Invalid Request", f"The media {media_id} was not uploaded for DMs (dm_* category)")
        if upload.state != "succeeded":
            raise Problem(400, "Invalid Request", f"The media {media_id} is not ready (processing)")
        return upload


def scopes_of(emu: XEmulator, request: Request) -> frozenset[str] | None:
    """The OAuth 2.0 scopes of the request's user token; None for OAuth 1.0a (already authenticated)."""
    auth = request.headers.get("authorization", "")
    if not auth.startswith("Bearer "):
        return None
    token = auth[7:]
    if token == emu.user_bearer_token:
        return frozenset(emu.user_bearer_scopes)
    held = emu.oauth.access.get(token)
    return frozenset(held[1].split()) if held else frozenset()


def _need(emu: XEmulator, request: Request, scope: str, *, oauth1: bool = True) -> None:
    scopes = scopes_of(emu, request)
    if scopes is None and not oauth1:
        raise Problem(
            403,
            "Unsupported Authentication",
            "Authenticating with OAuth 1.0a User Context is forbidden for this endpoint. "
            "Supported authentication types are [OAuth 2.0 User Context].",
        )
    if scopes is not None and scope not in scopes:
        raise Problem(403, "Forbidden", f"Missing required OAuth 2.0 scope: {scope}")


async def _fields(request: Request, allowed: set[str]) -> dict[str, Any] | Problem:
    """A JSON or multipart body's fields (``media`` as bytes), or the problem with it (raised once admitted)."""
    kind = request.headers.get("content-type", "")
    body: Any
    if kind.startswith("multipart/form-data"):
        form = await request.form(max_part_size=16 * MIB)
        body = {}
        for name, value in form.multi_items():
            body[name] = await value.read() if isinstance(value, UploadFile) else value
    elif kind.startswith("application/json"):
        try:
            body = json.loads(await request.body())
        except ValueError:
            return Problem(400, "Invalid Request", "The request body is not valid JSON")
        if not isinstance(body, dict):
            return Problem(400, "Invalid Request", "The request body must be a JSON object")
        if "media" in body:
            try:
                body["media"] = base64.b64decode(str(body["media"]), validate=True)
            except ValueError:
                return Problem(400, "Invalid Request", "`media` must be base64 in a JSON body")
    else:
        return Problem(400, "Invalid Request", "The body must be application/json or multipart/form-data")
    unknown = sorted(set(body) - allowed)
    if unknown:
        return Problem(400, "Invalid Request", f"The request body has unknown fields: {', '.join(unknown)}")
    return dict(body)


def _given(body: dict[str, Any] | Problem) -> dict[str, Any]:
    if isinstance(body, Problem):
        raise body
    return body


async def _serve(
    emu: XEmulator, request: Request, produce: Callable[[], tuple[dict[str, Any], int]], endpoint: str
) -> Response:
    """Admission (faults, authentication, rate limit), the query rules, then ``produce`` under the world's lock."""
    try:
        headers = await emu._admit(request, "media")
        try:
            x_rules.check_query(endpoint, request.query_params)
        except x_rules.InvalidQuery as exc:
            raise Problem(400, "Invalid Request", exc.message, body=exc.body()) from exc
        with emu._lock:
            data, status = produce()
    except Problem as exc:
        with emu._lock:
            emu.requests.append((request.method, endpoint, exc.status))
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)
    with emu._lock:
        emu.requests.append((request.method, endpoint, status))
    return JSONResponse(data, status_code=status, headers=headers)


def _check(category: object, media_type: object, size: int) -> tuple[str, str]:
    if category not in CATEGORIES:
        raise Problem(400, "Invalid Request", f"`media_category` must be one of [{', '.join(CATEGORIES)}]")
    if media_type not in MEDIA_TYPES:
        raise Problem(400, "Invalid Request", "`media_type` is not a supported media type")
    types, cap = RULES[str(category)]
    if media_type not in types:
        raise Problem(400, "Invalid Request", f"media type {media_type} cannot be uploaded as {category}")
    if size > cap:
        raise Problem(400, "Invalid Request", f"File size exceeds {cap // MIB} MB limit for {category}")
    return str(category), str(media_type)


def _sniff(data: bytes) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def _answer(upload: Upload) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": upload.id,
        "media_key": f"{KEY_PREFIX[upload.kind]}_{upload.id}",
        "expires_after_secs": int(USABLE_SECONDS),
    }
    if upload.finalized:
        data["size"] = upload.total
        if upload.kind != "image":
            data["processing_info"] = {"state": upload.state, "check_after_secs": 1}
            if upload.state == "succeeded":
                data["processing_info"] = {"state": "succeeded", "progress_percent": 100}
    return {"data": data}


def routes(emu: XEmulator) -> list[Route]:
    store = emu.media

    def mine(request: Request) -> Upload:
        media_id = request.path_params.get("id") or request.query_params.get("media_id") or ""
        upload = store.uploads.get(media_id)
        if upload is None or upload.owner != BRAND_ID:
            raise Problem(404, "Not Found Error", f"Could not find media with id: [{media_id}]")
        return upload

    async def simple(request: Request) -> Response:
        body = await _fields(request, {"media", "media_category", "additional_owners"})

        def produce() -> tuple[dict[str, Any], int]:
            _need(emu, request, "media.write")
            fields = _given(body)
            data = fields.get("media")
            if not isinstance(data, bytes) or not data or "media_category" not in fields:
                raise Problem(400, "Invalid Request", "`media` and `media_category` are required")
            category, media_type = _check(fields["media_category"], _sniff(data), len(data))
            upload = Upload(store.new_id(), BRAND_ID, category, media_type, len(data), emu.clock(), {0: data}, True)
            if upload.kind == "video":
                raise Problem(400, "Invalid Request", "Videos must be uploaded in chunks (initialize/append/finalize)")
            store.uploads[upload.id] = upload
            return _answer(upload), 200

        return await _serve(emu, request, produce, "/2/media/upload")

    async def status(request: Request) -> Response:
        def produce() -> tuple[dict[str, Any], int]:
            _need(emu, request, "media.write")
            if request.query_params.get("command", "STATUS") != "STATUS" or "media_id" not in request.query_params:
                raise Problem(400, "Invalid Request", "`media_id` is required")
            upload = mine(request)
            if not upload.finalized:
                raise Problem(400, "Invalid Request", "The upload has not been finalized")
            answer = _answer(upload)
            upload.polls += 1
            return answer, 200

        return await _serve(emu, request, produce, "/2/media/upload")

    async def initialize(request: Request) -> Response:
        json_body = request.headers.get("content-type", "").startswith("application/json")
        allowed = {"additional_owners", "media_category", "media_type", "shared", "total_bytes"}
        body = await _fields(request, allowed)

        def produce() -> tuple[dict[str, Any], int]:
            _need(emu, request, "media.write")
            if not json_body:
                raise Problem(400, "Invalid Request", "The body must be application/json")
            fields = _given(body)
            total = fields.get("total_bytes")
            if isinstance(total, bool) or not isinstance(total, int) or not 0 < total <= 17179869184:
                raise Problem(400, "Invalid Request", "`total_bytes` must be a positive integer")
            category, media_type = _check(fields.get("media_category", "tweet_image"), fields.get("media_type"), total)
            upload = Upload(store.new_id(), BRAND_ID, category, media_type, total, emu.clock())
            store.uploads[upload.id] = upload
            return _answer(upload), 200

        return await _serve(emu, request, produce, "/2/media/upload/initialize")

    async def append(request: Request) -> Response:
        body = await _fields(request, {"media", "segment_index"})

        def produce() -> tuple[dict[str, Any], int]:
            _need(emu, request, "media.write")
            upload = mine(request)
            fields = _given(body)
            try:
                index = int(fields.get("segment_index", ""))
            except (TypeError, ValueError):
                index = -1
            data = fields.get("media")
            if not 0 <= index <= 999 or not isinstance(data, bytes) or not data:
                raise Problem(400, "Invalid Request", "`media` and a `segment_index` of 0 to 999 are required")
            if upload.finalized:
                raise Problem(400, "Invalid Request", "The upload has already been finalized")
            others = sum(len(v) for k, v in upload.segments.items() if k != index)
            if others + len(data) > upload.total:
                raise Problem(400, "Invalid Request", "The appended bytes exceed `total_bytes`")
            upload.segments[index] = data
            return {"data": {"expires_at": int(upload.created + USABLE_SECONDS)}}, 200

        return await _serve(emu, request, produce, "/2/media/upload/{id}/append")

    async def finalize(request: Request) -> Response:
        raw = await request.body()

        def produce() -> tuple[dict[str, Any], int]:
            _need(emu, request, "media.write")
            upload = mine(request)
            if raw:
                raise Problem(400, "Invalid Request", "finalize takes no request body")
            if upload.finalized:
                raise Problem(400, "Invalid Request", "The upload has already been finalized")
            got = sum(len(v) for v in upload.segments.values())
            if got != upload.total or sorted(upload.segments) != list(range(len(upload.segments))):
                raise Problem(
                    400, "Invalid Request", f"File size mismatch: {got} bytes appended, {upload.total} declared"
                )
            upload.finalized = True
            answer = _answer(upload)
            upload.polls += 1
            return answer, 200

        return await _serve(emu, request, produce, "/2/media/upload/{id}/finalize")

    async def download(request: Request) -> Response:
        p = request.path_params
        try:
            await emu._admit(request, "media_read")
            _need(emu, request, "dm.read", oauth1=False)
            if request.query_params:
                raise Problem(400, "Invalid Request", "This endpoint takes no query parameters")
            conversations = {e["id"]: e["dm_conversation_id"] for e in emu.events()}
            with emu._lock:
                data = store.files.get((p["dm_id"], p["media_id"], p["resource_id"]))
            if data is None or BRAND_ID not in conversations.get(p["dm_id"], "").split("-"):
                raise Problem(404, "Not Found Error", "Could not find the requested media")
        except Problem as exc:
            with emu._lock:
                emu.requests.append((request.method, "/2/dm_conversations/media", exc.status))
            return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)
        with emu._lock:
            emu.requests.append((request.method, "/2/dm_conversations/media", 200))
        return Response(data, media_type="application/octet-stream")

    return [
        Route("/2/media/upload", simple, methods=["POST"]),
        Route("/2/media/upload", status, methods=["GET"]),
        Route("/2/media/upload/initialize", initialize, methods=["POST"]),
        Route("/2/media/upload/{id:str}/append", append, methods=["POST"]),
        Route("/2/media/upload/{id:str}/finalize", finalize, methods=["POST"]),
        Route("/2/dm_conversations/media/{dm_id}/{media_id}/{resource_id}", download, methods=["GET"]),
    ]
