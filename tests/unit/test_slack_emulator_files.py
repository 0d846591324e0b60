"""The Slack emulator serves Slack's external file upload as strictly as Slack (bridge/sandbox/slack_files.py):
files.getUploadURLExternal → POST the bytes to the upload URL → files.completeUploadExternal into a thread,
files.info, and url_private_download only with the bot token."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.sandbox.server import HttpServer, wait_for
from bridge.sandbox.slack import BOT_ID, BOT_USER, SlackEmulator
from bridge.sandbox.slack_files import UPLOAD_SECONDS

TOKEN = "xoxb-files"
PHOTO = os.urandom(300_000) + b"\r\n--not-a-boundary\r\n"  # several chunks, and bytes that look like multipart


def start(**options: Any) -> SlackEmulator:
    emulator = SlackEmulator(signing_secret="s", bot_token=TOKEN, **options)
    emulator.start()
    emulator.add_user("U1", "maria", "Maria")
    emulator.add_channel("C1", "desk", members=["U1", BOT_USER])
    emulator.add_channel("C2", "elsewhere", members=["U1"])
    return emulator


@pytest.fixture
def emu() -> Iterator[SlackEmulator]:
    emulator = start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def client(emu: SlackEmulator) -> WebClient:
    return WebClient(token=TOKEN, base_url=emu.api_url)


def root(emu: SlackEmulator, channel: str = "C1") -> str:
    return str(emu.add_message("U1", channel, "hello, here is my photo")["ts"])


def reserve(client: WebClient, data: bytes = PHOTO, name: str = "photo.jpg", **kw: Any) -> tuple[str, str]:
    answer = client.files_getUploadURLExternal(filename=name, length=len(data), **kw)
    return str(answer["file_id"]), str(answer["upload_url"])


def refused(call: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as caught:
        call()
    data: dict[str, Any] = caught.value.response.data
    return data


@pytest.mark.parametrize("multipart", [False, True])
def test_the_whole_flow_posts_one_file_message_in_the_thread(
    emu: SlackEmulator, client: WebClient, multipart: bool
) -> None:
    seen: list[dict[str, Any]] = []

    async def app(request: Request) -> Response:
        seen.append(json.loads(await request.body()))
        return Response()

    receiver = HttpServer(Starlette(routes=[Route("/", app, methods=["POST"])]))
    receiver.start()
    emu.event_target = receiver.url + "/"
    try:
        ts = root(emu)
        file_id, url = reserve(client, alt_txt="photo from Maria López")
        assert file_id.startswith("F") and url.startswith(emu.http.url)
        if multipart:
            sent = httpx.post(url, files={"file": ("photo.jpg", PHOTO, "image/jpeg")})
        else:
            sent = httpx.post(url, content=PHOTO)
        assert sent.status_code == 200
        done = client.files_completeUploadExternal(
            files=[{"id": file_id, "title": "upload:instagram:acct:m1"}],
            channel_id="C1",
            thread_ts=ts,
            initial_comment="[photo] from Maria",
        )
        assert done["files"] == [{"id": file_id, "title": "upload:instagram:acct:m1"}]

        [message] = [m for m in emu.thread("C1", ts) if m["ts"] != ts]
        assert message["subtype"] == "file_share" and message["text"] == "[photo] from Maria"
        assert message["user"] == BOT_USER and message["bot_id"] == BOT_ID and message["thread_ts"] == ts
        [file] = emu.files_in_thread("C1", ts)
        assert file["id"] == file_id and file["name"] == "photo.jpg" and file["title"] == "upload:instagram:acct:m1"
        assert file["mimetype"] == "image/jpeg" and file["size"] == len(PHOTO)
        assert file["alt_txt"] == "photo from Maria López"
        digest = hashlib.sha256(PHOTO).hexdigest()
        assert hashlib.sha256(emu.file_bytes(file_id)).hexdigest() == digest

        download = httpx.get(file["url_private_download"], headers={"Authorization": f"Bearer {TOKEN}"})
        assert download.status_code == 200 and download.headers["content-type"] == "image/jpeg"
        assert hashlib.sha256(download.content).hexdigest() == digest

        info = client.files_info(file=file_id)["file"]
        assert info["title"] == "upload:instagram:acct:m1" and info["shares"]["public"]["C1"][0]["ts"] == message["ts"]
        replies = client.conversations_replies(channel="C1", ts=ts)["messages"]
        assert [f["title"] for m in replies for f in m.get("files", [])] == ["upload:instagram:acct:m1"]

        event = wait_for(lambda: next((e["event"] for e in seen if e["event"].get("files")), None), what="echo")
        assert event["subtype"] == "file_share" and event["channel"] == "C1" and event["bot_id"] == BOT_ID
    finally:
        receiver.stop()


def test_getting_an_upload_url_checks_its_arguments(client: WebClient) -> None:
    assert refused(lambda: client.api_call("files.getUploadURLExternal", params={"filename": "a.jpg"}))[
        "response_metadata"
    ]["messages"] == ["[ERROR] missing required field: length"]
    assert refused(lambda: client.files_getUploadURLExternal(filename="a.jpg", length=0))["error"] == "missing_argument"
    assert refused(lambda: client.files_getUploadURLExternal(filename="a.jpg", length=-3))["error"] == (
        "invalid_arguments"
    )
    too_long = refused(lambda: client.files_getUploadURLExternal(filename="a.jpg", length=3, alt_txt="x" * 1001))
    assert too_long["error"] == "alt_txt_too_large"
    assert client.files_getUploadURLExternal(filename="a.jpg", length=3, alt_txt="x" * 1000)["ok"]


def test_a_json_body_is_not_read_by_get_upload_url(emu: SlackEmulator) -> None:
    answer = httpx.post(
        emu.api_url + "files.getUploadURLExternal",
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={"filename": "a.jpg", "length": 3},
    ).json()
    assert answer["error"] == "invalid_arguments"


@pytest.mark.parametrize("sent", [PHOTO[:-1], PHOTO + b"!"], ids=["one-byte-short", "one-byte-over"])
def test_bytes_other_than_the_declared_length_are_refused(emu: SlackEmulator, client: WebClient, sent: bytes) -> None:
    ts = root(emu)
    file_id, url = reserve(client)
    assert httpx.post(url, content=sent).status_code == 200
    answer = refused(
        lambda: client.files_completeUploadExternal(files=[{"id": file_id}], channel_id="C1", thread_ts=ts)
    )
    assert answer["error"] == "file_not_found"
    assert f"received {len(sent)} bytes" in answer["response_metadata"]["messages"][0]
    assert emu.files_in_thread("C1", ts) == []


def test_the_upload_url_takes_one_post(emu: SlackEmulator, client: WebClient) -> None:
    _, url = reserve(client, b"abc", "a.txt")
    assert httpx.post(url, content=b"abc").status_code == 200
    assert httpx.post(url, content=b"abc").status_code == 404


def test_the_upload_url_expires(emu: SlackEmulator, client: WebClient) -> None:
    ts = root(emu)
    file_id, url = reserve(client, b"abc", "a.txt")
    emu.clock.offset += UPLOAD_SECONDS + 1
    assert httpx.post(url, content=b"abc").status_code == 404
    answer = refused(
        lambda: client.files_completeUploadExternal(files=[{"id": file_id}], channel_id="C1", thread_ts=ts)
    )
    assert answer["error"] == "file_not_found"


def test_a_multipart_body_without_a_file_part_takes_nothing(client: WebClient) -> None:
    _, url = reserve(client, b"abc", "a.txt")
    assert httpx.post(url, files={"note": (None, b"abc")}).status_code == 400
    assert httpx.post(url, files={"file": ("a.txt", b"abc")}).status_code == 200


def test_unknown_or_unuploaded_files_are_refused(emu: SlackEmulator, client: WebClient) -> None:
    ts = root(emu)
    for file_id in ("F0NOSUCH", reserve(client)[0]):
        answer = refused(
            lambda f=file_id: client.files_completeUploadExternal(files=[{"id": f}], channel_id="C1", thread_ts=ts)
        )
        assert answer["error"] == "file_not_found"
    assert refused(lambda: client.files_info(file="F0NOSUCH"))["error"] == "file_not_found"


def test_a_file_completes_once(emu: SlackEmulator, client: WebClient) -> None:
    ts = root(emu)
    file_id, url = reserve(client, b"abc", "a.txt")
    httpx.post(url, content=b"abc")
    client.files_completeUploadExternal(files=[{"id": file_id}], channel_id="C1", thread_ts=ts)
    again = refused(lambda: client.files_completeUploadExternal(files=[{"id": file_id}], channel_id="C1", thread_ts=ts))
    assert again["error"] == "file_not_found"
    assert len(emu.files_in_thread("C1", ts)) == 1


def test_thread_ts_must_be_a_thread_root_of_the_channel(emu: SlackEmulator, client: WebClient) -> None:
    other = root(emu, "C2")
    ts = root(emu)
    reply = str(emu.add_message("U1", "C1", "and another", thread_ts=ts)["ts"])
    file_id, url = reserve(client, b"abc", "a.txt")
    httpx.post(url, content=b"abc")
    for thread_ts, error in (
        (other, "message_not_found"),
        ("1.000001", "message_not_found"),
        (reply, "invalid_arguments"),
    ):
        answer = refused(
            lambda t=thread_ts: client.files_completeUploadExternal(
                files=[{"id": file_id}], channel_id="C1", thread_ts=t
            )
        )
        assert answer["error"] == error
    client.files_completeUploadExternal(files=[{"id": file_id}], channel_id="C1", thread_ts=ts)  # still completable


def test_the_bot_must_be_a_member_of_the_channel(emu: SlackEmulator, client: WebClient) -> None:
    ts = root(emu, "C2")
    file_id, url = reserve(client, b"abc", "a.txt")
    httpx.post(url, content=b"abc")
    answer = refused(
        lambda: client.files_completeUploadExternal(files=[{"id": file_id}], channel_id="C2", thread_ts=ts)
    )
    assert answer["error"] == "not_in_channel"  # chat:write.public does not cover files
    unknown = refused(lambda: client.files_completeUploadExternal(files=[{"id": file_id}], channel_id="C9"))
    assert unknown["error"] == "channel_not_found"


def test_without_files_write_nothing_is_uploaded() -> None:
    emulator = start(scopes=["chat:write", "files:read"])
    try:
        client = WebClient(token=TOKEN, base_url=emulator.api_url)
        answer = refused(lambda: client.files_getUploadURLExternal(filename="a.jpg", length=3))
        assert answer["error"] == "missing_scope" and answer["needed"] == "files:write"
        assert answer["provided"] == "chat:write,files:read"
        done = refused(lambda: client.files_completeUploadExternal(files=[{"id": "F1"}], channel_id="C1"))
        assert done["error"] == "missing_scope"
    finally:
        emulator.stop()


def test_url_private_download_needs_the_bot_token(emu: SlackEmulator, client: WebClient) -> None:
    ts = root(emu)
    file_id, url = reserve(client, b"abc", "a.txt")
    httpx.post(url, content=b"abc")
    client.files_completeUploadExternal(files=[{"id": file_id}], channel_id="C1", thread_ts=ts)
    link = emu.files_in_thread("C1", ts)[0]["url_private_download"]
    for headers in ({}, {"Authorization": "Bearer xoxb-someone-else"}, {"Authorization": TOKEN}):
        answer = httpx.get(link, headers=headers)
        assert answer.status_code == 302 and "/signin" in answer.headers["location"]
    followed = httpx.get(link, follow_redirects=True)
    assert followed.status_code == 200 and followed.headers["content-type"].startswith("text/html")
    got = httpx.get(link, headers={"Authorization": f"Bearer {TOKEN}"})
    assert got.content == b"abc" and got.headers["content-disposition"].startswith("attachment")
    emu.scopes.remove("files:read")
    assert httpx.get(link, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 302
