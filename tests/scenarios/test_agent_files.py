"""Agents' files end to end: an agent attaches a file to a thread reply in the Slack emulator (a ``file_share``
message), the real bridge reads it with the bot token and sends it on — to Messenger and Instagram through the Send
API's attachment upload, to a generic source as dmbridge's own signed, expiring link — and the customer's side
holds the same bytes. What a platform refuses is refused before anything goes, with ⚠️ and the reason."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
from sqlmodel import select

from bridge.sandbox.demo import SAM
from bridge.sandbox.harness import CHANNEL, IG_CUSTOMER, MESSENGER_CUSTOMER, Sandbox, shown, wait_for
from bridge.sandbox.meta import MetaEmulator
from bridge.sandbox.server import OffsetClock
from bridge.store.tables import Outbox
from tests.scenarios.helpers import thread_with
from tests.scenarios.test_attachments import MB, note, png, sha

pytestmark = pytest.mark.sandbox(meta=True)


def meta(box: Sandbox) -> MetaEmulator:
    assert box.meta is not None
    return box.meta


def sent_files(box: Sandbox, customer: str, count: int) -> list[dict[str, Any]]:
    """What the customer received through the Send API with a file, once there are ``count``."""

    def found() -> list[dict[str, Any]] | None:
        got = [m["file"] for m in meta(box).log(customer) if m.get("via") == "api" and m.get("file")]
        return got if len(got) >= count else None

    return wait_for(found, timeout=20, what=f"{count} file(s) received by the customer")


def receipts(box: Sandbox, ts: str, name: str) -> list[str]:
    return wait_for(lambda: box.slack.reactions(CHANNEL, ts) if name in box.slack.reactions(CHANNEL, ts) else None)


def dm_rows(box: Sandbox) -> list[Outbox]:
    with box.bridge.ctx.db.session() as s:
        return list(s.exec(select(Outbox).where(Outbox.kind == "dm").order_by(Outbox.id)).all())  # type: ignore[arg-type]


def test_an_agents_photo_reaches_the_instagram_customer_after_the_text_byte_for_byte(box: Sandbox) -> None:
    meta(box).customer_sends(IG_CUSTOMER, "Can I see the label?")
    ts = thread_with(box, "see the label")
    label = png(200, 200)
    reply_ts, _, statuses = box.slack.share_file_as_user(
        SAM, CHANNEL, label, "label.png", thread_ts=ts, text="Here it is", mimetype="image/png"
    )
    assert statuses == [200]
    (got,) = sent_files(box, IG_CUSTOMER, 1)
    assert (got["sha256"], got["name"], got["type"], got["content_type"]) == (
        sha(label),
        "label.png",
        "image",
        "image/png",
    )
    assert "white_check_mark" in receipts(box, reply_ts, "white_check_mark")
    api = [m for m in meta(box).log(IG_CUSTOMER) if m.get("via") == "api"]
    assert [m["text"] for m in api] == ["Here it is", "[image label.png]"]  # the text first, then the file
    assert [r.state for r in dm_rows(box)] == ["sent", "sent"]
    # the file was read from Slack with the bot token: files.info, then its download URL
    assert [c.params.get("file") for c in box.slack.calls("files.info")] == [
        next(f["id"] for m in box.slack.thread(CHANNEL, ts) for f in m.get("files", []))
    ]


def test_several_files_go_in_order_each_as_its_own_messenger_message(box: Sandbox) -> None:
    meta(box).customer_sends(MESSENGER_CUSTOMER, "Where do I sign?")
    ts = thread_with(box, "Where do I sign")
    first, second = os.urandom(300_000), png(64, 64)
    box.slack.share_file_as_user(SAM, CHANNEL, first, "contract.pdf", thread_ts=ts, mimetype="application/pdf")
    box.slack.share_file_as_user(SAM, CHANNEL, second, "where.png", thread_ts=ts, mimetype="image/png")
    got = sent_files(box, MESSENGER_CUSTOMER, 2)
    assert [(f["name"], f["type"], f["sha256"]) for f in got] == [
        ("contract.pdf", "file", sha(first)),
        ("where.png", "image", sha(second)),
    ]


def test_a_file_instagram_would_refuse_is_refused_before_anything_goes(box: Sandbox) -> None:
    meta(box).customer_sends(IG_CUSTOMER, "Send me the brochure")
    ts = thread_with(box, "the brochure")
    big = os.urandom(9 * MB)  # Instagram takes images up to 8 MB
    reply_ts, _, _ = box.slack.share_file_as_user(
        SAM, CHANNEL, big, "brochure.png", thread_ts=ts, text="Attached!", mimetype="image/png"
    )
    said = note(box, ts, "Not sent to the customer")
    assert "Instagram takes images up to 8 MB" in said and "brochure.png" in said
    assert "warning" in receipts(box, reply_ts, "warning")
    assert dm_rows(box) == [] and box.slack.calls("files.info") == []  # nothing queued, nothing read
    assert [m for m in meta(box).log(IG_CUSTOMER) if m.get("via") == "api"] == []


def test_a_word_document_is_refused_for_instagram_with_the_formats_it_takes(box: Sandbox) -> None:
    meta(box).customer_sends(IG_CUSTOMER, "The invoice please")
    ts = thread_with(box, "The invoice please")
    mime = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    box.slack.share_file_as_user(SAM, CHANNEL, b"PK\x03\x04 docx", "invoice.docx", thread_ts=ts, mimetype=mime)
    said = note(box, ts, "Not sent to the customer")
    assert "Instagram takes other files as pdf only" in said and "invoice.docx" in said


@pytest.mark.sandbox(generic=True)
def test_a_generic_source_gets_a_signed_link_that_serves_the_same_bytes_and_nothing_else(box: Sandbox) -> None:
    src = box.generic
    assert src is not None
    src.customer_sends("chat-77", "visitor-77", "Ana", "Do you have the manual?")
    ts = thread_with(box, "have the manual")
    manual = os.urandom(700_000)
    box.slack.share_file_as_user(
        SAM, CHANNEL, manual, "manual.pdf", thread_ts=ts, text="Here you go", mimetype="application/pdf"
    )

    def delivered() -> dict[str, Any] | None:
        return next((d for d in src.deliveries if d.get("attachments")), None)

    reply = wait_for(delivered, timeout=20, what="a reply with an attachment")
    (item,) = reply["attachments"]
    assert reply["text"] == "Here you go"  # text and the file in one callback
    assert (item["name"], item["type"], item["content_type"], item["size"]) == (
        "manual.pdf",
        "file",
        "application/pdf",
        len(manual),
    )
    status, body = wait_for(lambda: src.files.get(item["url"]), what="the source fetching its link")
    assert status == 200 and sha(body) == sha(manual)
    assert item["url"].startswith(box.http.url + "/media/")
    assert box.settings.slack_bot_token not in item["url"] and "files-pri" not in item["url"]
    # a link altered by one character, or made up, serves nothing
    token = item["url"].rsplit("/", 1)[1]
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    for url in (f"{box.http.url}/media/{forged}", f"{box.http.url}/media/not-a-token", item["url"] + "x"):
        assert httpx.get(url).status_code == 404
    served = httpx.get(item["url"])
    assert served.headers["content-disposition"].startswith("attachment;")
    assert served.headers["x-content-type-options"] == "nosniff"


@pytest.mark.sandbox(generic=True)
def test_a_link_stops_working_when_it_expires(box: Sandbox, clock: OffsetClock) -> None:
    src = box.generic
    assert src is not None
    src.customer_sends("chat-78", "visitor-78", "Bo", "the photo?")
    ts = thread_with(box, "the photo?")
    box.slack.share_file_as_user(SAM, CHANNEL, png(20, 20), "p.png", thread_ts=ts, mimetype="image/png")
    reply = wait_for(lambda: next((d for d in src.deliveries if d.get("attachments")), None), timeout=20)
    url = reply["attachments"][0]["url"]
    wait_for(lambda: src.files.get(url), what="the source fetching its link")
    assert httpx.get(url).status_code == 200
    clock.offset += 24 * 3600 + 1  # DMBRIDGE_MEDIA_LINK_HOURS (24) later
    assert httpx.get(url).status_code == 404
    assert shown(box.slack.thread(CHANNEL, ts)[0])  # the thread is intact
