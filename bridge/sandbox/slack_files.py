"""The Slack emulator's files: Slack's external upload flow, ``files.info`` and the private file URLs.

Each rule and where it comes from (docs.slack.dev method pages, or as noted):

- ``files.getUploadURLExternal`` (scope ``files:write``): ``filename`` and ``length`` required, read from form or
  query arguments only (see ``JSON_METHODS``); ``length`` 0 answers ``missing_argument`` (the page: "Typically
  only occurs when the length provided is 0"), one that is not a whole number ``invalid_arguments``; ``alt_txt``
  over 1,000 characters ``alt_txt_too_large``; a ``snippet_type`` with more than 1 MB ``snippet_too_large``.
- The upload URL takes the bytes raw or multipart-encoded (the same page: "Files can be sent as raw bytes or can
  be multipart form encoded. Slack will return HTTP 200 if the upload is successful"). Its lifetime, that it
  takes one POST only, and what it answers otherwise are undocumented: here once, within ``UPLOAD_SECONDS`` of
  the emulator's ``clock``, else 404.
- ``files.completeUploadExternal`` (scope ``files:write``): ``files`` a JSON array of ``{"id", "title"}``;
  each file uploaded, else ``file_not_found`` ("Could not find the file from the upload ticket");
  ``channel_id`` (or ``channels``) must exist (``channel_not_found``) and have the bot as a member
  (``not_in_channel``: "User/bot membership is required"); with ``thread_ts`` "only one channel", and the
  ts a thread root ("Never use a reply's ts value; use its parent instead"); ``blocks`` ignored when
  ``initial_comment`` is given. It posts one ``file_share`` message per channel, as the bot, echoed to the
  app like other bot posts (the event's shape: @slack/types ``FileShareMessageEvent``).
- ``files.info`` (scope ``files:read``): ``file_not_found`` for an unknown id.
- ``url_private`` / ``url_private_download`` serve the bytes only with ``Authorization: Bearer`` and a token
  that has ``files:read`` (Slack's "Important changes to files in the Web API", 2015); anything else is
  redirected to a sign-in page, as Slack does (an HTML page, not the file).
- A missing scope answers ``missing_scope`` with ``needed`` and ``provided``, as every Web API method does.

Bytes are streamed to one file on disk per upload (a multipart body too, part by part), never held whole.
"""

from __future__ import annotations

import json
import mimetypes
import re
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from bridge.sandbox.server import OffsetClock
from bridge.sandbox.slack_checks import check_message
from bridge.sandbox.slack_state import APP_ID, BOT_ID, BOT_USER, ApiError, Channel, SlackWorld
from bridge.sandbox.slack_wire import json_field

UPLOAD_SECONDS = 600.0  # the emulator's choice: Slack documents no lifetime for an upload URL
ALT_TXT = 1000  # alt_txt_too_large: "longer than the limit of 1000 character"
SNIPPET_BYTES = 1024 * 1024  # snippet_too_large: snippets "are limited to 1MB"
SIGN_IN_PAGE = "<!DOCTYPE html><html><head><title>Sign in | Slack</title></head><body>Sign in</body></html>"
PART_HEADERS = 16 * 1024
HOSTED = {  # what every file the bot uploads has the same
    "editable": False, "mode": "hosted", "is_external": False, "external_type": "", "is_public": False,
    "public_url_shared": False, "display_as_bot": False, "username": "",
}  # fmt: skip  # the most a multipart part's headers may take before the body is refused
_MIME = mimetypes.MimeTypes()  # Python's built-in table only, the same on every machine
for _type, _ext in (("audio/mp4", ".m4a"), ("audio/ogg", ".ogg"), ("audio/aac", ".aac"), ("image/webp", ".webp")):
    _MIME.add_type(_type, _ext)


@dataclass
class Upload:
    """A file from ``files.getUploadURLExternal`` on: its bytes are at ``path`` once the URL took them."""

    id: str
    name: str
    length: int
    expires: float
    path: Path
    alt_txt: str = ""
    claimed: bool = False  # the URL took its one POST
    received: int | None = None  # how many bytes that POST carried
    file: dict[str, Any] | None = None  # the file object, once completed


class _BadBody(Exception):
    """An upload body the URL cannot read (a multipart body without a file part, say)."""


class _Sink:
    """Counts every byte and writes those within the declared length (more is refused at completion anyway)."""

    def __init__(self, out: BinaryIO, limit: int) -> None:
        self.out, self.limit, self.count = out, limit, 0

    def write(self, data: bytes) -> None:
        room = self.limit - self.count
        if room > 0:
            self.out.write(data if len(data) <= room else data[:room])
        self.count += len(data)


class FileMethods(SlackWorld):
    """Web API methods (called with the lock held) and the upload/download routes."""

    clock: OffsetClock
    _uploads: dict[str, Upload]
    _upload_tokens: dict[str, str]
    _file_dir: tempfile.TemporaryDirectory[str]

    def _init_files(self) -> None:
        self.clock = OffsetClock()  # tests move it forward (``clock.offset``) to expire upload URLs
        self._uploads = {}
        self._upload_tokens = {}
        self._file_dir = tempfile.TemporaryDirectory(prefix="slack-emulator-files-")

    def _close_files(self) -> None:
        self._file_dir.cleanup()

    def _file_routes(self) -> list[Route]:
        return [
            Route("/upload/{token}", self._upload, methods=["POST"]),
            Route("/files-pri/{owner}/{rest:path}", self._private_file, methods=["GET"]),
            Route("/signin", self._signin, methods=["GET"]),
        ]

    # ------------------------------------------------------------------ what tests inspect

    def files_in_thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """The files posted in the thread of ``ts`` (the root's and the replies'), oldest first."""
        with self._lock:
            found = [m for m in self.channels[channel].messages if m["ts"] == ts or m.get("thread_ts") == ts]
            found.sort(key=lambda m: float(m["ts"]))
            return [dict(f) for m in found for f in m.get("files", [])]

    def file_bytes(self, file_id: str) -> bytes:
        """What the upload URL of ``file_id`` received (up to the declared length)."""
        with self._lock:
            upload = self._uploads[file_id]
        return upload.path.read_bytes()

    # ------------------------------------------------------------------ Web API methods

    def _m_files_getUploadURLExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        self._need_scope("files:write")
        name, raw = str(p.get("filename") or ""), str(p.get("length") or "").strip()
        missing = [f"[ERROR] missing required field: {k}" for k, v in (("filename", name), ("length", raw)) if not v]
        if missing:
            raise ApiError("invalid_arguments", messages=missing)
        if not raw.isdigit():
            raise ApiError("invalid_arguments", messages=["[ERROR] length must be a positive integer"])
        length = int(raw)
        if length == 0:
            raise ApiError("missing_argument")
        alt_txt = str(p.get("alt_txt") or "")
        if len(alt_txt) > ALT_TXT:
            raise ApiError("alt_txt_too_large")
        if p.get("snippet_type") and length > SNIPPET_BYTES:
            raise ApiError("snippet_too_large")
        file_id, token = "F" + uuid.uuid4().hex[:10].upper(), uuid.uuid4().hex
        path = Path(self._file_dir.name) / file_id
        self._uploads[file_id] = Upload(file_id, name, length, self.clock() + UPLOAD_SECONDS, path, alt_txt)
        self._upload_tokens[token] = file_id
        return {"upload_url": f"{self.http.url}/upload/{token}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        self._need_scope("files:write")
        uploads = [self._completable(entry) for entry in _file_entries(p.get("files"))]
        if len({u.id for u, _ in uploads}) < len(uploads):
            raise ApiError("invalid_arguments", messages=["[ERROR] a file id is listed twice"])
        targets = self._share_targets(p)
        thread_ts = str(p.get("thread_ts") or "")
        if thread_ts:
            if len(targets) != 1:
                raise ApiError("invalid_arguments", messages=["[ERROR] thread_ts needs exactly one channel"])
            # Slack documents no error for a thread_ts outside the channel: refused as chat.postMessage is here
            root = self._find(targets[0].id, thread_ts)
            if root.get("thread_ts", thread_ts) != thread_ts:
                raise ApiError("invalid_arguments", messages=["[ERROR] thread_ts is a reply; use its parent's ts"])
        comment = str(p.get("initial_comment") or "")
        blocks = None if comment else (json_field(p.get("blocks")) or None)  # ignored with initial_comment
        if comment or blocks:
            check_message(comment or None, blocks)
        now = self.clock()
        for upload, title in uploads:
            upload.file = self._file_object(upload, title, now)
        for channel in targets:
            self._share(channel, [u for u, _ in uploads], thread_ts, comment, blocks)
        return {"files": [{"id": u.id, "title": title} for u, title in uploads]}

    def _m_files_info(self, p: dict[str, Any]) -> dict[str, Any]:
        self._need_scope("files:read")
        if not p.get("file"):
            raise ApiError("invalid_arguments", messages=["[ERROR] missing required field: file"])
        upload = self._uploads.get(str(p["file"]))
        if upload is None or upload.file is None:
            raise ApiError("file_not_found")  # an upload not yet completed is no file yet
        return {"file": upload.file, "comments": [], "response_metadata": {"next_cursor": ""}}

    # ------------------------------------------------------------------ routes

    async def _upload(self, request: Request) -> Response:
        with self._lock:
            upload = self._uploads.get(self._upload_tokens.get(request.path_params["token"], ""))
            if upload is None or upload.claimed:
                return PlainTextResponse("no such upload URL, or it was used", status_code=404)
            if self.clock() > upload.expires:
                return PlainTextResponse("this upload URL has expired", status_code=404)
            upload.claimed = True  # before reading: a second POST meanwhile finds it used
        content_type = request.headers.get("content-type", "")
        try:
            with upload.path.open("wb") as out:
                sink = _Sink(out, upload.length)
                if content_type.split(";")[0].strip().lower() == "multipart/form-data":
                    await _multipart_file(request.stream(), _boundary(content_type), sink)
                else:  # raw bytes, whatever the content type (slack_sdk sends them as a urlencoded form's)
                    async for chunk in request.stream():
                        sink.write(chunk)
        except _BadBody as exc:
            with self._lock:
                upload.claimed = False  # nothing was taken
            return PlainTextResponse(str(exc), status_code=400)
        with self._lock:
            upload.received = sink.count
        return PlainTextResponse("OK")

    async def _private_file(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        owner, rest = request.path_params["owner"], request.path_params["rest"]
        team, _, file_id = owner.partition("-")
        with self._lock:
            allowed = token == self.bot_token and self.token_valid and "files:read" in self.scopes
            upload = self._uploads.get(file_id)
            file = upload.file if upload is not None else None
        if not allowed:
            # Slack redirects to its sign-in page (users report getting that HTML instead of the file) rather than
            # answering 401/403; a client that follows redirects and keeps the body saves a web page
            return RedirectResponse(f"{self.http.url}/signin?redir={quote(request.url.path)}", status_code=302)
        download = rest.startswith("download/")
        if upload is None or file is None or team != self.team or rest.removeprefix("download/") != file["name"]:
            return PlainTextResponse("Not Found", status_code=404)
        disposition = "attachment" if download else "inline"
        return FileResponse(
            upload.path, media_type=file["mimetype"], filename=file["name"], content_disposition_type=disposition
        )

    async def _signin(self, _request: Request) -> Response:
        return HTMLResponse(SIGN_IN_PAGE)

    # ------------------------------------------------------------------ helpers (called with the lock held)

    def _need_scope(self, scope: str) -> None:
        if scope not in self.scopes:
            raise ApiError("missing_scope", extra={"needed": scope, "provided": ",".join(self.scopes)})

    def _completable(self, entry: dict[str, Any]) -> tuple[Upload, str]:
        upload = self._uploads.get(str(entry["id"]))
        if upload is None or upload.received is None or upload.file is not None:
            raise ApiError("file_not_found")  # unknown, never uploaded, or already completed
        if upload.received != upload.length:
            # Slack documents no error for bytes that differ from the declared length: file_not_found is the
            # closest documented one (the ticket yields no file); the reason says what happened
            reason = f"[ERROR] the upload URL received {upload.received} bytes; length was {upload.length}"
            raise ApiError("file_not_found", messages=[reason])
        return upload, str(entry.get("title") or upload.name)  # the name when untitled: the emulator's choice

    def _share_targets(self, p: dict[str, Any]) -> list[Channel]:
        ids = [str(p["channel_id"])] if p.get("channel_id") else [c for c in str(p.get("channels") or "").split(",")]
        targets = []
        for channel_id in dict.fromkeys(c.strip() for c in ids if c.strip()):
            channel = self.channels.get(channel_id)
            if channel is None or (channel.is_private and BOT_USER not in channel.members):
                raise ApiError("channel_not_found")  # a private channel is invisible to a bot outside it
            if BOT_USER not in channel.members:
                raise ApiError("not_in_channel")  # no chat:write.public exception for files
            targets.append(channel)
        return targets

    def _file_object(self, upload: Upload, title: str, now: float) -> dict[str, Any]:
        name = upload.name
        base = f"{self.http.url}/files-pri/{self.team}-{upload.id}"
        file: dict[str, Any] = {
            "id": upload.id,
            "created": int(now),
            "timestamp": int(now),
            "name": name,
            "title": title,
            "mimetype": _MIME.guess_type(name)[0] or "application/octet-stream",
            "filetype": Path(name).suffix.lstrip(".").lower() or "binary",  # Slack's is close to the extension
            "user": BOT_USER,
            "user_team": self.team,
            "size": upload.length,
            **HOSTED,
            "url_private": f"{base}/{quote(name)}",
            "url_private_download": f"{base}/download/{quote(name)}",
            "permalink": f"https://sandbox.slack.example/files/{BOT_USER}/{upload.id}/{quote(name)}",
            "channels": [],
            "groups": [],
            "ims": [],
            "shares": {},
        }
        if upload.alt_txt:
            file["alt_txt"] = upload.alt_txt
        return file

    def _share(
        self, channel: Channel, uploads: list[Upload], thread_ts: str, comment: str, blocks: list[Any] | None
    ) -> None:
        ts, private = self._next_ts(), channel.is_private
        share = {"ts": ts, "channel_name": channel.name, "team_id": self.team}
        if thread_ts:
            share["thread_ts"] = thread_ts
        for upload in uploads:
            assert upload.file is not None
            upload.file["groups" if private else "channels"].append(channel.id)
            shares = upload.file["shares"].setdefault("private" if private else "public", {})
            shares.setdefault(channel.id, []).append(dict(share))
            upload.file["is_public"] = upload.file["is_public"] or not private
        listed = ("channels", "groups", "ims", "shares")  # files.info has these; a message's file objects do not
        msg: dict[str, Any] = {
            "type": "message",
            "subtype": "file_share",
            "text": comment,
            "files": [{k: v for k, v in (u.file or {}).items() if k not in listed} for u in uploads],
            "upload": True,
            "user": BOT_USER,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "display_as_bot": False,
            "ts": ts,
            "team": self.team,
        }
        if blocks:
            msg["blocks"] = blocks
        if thread_ts:
            msg["thread_ts"] = thread_ts
            msg["parent_user_id"] = self._author_of(channel.id, thread_ts)
        channel.messages.append(msg)
        if self.echo_bot_messages and (self.event_target or self.socket.connected()):
            event = dict(msg, channel=channel.id, event_ts=ts, channel_type="group" if private else "channel")
            self._outbox.put(json.dumps(self._envelope(event)).encode())


def _file_entries(value: Any) -> list[dict[str, Any]]:
    if value in (None, ""):
        raise ApiError("invalid_arguments", messages=["[ERROR] missing required field: files"])
    entries = json_field(value)
    if not (isinstance(entries, list) and entries and all(isinstance(e, dict) and e.get("id") for e in entries)):
        raise ApiError("invalid_arguments", messages=["[ERROR] files must be an array of objects with an id"])
    return entries


def _boundary(content_type: str) -> bytes:
    found = re.search(r'boundary="?([^";]+)"?', content_type)
    if found is None:
        raise _BadBody("a multipart body without a boundary")
    return found.group(1).encode("latin-1")


def _is_file_part(headers: str) -> bool:
    disposition = re.search(r"(?im)^content-disposition:(.*)$", headers)
    return disposition is not None and re.search(r";\s*filename\*?=", disposition.group(1)) is not None


async def _multipart_file(stream: AsyncIterator[bytes], boundary: bytes, sink: _Sink) -> None:
    """Streams the first file part of a multipart body (the one with a ``filename``: Slack's examples name it
    ``file`` or ``filename``) into ``sink``, holding no more than a chunk and a delimiter."""
    delimiter = b"\r\n--" + boundary
    buf, state, wanted, found = b"\r\n", "seek", False, False  # the leading CRLF: the first delimiter like the rest
    async for chunk in stream:
        if state == "end":
            continue  # the epilogue: drained, not kept
        buf += chunk
        while state != "end":
            if state == "seek":  # in a part's body (or the preamble), up to the next delimiter
                at = buf.find(delimiter)
                if at < 0:
                    cut = max(0, len(buf) - len(delimiter) + 1)  # what cannot be the start of a delimiter
                    if wanted:
                        sink.write(buf[:cut])
                    buf = buf[cut:]
                    break
                if wanted:
                    sink.write(buf[:at])
                    wanted, found = False, True
                buf, state = buf[at + len(delimiter) :], "part"
            else:  # just after a delimiter: "--" closes the body, else a part's headers follow
                if len(buf) < 2:
                    break
                if buf.startswith(b"--"):
                    state = "end"
                    break
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > PART_HEADERS:
                        raise _BadBody("a multipart part's headers are too long")
                    break
                wanted = not found and _is_file_part(buf[:end].decode("latin-1"))
                buf, state = buf[end + 4 :], "seek"
    if not found:
        raise _BadBody("no file part in the multipart body")
