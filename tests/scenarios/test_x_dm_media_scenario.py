"""A customer's photo by legacy X DM, end to end through the real app: the bridge polls (or receives the Account
Activity webhook), reads the media from X's DM media endpoint with the stored OAuth 2.0 user token, and copies the
same bytes into the customer's thread; what it cannot copy is named there."""

from __future__ import annotations

import hashlib
import os

import pytest

from bridge.sandbox.demo import SAM
from bridge.sandbox.harness import CHANNEL, Sandbox, shown, wait_for
from tests.scenarios.test_attachments import files, note, png

MARIA = "1290011223344556677"
MB = 1024 * 1024


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def thread_with(box: Sandbox, text: str) -> str:
    return wait_for(
        lambda: (
            next((r["ts"] for r in box.slack.roots(CHANNEL) if text in shown(r)), None)
            or next(
                (
                    r["ts"]
                    for r in box.slack.roots(CHANNEL)
                    for m in box.slack.thread(CHANNEL, r["ts"])
                    if text in shown(m)
                ),
                None,
            )
        ),
        timeout=20,
        what=f"the thread with {text!r}",
    )


def downloads(box: Sandbox) -> list[int]:
    return [status for _, path, status in box.x.requests if path == "/2/dm_conversations/media"]


@pytest.mark.sandbox(x_oauth2=True)
def test_a_customers_photo_by_dm_lands_in_the_thread_byte_for_byte(box: Sandbox) -> None:
    photo = png(200, 200)
    box.x.customer_sends(MARIA, "The parcel came like this", media=(photo, "image/png"))
    ts = thread_with(box, "The parcel came like this")
    (file,) = files(box, ts)
    assert sha(box.slack.file_bytes(file["id"])) == sha(photo) and file["size"] == len(photo)
    assert file["name"].startswith("photo-") and file["name"].endswith(".png")
    assert downloads(box) == [200]


@pytest.mark.sandbox(x_oauth2=True, x_webhooks=True)
def test_a_video_by_webhook_is_copied_too(box: Sandbox) -> None:
    clip = os.urandom(MB + 4321)
    box.x.customer_sends(MARIA, "unboxing video", media=(clip, "video/mp4"))
    ts = thread_with(box, "unboxing video")
    (file,) = files(box, ts)
    assert sha(box.slack.file_bytes(file["id"])) == sha(clip) and file["name"].endswith(".mp4")


@pytest.mark.sandbox(x_oauth2=True, dmbridge_max_attachment_mb=1)
def test_oversize_media_is_named_in_the_thread(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, "the long one", media=(os.urandom(3 * MB // 2), "video/mp4"))
    ts = thread_with(box, "the long one")
    said = note(box, ts, "could not be copied")
    assert "1.5 MB, over the 1 MB limit" in said and ".mp4" in said
    assert box.slack.files_in_thread(CHANNEL, ts) == []


@pytest.mark.sandbox()
def test_with_oauth1_the_media_is_named_not_fetched(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, "photo over oauth1", media=(png(20, 20), "image/png"))
    ts = thread_with(box, "photo over oauth1")
    said = note(box, ts, "could not be copied")
    assert "OAuth 2.0 user token" in said
    assert downloads(box) == []  # the OAuth 1.0a credential is never offered to the media endpoint


def test_an_agents_files_go_by_dm_one_per_message_the_first_with_the_text(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, "Could you send the label and the receipt?")
    ts = thread_with(box, "the label and the receipt")
    label, receipt = png(120, 120), png(60, 60)
    box.slack.share_file_as_user(SAM, CHANNEL, label, "label.png", thread_ts=ts, text="Both here", mimetype="image/png")
    wait_for(lambda: len(box.x.received_media(MARIA)) == 1, timeout=20, what="the first file by DM")
    reply_ts, _, _ = box.slack.share_file_as_user(
        SAM, CHANNEL, receipt, "receipt.png", thread_ts=ts, mimetype="image/png"
    )
    got = wait_for(lambda: box.x.received_media(MARIA) if len(box.x.received_media(MARIA)) == 2 else None, timeout=20)
    assert [sha(data) for data in got] == [sha(label), sha(receipt)]
    assert "Both here" in box.x.received_by(MARIA)  # the text rode with the first file
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, reply_ts), what="✅ on the reply")


def test_a_file_x_does_not_take_is_refused_with_the_reason(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, "And the invoice?")
    ts = thread_with(box, "And the invoice?")
    reply_ts, _, _ = box.slack.share_file_as_user(
        SAM, CHANNEL, b"%PDF-1.7 invoice", "invoice.pdf", thread_ts=ts, text="Attached", mimetype="application/pdf"
    )
    said = note(box, ts, "Not sent to the customer")
    assert "X does not take other files (invoice.pdf)" in said
    wait_for(lambda: "warning" in box.slack.reactions(CHANNEL, reply_ts), what="⚠️ on the reply")
    assert "Attached" not in box.x.received_by(MARIA)
