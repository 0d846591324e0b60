"""X legacy DM media against the X emulator, which serves media upload and DM media download as the spec has
them: agents' files go up (chunked, processed, attached) and arrive byte for byte; customers' media is read with the
user token; what X refuses comes back as a clear Rejected, and the token never leaves the X API host."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bridge.domain import OutboundFile, OutboundMessage, Platform
from bridge.errors import Rejected, RetryLater
from bridge.sandbox.x import BRAND_ID, XEmulator
from connectors.x import convert
from connectors.x.connector import XConnector

CUSTOMER = "1290011223344556677"
MB = 1024 * 1024
JPEG = b"\xff\xd8\xff\xe0" + os.urandom(300_000)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def x() -> Iterator[XEmulator]:
    emulator = XEmulator()
    emulator.start()
    emulator.add_user(CUSTOMER, "maria_l", "Maria López")
    try:
        yield emulator
    finally:
        emulator.stop()


def oauth2(x: XEmulator) -> XConnector:
    c = XConnector(base_url=x.api_url, user_bearer_token=x.user_bearer_token)
    c.start()
    c.wire.sleep = lambda seconds: None
    return c


def oauth1(x: XEmulator) -> XConnector:
    c = XConnector(
        base_url=x.api_url,
        consumer_key=x.consumer_key,
        consumer_secret=x.consumer_secret,
        access_token=x.access_token,
        access_token_secret=x.access_token_secret,
    )
    c.start()
    c.wire.sleep = lambda seconds: None
    return c


def reply(tmp_path: Path, data: bytes, name: str, content_type: str, text: str = "Here you go") -> OutboundMessage:
    path = tmp_path / name
    path.write_bytes(data)
    file = OutboundFile(name=name, kind=content_type.split("/")[0], content_type=content_type, size=len(data))
    return OutboundMessage(
        platform=Platform.X,
        account="acme_help",
        conversation=convert.conversation_id(CUSTOMER, BRAND_ID),
        recipient_id=CUSTOMER,
        text=text,
        file=OutboundFile(**{**file.__dict__, "path": str(path)}),
    )


def test_a_photo_goes_with_the_text_and_arrives_byte_for_byte(x: XEmulator, tmp_path: Path) -> None:
    c = oauth2(x)
    message = reply(tmp_path, JPEG, "label.jpg", "image/jpeg")
    result = c.send(message)
    assert x.received_by(CUSTOMER) == ["Here you go"]
    assert [sha(m) for m in x.received_media(CUSTOMER)] == [sha(JPEG)]
    event = next(e for e in x.events() if e["id"] == result.remote_id)
    assert event["attachments"]["media_keys"]
    assert c.find_sent(message, since=0.0, known=set()) == result
    assert c.find_sent(message, since=0.0, known={result.remote_id}) is None
    paths = [p for _, p, _ in x.requests if "upload" in p or p.endswith("/messages")]
    assert paths == [
        "/2/media/upload/initialize",
        "/2/media/upload/{id}/append",
        "/2/media/upload/{id}/finalize",
        f"/2/dm_conversations/{message.conversation}/messages",
    ]


def test_a_few_mb_video_is_uploaded_in_chunks_and_waits_for_processing(x: XEmulator, tmp_path: Path) -> None:
    c = oauth1(x)  # X's upload takes OAuth 1.0a too
    waits: list[float] = []
    c.wire.sleep = waits.append
    clip = os.urandom(3 * MB + 12345)
    c.send(reply(tmp_path, clip, "clip.mp4", "video/mp4", text=""))
    assert [sha(m) for m in x.received_media(CUSTOMER)] == [sha(clip)]
    appends = [r for r in x.requests if r[1] == "/2/media/upload/{id}/append"]
    assert len(appends) == 4 and all(status == 200 for *_, status in appends)
    statuses = [r for r in x.requests if r[:2] == ("GET", "/2/media/upload")]
    assert len(statuses) == 2 and waits == [1.0, 1.0]  # pending → in_progress → succeeded, check_after_secs apart
    (event,) = [e for e in x.events() if e["sender_id"] == BRAND_ID]
    assert event["text"] == ""  # a file may go alone: no empty text was sent


def test_a_gif_goes_as_dm_gif(x: XEmulator, tmp_path: Path) -> None:
    gif = b"GIF89a" + os.urandom(6 * MB)  # over the 5 MB of other images, under the 15 MB of GIFs
    oauth2(x).send(reply(tmp_path, gif, "party.gif", "image/gif"))
    (upload,) = x.media.uploads.values()
    assert upload.category == "dm_gif" and sha(x.received_media(CUSTOMER)[0]) == sha(gif)


def test_what_x_does_not_take_is_refused_before_any_upload(x: XEmulator, tmp_path: Path) -> None:
    c = oauth2(x)
    for data, name, kind, words in [
        (os.urandom(6 * MB), "big.jpg", "image/jpeg", "up to 5 MB"),
        (b"%PDF" + os.urandom(100), "invoice.pdf", "application/pdf", "does not take other files"),
        (os.urandom(1000), "voice.m4a", "audio/mp4", "does not take audio"),
        (os.urandom(1000), "clip.webm", "video/webm", "as mp4 only"),
    ]:
        with pytest.raises(Rejected, match=words):
            c.send(reply(tmp_path, data, name, kind))
    assert not x.media.uploads and x.received_by(CUSTOMER) == []


def test_the_emulator_refuses_what_x_refuses(x: XEmulator) -> None:
    auth = {"Authorization": f"Bearer {x.user_bearer_token}"}
    url = x.api_url + "/2/media/upload"
    wrong = httpx.post(
        url + "/initialize",
        json={"media_type": "video/mp4", "total_bytes": 10, "media_category": "dm_image"},
        headers=auth,
    )
    assert wrong.status_code == 400 and "cannot be uploaded as dm_image" in wrong.json()["detail"]
    big = httpx.post(
        url + "/initialize",
        json={"media_type": "image/jpeg", "total_bytes": 6 * MB, "media_category": "dm_image"},
        headers=auth,
    )
    assert big.status_code == 400 and "5 MB" in big.json()["detail"]
    extra = httpx.post(
        url + "/initialize", json={"media_type": "image/jpeg", "total_bytes": 10, "colour": "red"}, headers=auth
    )
    assert extra.status_code == 400 and "colour" in extra.json()["detail"]
    init = httpx.post(
        url + "/initialize",
        json={"media_type": "image/jpeg", "total_bytes": 10, "media_category": "dm_image"},
        headers=auth,
    )
    media_id = init.json()["data"]["id"]
    httpx.post(f"{url}/{media_id}/append", data={"segment_index": "0"}, files={"media": ("m", b"12345")}, headers=auth)
    short = httpx.post(f"{url}/{media_id}/finalize", headers=auth)
    assert short.status_code == 400 and "mismatch" in short.json()["detail"]
    tweet = httpx.post(url, data={"media_category": "tweet_image"}, files={"media": ("m", JPEG)}, headers=auth)
    assert tweet.status_code == 200
    conv = convert.conversation_id(CUSTOMER, BRAND_ID)
    dm = x.api_url + f"/2/dm_conversations/{conv}/messages"
    not_dm = httpx.post(dm, json={"attachments": [{"media_id": tweet.json()["data"]["id"]}]}, headers=auth)
    assert not_dm.status_code == 400 and "dm_" in not_dm.json()["detail"]
    unknown = httpx.post(dm, json={"text": "x", "attachments": [{"media_id": "123"}]}, headers=auth)
    assert unknown.status_code == 403
    empty = httpx.post(dm, json={"text": ""}, headers=auth)
    assert empty.status_code == 400
    x.user_bearer_scopes.discard("media.write")
    scope = httpx.post(
        url + "/initialize",
        json={"media_type": "image/jpeg", "total_bytes": 10, "media_category": "dm_image"},
        headers=auth,
    )
    assert scope.status_code == 403 and "media.write" in scope.json()["detail"]
    assert x.received_by(CUSTOMER) == []


def test_an_emulator_refusal_is_a_clear_rejected(x: XEmulator, tmp_path: Path) -> None:
    c = oauth2(x)
    x.user_bearer_scopes.discard("media.write")
    with pytest.raises(Rejected, match=r"X refused the file label.jpg: .*media.write.*dmbridge x-auth"):
        c.send(reply(tmp_path, JPEG, "label.jpg", "image/jpeg"))
    assert x.received_by(CUSTOMER) == []


def test_a_failed_upload_is_retried_without_uncertainty(x: XEmulator, tmp_path: Path) -> None:
    c = oauth2(x)
    x.fail_next("media", status=503)
    with pytest.raises(RetryLater) as caught:
        c.send(reply(tmp_path, JPEG, "label.jpg", "image/jpeg"))
    assert not caught.value.uncertain  # nothing was sent: the retry need not look for the DM first
    c.send(reply(tmp_path, JPEG, "label.jpg", "image/jpeg"))
    assert len(x.received_media(CUSTOMER)) == 1


def test_a_customers_photo_is_read_with_the_user_token(x: XEmulator) -> None:
    c = oauth2(x)
    cursor = c.poll(None).cursor
    x.customer_sends(CUSTOMER, "see the dent", media=(JPEG, "image/jpeg"))
    x.customer_sends(CUSTOMER, "", media=(os.urandom(200_000), "video/mp4"))
    (photo_msg, video_msg) = c.poll(cursor).messages
    (photo,) = photo_msg.files
    assert photo.private and photo.kind == "image" and photo.name.startswith("photo-") and photo.name.endswith(".jpg")
    assert photo.url.startswith(x.api_url + "/2/dm_conversations/media/" + photo_msg.remote_id + "/")
    assert photo_msg.attachments == ()
    sink = io.BytesIO()
    assert c.fetch_file("acme_help", photo_msg.conversation, photo.url, sink, 10 * MB) == len(JPEG)
    assert sha(sink.getvalue()) == sha(JPEG)
    (video,) = video_msg.files
    assert video.kind == "video" and video.name.endswith(".mp4")
    with pytest.raises(Rejected, match=r"0\.2 MB, over the 97 KB limit"):
        c.fetch_file("acme_help", video_msg.conversation, video.url, io.BytesIO(), 100_000)


def test_a_media_ref_elsewhere_is_refused_without_sending_the_token(x: XEmulator) -> None:
    c = oauth2(x)
    before = len(x.requests)
    for ref in [
        "https://evil.example/2/dm_conversations/media/1/2/a.jpg",
        x.api_url.replace("127.0.0.1", "localhost") + "/2/dm_conversations/media/1/2/a.jpg",
        x.api_url + "/2/users/me",
        x.api_url + "/2/dm_conversations/media/1/2/../../../users/me",
        x.api_url + "/2/dm_conversations/media/1/2/a.jpg?redirect=https://evil.example",
    ]:
        with pytest.raises(Rejected, match="not an X DM media link"):
            c.fetch_file("acme_help", "1-2", ref, io.BytesIO(), MB)
    assert len(x.requests) == before


def test_gone_media_is_rejected_and_oauth1_is_not_used_for_it(x: XEmulator) -> None:
    c = oauth2(x)
    with pytest.raises(Rejected, match="X refused"):
        c.fetch_file("acme_help", "1-2", x.api_url + "/2/dm_conversations/media/1/2/a.jpg", io.BytesIO(), MB)
    with pytest.raises(Rejected, match=r"OAuth 2\.0 user token"):
        oauth1(x).fetch_file("acme_help", "1-2", x.api_url + "/2/dm_conversations/media/1/2/a.jpg", io.BytesIO(), MB)
