"""X legacy DM media over the wire: customers' media read with the user token, agents' files uploaded.

tweepy 4.17 has no v2 media calls and no streaming, so these go through the client's own requests session (the
configured X API host, the same timeout) with the client's credential: the OAuth 2.0 user token, or an OAuth 1.0a
signature (X's upload takes both; the DM media download only the OAuth 2.0 user token, scope ``dm.read``). Failures
are raised as tweepy's exceptions, so ``api.call`` translates them like every other X call.

Upload (docs.x.com "Media upload", OpenAPI ``/2/media/upload*``): ``POST /2/media/upload/initialize`` (JSON
``media_type``, ``total_bytes``, ``media_category``) → ``POST /2/media/upload/{id}/append`` per chunk (multipart
``segment_index`` 0–999 and ``media``) → ``POST /2/media/upload/{id}/finalize`` → while ``processing_info.state``
is ``pending`` or ``in_progress``, wait ``check_after_secs`` and ``GET /2/media/upload?command=STATUS&media_id=``.
The file is read a chunk at a time, never whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import requests
import tweepy

from bridge.domain import OutboundFile
from bridge.errors import Rejected, RetryLater
from connectors.x.api import TWEEPY_HOST
from connectors.x.media import category

READ_CHUNK = 64 * 1024
UPLOAD_CHUNK = 1024 * 1024  # 512 MB, X's largest video, in at most 489 segments (segment_index ≤ 999)
MAX_SEGMENTS = 1000
PROCESSING_SECONDS = 600.0  # longer than this and the send is tried again later
MB = 1024 * 1024

ERRORS: dict[int, type[tweepy.HTTPException]] = {
    400: tweepy.BadRequest,
    401: tweepy.Unauthorized,
    403: tweepy.Forbidden,
    404: tweepy.NotFound,
    429: tweepy.TooManyRequests,
}


@dataclass
class Wire:
    """How to reach X with the connector's credential: its tweepy client and whether it signs OAuth 1.0a."""

    client: tweepy.Client
    user_auth: bool
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    chunk: int = UPLOAD_CHUNK
    calls: list[str] = field(default_factory=list)

    def request(self, method: str, url: str, *, stream: bool = False, **kwargs: Any) -> requests.Response:
        """One call to X; a refusal raises the tweepy exception for its status (the body still unread)."""
        headers = {"User-Agent": self.client.user_agent}
        auth = None
        if self.user_auth:
            client = self.client
            auth = tweepy.OAuth1UserHandler(
                client.consumer_key, client.consumer_secret, client.access_token, client.access_token_secret
            ).apply_auth()
        else:
            headers["Authorization"] = f"Bearer {self.client.bearer_token}"
        self.calls.append(f"{method} {url.split('?', 1)[0]}")
        resp = self.client.session.request(method, url, headers=headers, auth=auth, stream=stream, **kwargs)
        status = resp.status_code
        if 200 <= status < 300:
            return resp
        resp.content  # noqa: B018  (read the problem document before the connection goes back to the pool)
        if status >= 500:
            raise tweepy.TwitterServerError(resp)
        raise ERRORS.get(status, tweepy.HTTPException)(resp)


def download(wire: Wire, ref: str, sink: IO[bytes], cap: int) -> int:
    """Stream the media at ``ref`` into ``sink``; more than ``cap`` bytes raises Rejected."""
    with wire.request("GET", ref, stream=True) as resp:
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise Rejected(f"it is {size_text(int(declared))}, over the {size_text(cap)} limit")
        total = 0
        for chunk in resp.iter_content(READ_CHUNK):
            total += len(chunk)
            if total > cap:
                raise Rejected(f"it is larger than the {size_text(cap)} limit")
            sink.write(chunk)
    return total


def size_text(size: int) -> str:
    """As the thread's notes say sizes: "1.5 MB", "1 MB", "300 KB"."""
    if size >= MB / 10:
        return f"{size / MB:.1f} MB".replace(".0 MB", " MB")
    return f"{max(1, size // 1024)} KB"


def _data(resp: requests.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError as exc:
        raise Rejected("X answered the media upload with something other than JSON") from exc
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise Rejected("X's media upload answer has no data")
    return data


def upload(wire: Wire, file: OutboundFile, call: Callable[[Callable[[], Any]], Any]) -> str:
    """Upload ``file`` (``path``) for a DM; its media id. Each X call goes through ``call`` (token refresh and
    error translation); a failure before the DM went is never uncertain: nothing was sent yet."""
    media_type = file.content_type.lower()
    try:
        return _upload(wire, file, media_type, call)
    except RetryLater as exc:
        raise RetryLater(exc.reason, retry_at=exc.retry_at, rate_limited=exc.rate_limited) from exc
    except Rejected as exc:
        raise Rejected(f"X refused the file {file.name}: {_hint(exc.reason)}") from exc


def _hint(reason: str) -> str:
    if "media.write" in reason or "scope" in reason.lower():
        return f"{reason} (the OAuth 2.0 grant needs media.write: run `dmbridge x-auth` again)"
    return reason


def _upload(wire: Wire, file: OutboundFile, media_type: str, call: Callable[[Callable[[], Any]], Any]) -> str:
    base = TWEEPY_HOST + "/2/media/upload"
    with open(file.path, "rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(0)
        if size == 0:
            raise Rejected("the file is empty")
        if -(-size // wire.chunk) > MAX_SEGMENTS:
            raise Rejected(f"the file needs more than {MAX_SEGMENTS} upload segments")
        body = {"media_type": media_type, "total_bytes": size, "media_category": category(media_type)}
        init = call(lambda: wire.request("POST", base + "/initialize", json=body))
        media_id = str(_data(init)["id"])
        index = 0
        while chunk := handle.read(wire.chunk):
            form = {"segment_index": str(index)}
            parts = {"media": (file.name or "media", chunk, "application/octet-stream")}
            call(lambda f=form, p=parts: wire.request("POST", f"{base}/{media_id}/append", data=f, files=p))  # type: ignore[misc]
            index += 1
    info = _data(call(lambda: wire.request("POST", f"{base}/{media_id}/finalize"))).get("processing_info")
    deadline = wire.clock() + PROCESSING_SECONDS
    params = {"command": "STATUS", "media_id": media_id}
    while isinstance(info, dict) and info.get("state") in ("pending", "in_progress"):
        wait = info.get("check_after_secs")
        wait = min(max(float(wait), 0.0), 60.0) if isinstance(wait, int | float) else 1.0
        if wire.clock() + wait > deadline:
            raise RetryLater(f"X is still processing {file.name}")
        wire.sleep(wait)
        info = _data(call(lambda: wire.request("GET", base, params=params))).get("processing_info")
    if isinstance(info, dict) and info.get("state") == "failed":
        error = info.get("error")
        said = error.get("message") if isinstance(error, dict) else None
        raise Rejected(f"X could not process it: {said or 'processing failed'}")
    return media_id
