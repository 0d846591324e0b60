"""X legacy DM media, pure: customers' photos, GIFs and videos as ``InboundFile`` references, and what X takes
from us (``FILE_LIMITS``, the upload's ``media_category``).

Inbound media is read with the account's user token from ``GET /2/dm_conversations/media/{dm_id}/{media_id}/
{resource_id}`` on the configured X API host (docs.x.com "Download DM Media": ``dm_id`` the DM event, ``media_id``
the media, ``resource_id`` the media file's name with its extension, ``[a-zA-Z0-9_.-]{1,50}``). The name is the
last part of the link X gives for the media: ``url`` of a v2 media object (``expansions=attachments.media_keys``) or
``media_url_https`` of a v1.1 media entity (Account Activity webhooks), for videos and GIFs the mp4 variant's.
Media whose link gives no such name is counted in ``InboundMessage.attachments`` (shown, not copied).

X serves an animated GIF as an mp4 video, so it is copied as a video.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from bridge.domain import FileLimits, InboundFile, safe_file_name

MEDIA_FIELDS = ["media_key", "type", "url", "preview_image_url", "variants"]
MEDIA_EXPANSION = "attachments.media_keys"
MEDIA_PATH = "/2/dm_conversations/media/"
MEDIA_ID = re.compile(r"[0-9]{1,19}")
RESOURCE_ID = re.compile(r"[a-zA-Z0-9_.-]{1,50}")

MB = 1_000_000  # X's "MB" read as 10^6: the safe side (FileLimits)
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif")
VIDEO_TYPES = ("video/mp4",)
# docs.x.com, media "Best practices" and "Introduction": images JPG, PNG, GIF, WEBP up to 5 MB, animated GIFs up
# to 15 MB, videos (MP4) up to 512 MB; DMs take one of them with the text, no audio and no other files
FILE_LIMITS = FileLimits(
    max_bytes={"image": 5 * MB, "video": 512 * MB},
    types={"image": IMAGE_TYPES, "video": VIDEO_TYPES},
    type_bytes={"image/gif": 15 * MB},
    with_text=True,
    label="X",
)


def category(content_type: str) -> str:
    """The upload's ``media_category`` for a DM: ``dm_gif``, ``dm_video`` or ``dm_image``."""
    kind = content_type.lower()
    if kind == "image/gif":
        return "dm_gif"
    return "dm_video" if kind.startswith("video/") else "dm_image"


def media_ref(base_url: str, dm_id: str, media_id: str, resource_id: str) -> str:
    return f"{base_url.rstrip('/')}{MEDIA_PATH}{dm_id}/{media_id}/{resource_id}"


def ref_allowed(base_url: str, ref: str) -> bool:
    """Whether ``ref`` is a DM media URL on the configured X API host: the only place the user token goes."""
    try:
        base, url = urlsplit(base_url), urlsplit(ref)
    except ValueError:
        return False
    if (url.scheme, url.netloc) != (base.scheme, base.netloc) or url.query or url.fragment or url.username:
        return False
    prefix = base.path.rstrip("/") + MEDIA_PATH
    if not url.path.startswith(prefix):
        return False
    parts = url.path[len(prefix) :].split("/")
    return (
        len(parts) == 3
        and all(MEDIA_ID.fullmatch(p) for p in parts[:2])
        and RESOURCE_ID.fullmatch(parts[2]) is not None
        and parts[2] not in (".", "..")
    )


def _resource(link: object) -> str | None:
    if not isinstance(link, str) or not link:
        return None
    try:
        last = urlsplit(link).path.rsplit("/", 1)[-1]
    except ValueError:
        return None
    return last if RESOURCE_ID.fullmatch(last) and last not in (".", "..") else None


def _best_mp4(variants: object, rate_key: str) -> str | None:
    """The link of the mp4 variant with the highest bit rate (the playlist variants have none)."""
    items = [v for v in variants if isinstance(v, dict)] if isinstance(variants, list) else []
    mp4 = [v for v in items if v.get("content_type") == "video/mp4" and isinstance(v.get("url"), str)]
    if not mp4:
        return None
    best = max(mp4, key=lambda v: rate if isinstance(rate := v.get(rate_key), int) else -1)
    return str(best["url"])


CONTENT_TYPES = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
}


def _file(base_url: str, dm_id: str, media_id: str, kind: str, link: object) -> InboundFile | None:
    resource = _resource(link)
    if resource is None or not MEDIA_ID.fullmatch(media_id) or not MEDIA_ID.fullmatch(dm_id):
        return None
    ext = resource.rsplit(".", 1)[-1].lower() if "." in resource else ""
    if kind == "photo":
        content_type = CONTENT_TYPES.get(ext, "image/jpeg")
        name = f"photo-{media_id}.{ext if ext in CONTENT_TYPES else 'jpg'}"
        file_kind = "image"
    else:  # video, animated_gif: both mp4
        content_type, file_kind = "video/mp4", "video"
        name = f"{'gif' if kind == 'animated_gif' else 'video'}-{media_id}.mp4"
    return InboundFile(
        id=media_id,
        url=media_ref(base_url, dm_id, media_id, resource),
        kind=file_kind,
        name=safe_file_name(name, file_kind),
        content_type=content_type,
        private=True,
    )


def from_v2(base_url: str, dm_id: str, media: dict[str, Any]) -> InboundFile | None:
    """A v2 media object (``includes.media``) of DM event ``dm_id``; None when it cannot be fetched."""
    key = str(media.get("media_key") or "")
    media_id = key.rsplit("_", 1)[-1]
    kind = media.get("type")
    if kind == "photo":
        return _file(base_url, dm_id, media_id, "photo", media.get("url"))
    if kind in ("video", "animated_gif"):
        return _file(base_url, dm_id, media_id, str(kind), _best_mp4(media.get("variants"), "bit_rate"))
    return None


def from_v1(base_url: str, dm_id: str, media: dict[str, Any]) -> InboundFile | None:
    """A v1.1 media entity (Account Activity ``message_data.attachment.media``); None when it cannot be fetched."""
    media_id = str(media.get("id_str") or media.get("id") or "")
    kind = media.get("type")
    if kind == "photo":
        return _file(base_url, dm_id, media_id, "photo", media.get("media_url_https"))
    if kind in ("video", "animated_gif"):
        info = media.get("video_info")
        variants = info.get("variants") if isinstance(info, dict) else None
        return _file(base_url, dm_id, media_id, str(kind), _best_mp4(variants, "bitrate"))
    return None


def media_by_key(includes: object) -> dict[str, dict[str, Any]]:
    """``includes.media`` by ``media_key``."""
    items = includes.get("media") if isinstance(includes, dict) else None
    found: dict[str, dict[str, Any]] = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("media_key"), str):
            found[item["media_key"]] = item
    return found
