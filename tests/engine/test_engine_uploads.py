"""Customers' files copied into their threads, in-process: the real Slack runner and handler, a fake Slack, and
``httpx.MockTransport`` standing in for the platform's file server and Slack's upload URL. The bytes that reach
the upload URL are the customer's (SHA-256), streamed; what cannot be copied is named in the thread."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime

import httpx
from sqlmodel import select

from bridge.domain import Customer, InboundFile, InboundMessage, Platform
from bridge.inbound import ingest_message
from bridge.runner import Runner
from bridge.slack.files import MB, Copier
from bridge.slack_delivery import SlackHandler
from bridge.store.tables import Outbox
from tests.engine.fakes import CHANNEL, make_ctx

PHOTO = os.urandom(300_000)  # a photo-sized blob
BIG = 3 * MB


class Platform_files:
    """The platform's file server and Slack's upload URL, as one mock transport."""

    def __init__(self) -> None:
        self.gone_once: set[str] = set()
        self.received: dict[str, bytes] = {}
        self.fetched: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if request.url.host == "files.slack.test":
            body = request.read()
            assert request.headers["content-length"] == str(len(body))
            self.received[url] = body
            return httpx.Response(200, text="OK - " + str(len(body)))
        self.fetched.append(url)
        if url.endswith("/photo.jpg"):
            return httpx.Response(200, content=PHOTO, headers={"content-type": "image/jpeg"})
        if url.endswith("/expires-once.jpg"):
            if url in self.gone_once:
                return httpx.Response(200, content=PHOTO)
            self.gone_once.add(url)
            return httpx.Response(403)
        if url.endswith("/expired.jpg"):
            return httpx.Response(410)
        if url.endswith("/huge.mov"):
            return httpx.Response(200, content=b"\0" * BIG, headers={"content-length": str(BIG)})
        if url.endswith("/sneaky.bin"):  # no length announced, larger than the cap while streaming
            return httpx.Response(200, content=iter([b"\0" * MB] * 3))
        if url.endswith("/redirect"):
            return httpx.Response(302, headers={"location": "https://10.0.0.7/internal"})
        return httpx.Response(404)


def setup(db_url: str, *files: InboundFile, cap_mb: float = 2.0) -> tuple[object, Runner, Platform_files]:
    ctx, _clock, db, slack, _x = make_ctx(db_url)
    server = Platform_files()
    copier = Copier(
        slack,  # type: ignore[arg-type]
        cap_mb=cap_mb,
        timeout=5,
        resolver=lambda host: ["151.101.1.69"] if host.endswith(".example") else ["10.0.0.7"],
        transport=httpx.MockTransport(server),
    )
    runner = Runner(ctx, SlackHandler(ctx, copier=copier))
    message = InboundMessage(
        platform=Platform.INSTAGRAM,
        account="17841405309211844",
        remote_id="mid.1",
        conversation="42",
        customer=Customer(id="42", name="Tomás Ruiz"),
        text="look at this",
        sent_at=datetime.fromtimestamp(ctx.clock(), UTC),
        files=files,
    )
    with db.session() as s:
        ingest_message(s, message, CHANNEL, ctx.clock())
    return ctx, runner, server


def drain(ctx: object, runner: Runner, steps: int = 8) -> None:
    for _ in range(steps):
        runner.step()
        ctx.clock.advance(90)  # type: ignore[attr-defined]  # past any retry the steps booked


def test_a_photo_is_streamed_into_the_thread_with_who_sent_it(db_url: str) -> None:
    ctx, runner, server = setup(
        db_url, InboundFile("mid.1:0", "https://cdn.example/photo.jpg", "image", "IMG_2041.jpg")
    )
    drain(ctx, runner)
    slack = ctx.slack  # type: ignore[attr-defined]
    assert [u[:2] for u in slack.uploads] == [("IMG_2041.jpg", len(PHOTO))]
    assert slack.uploads[0][2] == "a photo from Tomás Ruiz (Instagram): IMG_2041.jpg"  # alt text
    (sent,) = server.received.values()
    assert hashlib.sha256(sent).hexdigest() == hashlib.sha256(PHOTO).hexdigest()
    (shared,) = slack.shared
    assert shared["comment"] == "Tomás Ruiz (Instagram) sent a photo: IMG_2041.jpg" and shared["channel"] == CHANNEL
    texts = [p[2] for p in slack.posts]
    assert texts.index("look at this") < len(texts)  # the text was mirrored first, in the same lane


def test_an_expired_link_is_tried_once_more_then_named_in_the_thread(db_url: str) -> None:
    ctx, runner, server = setup(
        db_url,
        InboundFile("mid.1:0", "https://cdn.example/expires-once.jpg", "image", "a.jpg"),
        InboundFile("mid.1:1", "https://cdn.example/expired.jpg", "image", "b.jpg"),
    )
    drain(ctx, runner)
    slack = ctx.slack  # type: ignore[attr-defined]
    assert [f["title"] for f in slack.shared] == ["a.jpg"]  # the second try worked
    notes = [p[2] for p in slack.posts if "could not be copied" in p[2]]
    assert len(notes) == 1 and "b.jpg" in notes[0] and "410" in notes[0] and "Instagram" in notes[0]
    assert server.fetched.count("https://cdn.example/expired.jpg") == 2


def test_over_the_cap_by_header_or_while_streaming_is_named_never_silent(db_url: str) -> None:
    ctx, runner, _server = setup(
        db_url,
        InboundFile("mid.1:0", "https://cdn.example/huge.mov", "video", "huge.mov"),
        InboundFile("mid.1:1", "https://cdn.example/sneaky.bin", "file", "sneaky.bin"),
    )
    drain(ctx, runner)
    slack = ctx.slack  # type: ignore[attr-defined]
    assert slack.uploads == []
    notes = [p[2] for p in slack.posts if "could not be copied" in p[2]]
    assert len(notes) == 2 and "3.0 MB, over the 2 MB limit" in notes[0] and "larger than the 2 MB" in notes[1]


def test_private_addresses_are_never_fetched_even_by_redirect(db_url: str) -> None:
    ctx, runner, server = setup(
        db_url,
        InboundFile("mid.1:0", "https://intranet.corp/secret.jpg", "image", "secret.jpg"),
        InboundFile("mid.1:1", "https://cdn.example/redirect", "image", "moved.jpg"),
    )
    drain(ctx, runner)
    assert "https://intranet.corp/secret.jpg" not in server.fetched
    assert all("10.0.0.7" not in url for url in server.fetched)
    slack = ctx.slack  # type: ignore[attr-defined]
    notes = [p[2] for p in slack.posts if "could not be copied" in p[2]]
    assert len(notes) == 2 and all("public address" in n for n in notes)


def test_an_upload_whose_answer_was_lost_is_found_not_redone(db_url: str) -> None:
    ctx, runner, _server = setup(db_url, InboundFile("mid.1:0", "https://cdn.example/photo.jpg", "image", "p.jpg"))
    slack = ctx.slack  # type: ignore[attr-defined]
    drain(ctx, runner)
    with ctx.db.session() as s:  # type: ignore[attr-defined]
        row = s.exec(select(Outbox).where(Outbox.kind == "upload")).one()
        row.state, row.uncertain = "pending", True  # as if the outcome write had been lost in a crash
        s.add(row)
    drain(ctx, runner)
    assert len(slack.shared) == 1 and len(slack.uploads) == 1
