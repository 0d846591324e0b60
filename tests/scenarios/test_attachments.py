"""Customers' files end to end: the Meta emulator's and a generic source's webhooks carry https links to the
emulated CDN (https on 127.0.0.1, trusted through SSL_CERT_FILE), the real bridge streams each file and copies
it into the customer's thread through Slack's external upload flow, and names in the thread what it cannot copy."""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from typing import Any

import pytest
from sqlmodel import select

from bridge.sandbox.cdn import Cdn
from bridge.sandbox.harness import CHANNEL, IG_CUSTOMER, MESSENGER_CUSTOMER, Sandbox, shown, wait_for
from bridge.sandbox.meta import MetaEmulator
from bridge.store.tables import Outbox
from tests.scenarios.helpers import customer_posts, loops_ran, thread_with

pytestmark = pytest.mark.sandbox(meta=True)

MB = 1024 * 1024


def png(width: int = 320, height: int = 320) -> bytes:
    """A real PNG of random RGB pixels (random pixels barely compress: about ``3 * width * height`` bytes)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    rows = b"".join(b"\x00" + os.urandom(3 * width) for _ in range(height))  # filter byte 0, then the pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit truecolour
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def meta(box: Sandbox) -> MetaEmulator:
    assert box.meta is not None
    return box.meta


def cdn(box: Sandbox) -> Cdn:
    assert box.cdn is not None
    return box.cdn


def files(box: Sandbox, ts: str, count: int = 1) -> list[dict[str, Any]]:
    """The files in the thread, once there are ``count`` of them."""

    def found() -> list[dict[str, Any]] | None:
        shared = box.slack.files_in_thread(CHANNEL, ts)
        return shared if len(shared) >= count else None

    return wait_for(found, what=f"{count} file(s) in the thread")


def file_message(box: Sandbox, ts: str, file_id: str) -> dict[str, Any]:
    return next(m for m in box.slack.thread(CHANNEL, ts) if any(f["id"] == file_id for f in m.get("files", [])))


def note(box: Sandbox, ts: str, words: str) -> str:
    return wait_for(
        lambda: next((shown(m) for m in box.slack.thread(CHANNEL, ts) if words in shown(m)), None),
        timeout=20,
        what=f"a note saying {words!r}",
    )


def thread_of_customer(box: Sandbox, name: str) -> str:
    """The thread whose card names the customer (for a message with no text to look for)."""
    return wait_for(
        lambda: next((r["ts"] for r in box.slack.roots(CHANNEL) if name in shown(r)), None), what=f"{name}'s thread"
    )


def uploads(box: Sandbox) -> list[Outbox]:
    """The upload rows, once each has its outcome written (the file shows in Slack a moment before that)."""

    def settled() -> list[Outbox] | None:
        with box.bridge.ctx.db.session() as s:
            rows = list(s.exec(select(Outbox).where(Outbox.kind == "upload")).all())
        return rows if rows and all(r.state in ("sent", "failed") for r in rows) else None

    return wait_for(settled, what="every upload's outcome written")


def test_a_messenger_photo_lands_in_the_thread_after_its_text_byte_for_byte(box: Sandbox) -> None:
    photo = png()
    assert len(photo) > 250_000
    meta(box).customer_sends(
        MESSENGER_CUSTOMER, "The box arrived crushed, see the photo", attachments=[(photo, "image", "IMG_2041.png")]
    )
    ts = thread_with(box, "arrived crushed")
    (file,) = files(box, ts)
    assert sha(box.slack.file_bytes(file["id"])) == sha(photo) and file["size"] == len(photo)
    # Meta sends no file name, only the type and a link: the bridge names it by the link's last part
    assert file["name"] == "IMG_2041.png" and file["alt_txt"] == "a photo from Lena Fischer (Messenger): IMG_2041.png"
    shared = file_message(box, ts, file["id"])
    assert shared["text"] == "Lena Fischer (Messenger) sent a photo: IMG_2041.png"
    (text,) = customer_posts(box, ts)
    assert "arrived crushed" in shown(text) and float(text["ts"]) < float(shared["ts"])  # the text first
    (link,) = cdn(box).links
    assert cdn(box).hits(link) == 1
    (row,) = uploads(box)
    assert (row.state, row.attempts) == ("sent", 1)


def test_an_instagram_video_without_text_is_one_file_and_no_empty_post(box: Sandbox) -> None:
    clip = os.urandom(2 * MB)
    meta(box).customer_sends(IG_CUSTOMER, "", attachments=[(clip, "video", "clip.mp4")])
    ts = thread_of_customer(box, "Tomás Ruiz")
    (file,) = files(box, ts)
    assert sha(box.slack.file_bytes(file["id"])) == sha(clip) and file["name"] == "clip.mp4"
    assert file_message(box, ts, file["id"])["text"] == "Tomás Ruiz (Instagram) sent a video: clip.mp4"
    loops_ran(box, "slack-delivery")
    assert customer_posts(box, ts) == []  # no post for the empty text
    thread = box.slack.thread(CHANNEL, ts)
    assert all(shown(m).strip() for m in thread) and len(box.slack.files_in_thread(CHANNEL, ts)) == 1
    (row,) = uploads(box)
    assert (row.state, row.attempts) == ("sent", 1)


def test_an_expired_link_is_tried_once_more_then_named_in_the_thread(box: Sandbox) -> None:
    meta(box).customer_sends(
        MESSENGER_CUSTOMER, "Here is the label", attachments=[(png(40, 40), "image", "label.png")], ttl=0
    )
    ts = thread_with(box, "Here is the label")
    said = note(box, ts, "could not be copied")
    assert "label.png" in said and "expire" in said and "403" in said and "Lena Fischer (Messenger)" in said
    (link,) = cdn(box).links
    assert cdn(box).hits(link) == 2  # the first 403, then one more try
    assert box.slack.files_in_thread(CHANNEL, ts) == [] and box.slack.calls("files.getUploadURLExternal") == []
    (row,) = uploads(box)
    assert row.state == "failed" and row.attempts == 2


@pytest.mark.sandbox(meta=True, dmbridge_max_attachment_mb=1)
def test_a_file_over_the_cap_is_named_with_its_size_and_not_uploaded(box: Sandbox) -> None:
    big = os.urandom(3 * MB // 2)
    meta(box).customer_sends(IG_CUSTOMER, "the whole unboxing", attachments=[(big, "video", "unboxing.mp4")])
    ts = thread_with(box, "the whole unboxing")
    said = note(box, ts, "could not be copied")
    assert "unboxing.mp4" in said and "1.5 MB, over the 1 MB limit" in said and "Instagram" in said
    assert box.slack.files_in_thread(CHANNEL, ts) == [] and box.slack.calls("files.getUploadURLExternal") == []
    (row,) = uploads(box)
    assert row.state == "failed" and row.attempts == 1


@pytest.mark.sandbox(generic=True)
def test_a_generic_sources_attachment_arrives_the_same_way(box: Sandbox) -> None:
    assert box.generic is not None
    receipt = b"%PDF-1.4\n" + os.urandom(150_000)
    resp = box.generic.customer_sends(
        "chat-77", "visitor-7", "Ana Costa", "My receipt", attachments=[(receipt, "application/pdf", "receipt.pdf")]
    )
    assert resp.status_code == 200
    ts = thread_with(box, "My receipt")
    (file,) = files(box, ts)
    assert sha(box.slack.file_bytes(file["id"])) == sha(receipt) and file["name"] == "receipt.pdf"
    assert file_message(box, ts, file["id"])["text"] == "Ana Costa (Webhook) sent a file: receipt.pdf"
    (row,) = uploads(box)
    assert (row.state, row.attempts) == ("sent", 1)


def test_the_same_webhook_delivered_twice_copies_the_file_once(box: Sandbox) -> None:
    photo = png(200, 200)
    item = meta(box).message_event(IG_CUSTOMER, "twice?", attachments=[(photo, "image", "IMG_7.png")])
    assert meta(box).deliver_events([item]).status_code == 200
    assert meta(box).deliver_events([item]).status_code == 200  # Meta retries what it thinks went unanswered
    ts = thread_with(box, "twice?")
    (file,) = files(box, ts)
    assert sha(box.slack.file_bytes(file["id"])) == sha(photo)
    loops_ran(box, "slack-delivery")  # past any second copy the bridge could have queued
    assert len(box.slack.files_in_thread(CHANNEL, ts)) == 1
    assert len(box.slack.calls("files.completeUploadExternal")) == 1
    (link,) = cdn(box).links
    assert cdn(box).hits(link) == 1
    (row,) = uploads(box)
    assert (row.state, row.attempts) == ("sent", 1)
