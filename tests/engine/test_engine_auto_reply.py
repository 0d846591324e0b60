"""An automatic reply to a customer the platform names only later (Meta: ids in the webhook, the name from a
profile lookup) waits for that lookup: ``AutoReplyDue`` in the conversation's Slack lane (bridge/automatic.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from bridge.context import Context
from bridge.deliveries_playbook import AutoReplyDue
from bridge.domain import Customer, InboundMessage, Platform
from bridge.errors import Rejected
from bridge.inbound import ingest_message
from bridge.playbook_config import AutoReply
from bridge.store.desk import save_template
from bridge.store.outbox import decode
from bridge.store.tables import AutoReplySent, Conversation
from bridge.toml_config import FileConfig
from tests.engine.fakes import CHANNEL, FakeX, ManualClock, make_ctx, platform_runner, rows, slack_runner

WELCOME = FileConfig(auto_replies=[AutoReply(kind="welcome", template="welcome")])


class Profiles:
    def __init__(self, name: str | None) -> None:
        self.name = name

    def profile(self, account: str, customer_id: str) -> Customer:
        if self.name is None:
            raise Rejected("this customer's profile is not available")
        return Customer(id=customer_id, name=self.name)


def setup(db_url: str, name: str | None) -> tuple[Context, ManualClock, FakeX]:
    ctx, clock, _db, _slack, x = make_ctx(db_url)
    ctx = replace(ctx, toml=WELCOME, profiles={"x": Profiles(name)})  # type: ignore[dict-item]
    with ctx.db.session() as s:
        save_template(s, "welcome", "Hi {first_name}, thanks for writing!", "UAGENT", clock())
    return ctx, clock, x


def customer_writes(ctx: Context, text: str = "hello?", remote_id: str = "m-1") -> Conversation:
    msg = InboundMessage(
        platform=Platform.X,
        account="acme",
        remote_id=remote_id,
        conversation="c-1",
        customer=Customer(id="4711", name="4711"),  # only the id, as Meta's webhooks give it
        text=text,
        sent_at=datetime.fromtimestamp(ctx.clock(), UTC),
        needs_profile=True,
    )
    with ctx.db.session() as s:
        ingest_message(s, msg, CHANNEL, ctx.clock(), toml=ctx.toml)
        return s.exec(select(Conversation)).one()


def run(ctx: Context, clock: ManualClock, steps: int = 8) -> None:
    for _ in range(steps):
        platform_runner(ctx).step()
        slack_runner(ctx).step()
        clock.advance(1)


def records(ctx: Context) -> list[AutoReplySent]:
    with ctx.db.read() as s:
        return list(s.exec(select(AutoReplySent)).all())


def test_the_welcome_waits_for_the_profile_and_names_the_customer(db_url: str) -> None:
    ctx, clock, x = setup(db_url, "Lena Fischer")
    customer_writes(ctx)
    kinds = [r.kind for r in rows(ctx)]
    assert kinds.index("profile") < kinds.index("auto_reply_due") and "dm" not in kinds  # nothing rendered yet
    assert [r.key.startswith("autoreply:") for r in records(ctx)] == [True]  # the cooldown counts it already
    customer_writes(ctx, "anyone?", "m-2")  # a second message before it went: no second welcome
    assert [r.kind for r in rows(ctx)].count("auto_reply_due") == 1
    run(ctx, clock)
    assert x.sent == ["Hi Lena, thanks for writing!"]
    assert [r.key.startswith("dm:") or r.key.startswith("tpl") for r in records(ctx)] == [True]
    assert all(r.state == "sent" for r in rows(ctx) if r.kind in ("auto_reply_due", "dm"))
    run(ctx, clock)
    assert len(x.sent) == 1


def test_without_a_profile_it_says_there(db_url: str) -> None:
    ctx, clock, x = setup(db_url, None)
    customer_writes(ctx)
    run(ctx, clock)
    assert x.sent == ["Hi there, thanks for writing!"]


@pytest.mark.parametrize("change", ["answered", "opted_out"])
def test_an_agent_who_answered_first_or_an_opt_out_cancels_it(db_url: str, change: str) -> None:
    ctx, clock, x = setup(db_url, "Lena Fischer")
    conv = customer_writes(ctx)
    row = next(r for r in rows(ctx) if r.kind == "auto_reply_due")
    due = decode(row.kind, row.dedupe_key, row.conversation_id, row.payload)
    assert isinstance(due, AutoReplyDue)
    clock.advance(5)
    with ctx.db.session() as s:
        fresh = s.get(Conversation, conv.id)
        assert fresh is not None
        if change == "answered":
            fresh.last_outbound_at = clock()
        else:
            fresh.opted_out_at = clock()
        s.add(fresh)
    run(ctx, clock)
    assert records(ctx) == [] and "dm" not in [r.kind for r in rows(ctx)]  # dropped, and off the cooldown
    assert x.sent == []


def test_a_reply_that_cannot_be_sent_stops_counting_for_the_cooldown(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bridge import automatic

    ctx, clock, x = setup(db_url, "Lena Fischer")

    def broken(*_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(automatic, "send_due", broken)
    customer_writes(ctx)
    for _ in range(12):
        run(ctx, clock, steps=1)
        clock.advance(600)  # past each retry's backoff
    due = [r for r in rows(ctx) if r.kind == "auto_reply_due"]
    assert [r.state for r in due] == ["failed"]
    assert records(ctx) == [] and x.sent == []  # given up: not a welcome that was sent
