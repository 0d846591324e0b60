"""The X Chat opener in-process: sealed rows in, messages and settled rows out, with a fake connector and a
manual clock. What X cannot be asked for waits; an unforeseen failure gives up after the attempt cap; one bad
event never holds the others."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import select

from bridge.domain import Customer, InboundMessage, Opened, Platform, SealedEvent
from bridge.errors import RetryLater
from bridge.pollers import Opener
from bridge.store import x_chat
from bridge.store.tables import InboundEvent, Outbox, XChatEvent
from tests.engine.fakes import make_ctx

CONV = "42-7"


class FakeChat:
    """Opens ``ok:…`` events to a message, fails ``bad:…`` ones, and raises what ``raises`` holds."""

    name, account = "xchat", "acme"
    platform = Platform.X

    def __init__(self) -> None:
        self.raises: Exception | None = None
        self.asked: list[list[str]] = []

    def open(self, events: list[SealedEvent]) -> list[Opened]:
        self.asked.append([e.event_id for e in events])
        if self.raises is not None:
            raise self.raises
        found = []
        for event in events:
            if event.encoded_event.startswith("bad:"):
                found.append(Opened(event.event_id, error="cannot be opened: garbage"))
                continue
            message = InboundMessage(
                platform=Platform.X,
                account="acme",
                remote_id=event.event_id,
                conversation=event.conversation,
                customer=Customer(id="42", name="Maria"),
                text=event.encoded_event.removeprefix("ok:"),
                sent_at=datetime(2027, 1, 15, tzinfo=UTC),
                via="xchat",
            )
            found.append(Opened(event.event_id, message=message))
        return found


def store(ctx: object, *events: tuple[str, str]) -> None:
    with ctx.db.session() as s:  # type: ignore[attr-defined]
        for event_id, body in events:
            x_chat.store_sealed(s, SealedEvent("acme", CONV, event_id, body), ctx.clock())  # type: ignore[attr-defined]


def rows(ctx: object) -> dict[str, XChatEvent]:
    with ctx.db.session() as s:  # type: ignore[attr-defined]
        return {r.event_id: r for r in s.exec(select(XChatEvent)).all()}


def test_opened_events_become_messages_and_a_bad_one_fails_alone(db_url: str) -> None:
    ctx, _clock, db, _slack, _x = make_ctx(db_url)
    chat = FakeChat()
    store(ctx, ("e1", "ok:hello"), ("e2", "bad:???"), ("e3", "ok:still here"))
    store(ctx, ("e1", "ok:hello"))  # a redelivery stores nothing
    assert Opener(ctx, chat).step() == 0.0  # type: ignore[arg-type]
    states = {k: (r.state, r.error) for k, r in rows(ctx).items()}
    assert states == {"e1": ("opened", None), "e2": ("failed", "cannot be opened: garbage"), "e3": ("opened", None)}
    with db.session() as s:
        texts = [e.text for e in s.exec(select(InboundEvent).order_by(InboundEvent.id)).all()]
        kinds = [o.kind for o in s.exec(select(Outbox)).all()]
    assert texts == ["hello", "still here"] and kinds.count("mirror") == 2 and "card" in kinds
    assert rows(ctx)["e1"].encoded_event == ""  # opened: the ciphertext is not kept
    assert Opener(ctx, chat).step() > 0 and chat.asked == [["e1", "e2", "e3"]]  # nothing more to open


def test_when_x_cannot_be_asked_the_batch_waits_for_the_reset(db_url: str) -> None:
    ctx, clock, _db, _slack, _x = make_ctx(db_url)
    chat, opener = FakeChat(), None
    store(ctx, ("e1", "ok:hello"))
    chat.raises = RetryLater("X rate limit reached", retry_at=clock() + 120, rate_limited=True)
    opener = Opener(ctx, chat)  # type: ignore[arg-type]
    assert opener.step() == 120
    assert rows(ctx)["e1"].state == "pending" and rows(ctx)["e1"].next_at == clock() + 120
    clock.advance(60)
    opener.step()
    assert len(chat.asked) == 1  # not due yet: X was not asked again
    clock.advance(61)
    chat.raises = None
    assert opener.step() == 0.0 and rows(ctx)["e1"].state == "opened"


def test_an_unforeseen_failure_gives_up_after_the_attempt_cap(db_url: str) -> None:
    ctx, clock, _db, _slack, _x = make_ctx(db_url, max_attempts=3)
    chat = FakeChat()
    store(ctx, ("e1", "ok:hello"))
    chat.raises = RuntimeError("chatxdk panicked")
    opener = Opener(ctx, chat)  # type: ignore[arg-type]
    for _ in range(3):
        opener.step()
        clock.advance(3600)
    row = rows(ctx)["e1"]
    assert row.state == "failed" and "RuntimeError: chatxdk panicked" in (row.error or "")
    assert len(chat.asked) == 3
