"""X Chat media at the connector, against the X emulator with real chatxdk cryptography on both sides: a
customer's encrypted photo read back byte for byte through ``fetch_file`` (the key found again from the key
events, by the version the message names), an agent's file encrypted, uploaded in segments and decrypted by
the customer's app, and what is refused: altered ciphertext, another conversation's reference, a file over the
cap (before any download when its size is known), a file X no longer has, and X busy."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge import x_chat_keys
from bridge.domain import InboundFile, InboundMessage, OutboundFile, OutboundMessage, Platform
from bridge.errors import Rejected, RetryLater
from bridge.sandbox.x import BRAND_ID, XEmulator
from bridge.store import migrate
from bridge.store.db import Database
from connectors.xchat import convert, media
from connectors.xchat.api import ChatApi
from connectors.xchat.connector import XChatConnector
from tests.unit.test_xchat_media import png

MARIA, JDOE = "1290011223344556677", "1290011223344558888"
MB = 1_000_000


@dataclass
class World:
    x: XEmulator
    conn: XChatConnector
    fresh: XChatConnector  # another process: holds no key yet
    cursor: str | None


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    x = XEmulator()
    x.start()
    try:
        db = Database(f"sqlite:///{tmp_path / 'bridge.db'}")
        migrate.upgrade(db)
        secret = x_chat_keys.new_secret_key()
        api = ChatApi(x.api_url, user_bearer_token=x.user_bearer_token)
        assert x_chat_keys.setup(db, api, secret).ok
        conns = [
            XChatConnector(
                ChatApi(x.api_url, user_bearer_token=x.user_bearer_token), lambda: x_chat_keys.load(db, secret)
            )
            for _ in range(2)
        ]
        for c in conns:
            c.start()
        x.add_chat_customer(MARIA, "maria_l", "Maria López")
        x.add_chat_customer(JDOE, "jdoe", "J Doe")
        yield World(x, conns[0], conns[1], conns[0].poll(None).cursor)
    finally:
        x.stop()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def conversation(customer: str) -> str:
    return str(convert.canonical(customer, BRAND_ID))


def received(w: World) -> list[InboundMessage]:
    batch = w.conn.poll(w.cursor)
    w.cursor = batch.cursor
    return [o.message for o in w.conn.open(list(batch.sealed)) if o.message is not None]


def fetch(conn: XChatConnector, file: InboundFile, conv: str, cap: int = 100 * MB) -> bytes:
    sink = io.BytesIO()
    assert conn.fetch_file(conn.account, conv, file.url, sink, cap) == len(sink.getvalue())
    return sink.getvalue()


def media_calls(w: World) -> list[tuple[str, str, int]]:
    return [r for r in w.x.requests if r[1].startswith("/2/chat/media/")]


# ------------------------------------------------------------------------------------------ customer → thread


def test_a_customers_photo_is_a_private_file_read_back_byte_for_byte(world: World) -> None:
    photo = png(400, 300)
    world.x.customer_sends_file(MARIA, photo, "IMG_2041.png", "image", "the box arrived crushed")
    (msg,) = received(world)
    assert msg.text == "the box arrived crushed" and msg.attachments == () and msg.via == "xchat"
    (file,) = msg.files
    assert file.private and file.kind == "image" and file.name == "IMG_2041.png" and file.size == len(photo)
    assert file.content_type == "image/png" and file.url.startswith("xchat:" + conversation(MARIA) + ":")
    assert media.parse_ref(file.url).media_hash_key == file.id
    assert sha(fetch(world.conn, file, conversation(MARIA))) == sha(photo)
    # nothing of a key travels in the reference (it is stored in the clear): another process finds the key again
    assert sha(fetch(world.fresh, file, conversation(MARIA))) == sha(photo)


def test_each_file_opens_with_the_key_of_its_own_version_after_a_rotation(world: World) -> None:
    first, second = os.urandom(70_000), os.urandom(90_000)
    world.x.customer_sends_file(MARIA, first, "a.pdf", "file")
    world.x.customer_sets_keys(MARIA)  # the customer's app rotates the conversation key
    world.x.customer_sends_file(MARIA, second, "b.pdf", "file")
    files = [f for m in received(world) for f in m.files]
    versions = {media.parse_ref(f.url).key_version for f in files}
    assert len(versions) == 2
    assert [sha(fetch(world.fresh, f, conversation(MARIA))) for f in files] == [sha(first), sha(second)]


def test_altered_ciphertext_is_refused_not_copied(world: World) -> None:
    world.x.customer_sends_file(MARIA, os.urandom(150_000), "clip.mp4", "video", tamper=True)
    (file,) = received(world)[0].files
    with pytest.raises(Rejected, match="does not decrypt"):
        fetch(world.conn, file, conversation(MARIA))


def test_a_reference_for_another_conversation_is_refused_without_a_call(world: World) -> None:
    world.x.customer_sends_file(MARIA, os.urandom(1000), "a.pdf", "file")
    (file,) = received(world)[0].files
    before = len(media_calls(world))
    for conv in (conversation(JDOE), "1-2", "g123"):
        with pytest.raises(Rejected, match="another conversation"):
            fetch(world.conn, file, conv)
    with pytest.raises(Rejected, match="not an X Chat file"):
        world.conn.fetch_file(world.conn.account, conversation(MARIA), file.url + "/../x", io.BytesIO(), MB)
    assert len(media_calls(world)) == before


def test_a_file_over_the_cap_is_refused_before_download_when_its_size_is_known(world: World) -> None:
    world.x.customer_sends_file(MARIA, os.urandom(300_000), "big.pdf", "file")
    (file,) = received(world)[0].files
    with pytest.raises(Rejected, match=r"0\.3 MB, over the 0\.0954 MB limit"):
        fetch(world.conn, file, conversation(MARIA), cap=100_000)
    assert media_calls(world) == []  # not even asked for


def test_a_file_that_lies_about_its_size_is_stopped_by_its_length_or_its_bytes(world: World) -> None:
    world.x.customer_sends_file(MARIA, os.urandom(300_000), "big.pdf", "file", declared_size=10)
    (file,) = received(world)[0].files
    sink = io.BytesIO()
    with pytest.raises(Rejected, match="over the"):
        world.conn.fetch_file(world.conn.account, conversation(MARIA), file.url, sink, 100_000)
    assert sink.getvalue() == b""  # the answer's Content-Length said it: nothing was read


def test_a_file_x_no_longer_has_is_refused_and_a_busy_x_is_retried(world: World) -> None:
    world.x.customer_sends_file(MARIA, os.urandom(1000), "a.pdf", "file")
    (file,) = received(world)[0].files
    world.x.fail_next("read", status=429)
    with pytest.raises(RetryLater):
        fetch(world.conn, file, conversation(MARIA))
    world.x.fail_next("read", status=503)
    with pytest.raises(RetryLater):
        fetch(world.conn, file, conversation(MARIA))
    world.x.chat.media.blobs.clear()
    with pytest.raises(Rejected, match="Could not find media"):
        fetch(world.conn, file, conversation(MARIA))


# ------------------------------------------------------------------------------------------ thread → customer


def outbound(w: World, customer: str, text: str, file: OutboundFile | None) -> OutboundMessage:
    return OutboundMessage(
        platform=Platform.X,
        account=w.conn.account,
        conversation=conversation(customer),
        recipient_id=customer,
        text=text,
        via="xchat",
        file=file,
    )


def local(tmp_path: Path, name: str, data: bytes, content_type: str) -> OutboundFile:
    path = tmp_path / name
    path.write_bytes(data)
    kind = content_type.split("/")[0] if content_type.split("/")[0] in ("image", "video", "audio") else "file"
    return OutboundFile(name=name, kind=kind, content_type=content_type, size=len(data), path=str(path))


def test_an_agents_photo_goes_encrypted_with_the_text_and_the_customer_decrypts_it(
    world: World, tmp_path: Path
) -> None:
    world.x.customer_chats(MARIA, "¿me mandan la factura?")
    received(world)
    photo = png(320, 200)
    sent = world.conn.send(outbound(world, MARIA, "Aquí está la foto", local(tmp_path, "foto.png", photo, "image/png")))
    assert world.x.chat_received_by(MARIA) == ["Aquí está la foto"]  # text and file: one message
    ((name, data),) = world.x.chat_files_received_by(MARIA)
    assert name == "foto.png" and sha(data) == sha(photo)
    posts = [p for m, p, s in world.x.requests if m == "POST" and "/chat/media/upload/" in p]
    assert posts[0].endswith("/initialize") and posts[-1].endswith("/finalize") and len(posts) == 3
    (mine,) = [m for m in received(world) if m.from_brand]  # our own send, as X echoes it: the file named
    assert mine.remote_id == sent.remote_id and mine.files[0].kind == "image"
    assert mine.files[0].size == len(photo)


def test_a_large_file_goes_in_segments_alone_and_is_found_after_a_lost_answer(world: World, tmp_path: Path) -> None:
    data = os.urandom(5 * MB)  # three 2 MiB segments of ciphertext
    message = outbound(world, JDOE, "", local(tmp_path, "manual.pdf", data, "application/pdf"))
    sent = world.conn.send(message)
    assert [sha(d) for _, d in world.x.chat_files_received_by(JDOE)] == [sha(data)]
    appends = [p for m, p, s in world.x.requests if p.endswith("/append")]
    assert len(appends) == 3
    assert world.conn.find_sent(message, since=0.0, known=set()) == sent
    text_only = outbound(world, JDOE, "", None)
    assert world.conn.find_sent(message, since=0.0, known={sent.remote_id}) is None
    assert text_only.file is None


def test_a_file_x_chat_does_not_take_is_refused_before_any_upload(world: World, tmp_path: Path) -> None:
    world.x.customer_chats(MARIA, "hola")
    received(world)
    big = local(tmp_path, "huge.png", os.urandom(6 * MB), "image/png")
    with pytest.raises(Rejected, match="up to 5 MB"):
        world.conn.send(outbound(world, MARIA, "", big))
    link = OutboundFile(name="a.pdf", kind="file", content_type="application/pdf", size=3, url="https://x/a.pdf")
    with pytest.raises(Rejected, match="not a link"):
        world.conn.send(outbound(world, MARIA, "", link))
    assert media_calls(world) == [] and world.x.chat_received_by(MARIA) == []
