"""X Chat files end to end through the real serve path: a customer's photo, encrypted by their own chatxdk
identity and uploaded to X as ciphertext, lands in the thread byte for byte (webhook → sealed event → opener
→ Upload → the copier reads it through the ``x`` router's chat connector, which downloads and decrypts it);
altered ciphertext and a file over the cap become the thread's note, never garbage; the Upload row in the
database names the file without any key."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import pytest
from sqlmodel import select

from bridge.sandbox.demo import MARIA, SAM
from bridge.sandbox.harness import CHANNEL, Sandbox, shown, wait_for
from bridge.store.tables import Outbox
from tests.scenarios.helpers import customer_posts, thread_with
from tests.unit.test_xchat_media import png

pytestmark = pytest.mark.sandbox(x_webhooks=True, x_chat=True)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files(box: Sandbox, ts: str) -> list[dict[str, Any]]:
    return wait_for(lambda: box.slack.files_in_thread(CHANNEL, ts) or None, what="a file in the thread")


def note(box: Sandbox, ts: str, words: str) -> str:
    return wait_for(
        lambda: next((shown(m) for m in box.slack.thread(CHANNEL, ts) if words in shown(m)), None),
        timeout=20,
        what=f"a note saying {words!r}",
    )


def uploads(box: Sandbox) -> list[Outbox]:
    """The upload rows, once each has its outcome written (the file shows in Slack a moment before that)."""

    def settled() -> list[Outbox] | None:
        with box.bridge.ctx.db.session() as s:
            rows = list(s.exec(select(Outbox).where(Outbox.kind == "upload")).all())
        return rows if rows and all(r.state in ("sent", "failed") for r in rows) else None

    return wait_for(settled, what="every upload's outcome written")


def media_reads(box: Sandbox) -> list[str]:
    return [p for m, p, _ in box.x.requests if m == "GET" and p.startswith("/2/chat/media/")]


def test_a_customers_encrypted_photo_lands_in_the_thread_byte_for_byte(box: Sandbox) -> None:
    photo = png(500, 240)
    box.x.customer_sends_file(MARIA, photo, "IMG_7731.png", "image", "La caja llegó rota, mire la foto")
    ts = thread_with(box, "La caja llegó rota")
    (file,) = files(box, ts)
    assert sha(box.slack.file_bytes(file["id"])) == sha(photo) and file["size"] == len(photo)
    assert file["name"] == "IMG_7731.png"
    (text,) = customer_posts(box, ts)
    assert "La caja llegó rota" in shown(text) and "attachment" not in shown(text)
    (row,) = uploads(box)
    assert row.state == "sent" and len(media_reads(box)) == 1
    stored = row.payload if isinstance(row.payload, str) else str(row.payload)
    assert "xchat:" in stored and "IMG_7731.png" in stored
    held = box.x.chat.conversations[MARIA].keys
    forms = [f(k) for k in held.values() for f in (bytes.hex, lambda k: base64.b64encode(k).decode())]
    assert forms and not any(form in stored for form in forms)  # no key in the clear


def test_altered_ciphertext_is_named_in_the_thread_not_copied(box: Sandbox) -> None:
    box.x.customer_sends_file(MARIA, os.urandom(120_000), "factura.pdf", "file", "la factura", tamper=True)
    ts = thread_with(box, "la factura")
    said = note(box, ts, "could not be copied")
    assert "factura.pdf" in said and "does not decrypt" in said and "X" in said
    assert box.slack.files_in_thread(CHANNEL, ts) == [] and box.slack.calls("files.getUploadURLExternal") == []
    (row,) = uploads(box)
    assert row.state == "failed"


@pytest.mark.sandbox(x_webhooks=True, x_chat=True, dmbridge_max_attachment_mb=1)
def test_a_file_over_the_cap_is_named_with_its_size_and_never_downloaded(box: Sandbox) -> None:
    big = os.urandom(3 * 1024 * 1024 // 2)
    box.x.customer_sends_file(MARIA, big, "unboxing.mp4", "video", "todo el video")
    ts = thread_with(box, "todo el video")
    said = note(box, ts, "could not be copied")
    assert "unboxing.mp4" in said and "1.5 MB, over the 1 MB limit" in said
    assert box.slack.files_in_thread(CHANNEL, ts) == [] and media_reads(box) == []


def test_an_agents_file_reaches_the_x_chat_customer_encrypted_with_the_text_on_the_same_message(box: Sandbox) -> None:
    box.x.customer_sends_file(MARIA, png(40, 40), "IMG_1.png", "image", "Do you have the return label?")
    ts = thread_with(box, "the return label")
    label = png(300, 200)
    reply_ts, _, _ = box.slack.share_file_as_user(
        SAM, CHANNEL, label, "return-label.png", thread_ts=ts, text="Here it is", mimetype="image/png"
    )
    got = wait_for(lambda: box.x.chat_files_received_by(MARIA) or None, timeout=20, what="the customer's file")
    assert [(name, sha(data)) for name, data in got] == [("return-label.png", sha(label))]
    assert box.x.chat_received_by(MARIA)[-1] == "Here it is"  # one message: the text and the file
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, reply_ts), what="✅ on the reply")
    uploaded = [p for m, p, _ in box.x.requests if m == "POST" and p.startswith("/2/chat/media/upload/")]
    assert uploaded[0].endswith("/initialize") and uploaded[-1].endswith("/finalize")
