"""`dmbridge forget` end to end: a customer talks, an agent answers, the customer asks to be forgotten."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from sqlmodel import SQLModel, select
from typer.testing import CliRunner

from bridge import cli
from bridge.errors import Rejected
from bridge.forget import ERASED
from bridge.sandbox.demo import MARIA, SAM
from bridge.sandbox.harness import CHANNEL, Sandbox, wait_for
from bridge.sandbox.server import OffsetClock
from bridge.store.tables import Audit, Outbox, SlackEvent
from bridge.toml_config import FileConfig, Retention
from tests.scenarios.helpers import BoxFactory

SECRET = "12 Elm Street, flat 3"


def everything_stored(box: Sandbox) -> str:
    """Every row of every table, as text."""
    with box.bridge.ctx.db.read() as s:
        rows = [
            list(map(str, r))
            for table in SQLModel.metadata.sorted_tables
            for r in s.execute(text(f'SELECT * FROM "{table.name}"')).all()
        ]
    return json.dumps(rows, ensure_ascii=False)


def test_forget_deletes_the_bots_slack_messages_and_every_trace_in_the_database(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, f"Please send it to {SECRET}")
    ts = box.thread_with("Elm Street")
    wait_for(lambda: len(box.slack.thread(CHANNEL, ts)) >= 2, what="the mirrored message")
    reply = {
        "type": "message",
        "channel": CHANNEL,
        "user": SAM,
        "text": "Noted, Maria López: 12 Elm Street.",
        "thread_ts": ts,
    }
    reply_ts, _ = box.slack.post_as_user(SAM, CHANNEL, str(reply["text"]), thread_ts=ts)
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, reply_ts), what="✅ on the reply")
    stored = everything_stored(box)
    assert SECRET in stored and "Maria López" in stored and "maria_l" in stored  # before: it is all there

    result = CliRunner().invoke(
        cli.app, ["forget", "--customer", f"x:{MARIA}", "--yes"], env={"DATABASE_URL": box.settings.database_url}
    )
    assert result.exit_code == 0, result.output
    assert "erased x:" in result.output and "cannot be deleted with a bot token" in result.output

    def bot_messages_left() -> list[dict[str, object]]:
        return [m for m in box.slack.messages(CHANNEL) if m.get("bot_id") and ts in (m["ts"], m.get("thread_ts"))]

    wait_for(lambda: not bot_messages_left(), what="the card and the mirrored message deleted")
    left = [m for m in box.slack.messages(CHANNEL) if m.get("thread_ts") == ts]
    assert [m["ts"] for m in left] == [reply_ts]  # the agent's own reply: a bot token cannot delete it
    deleted = {c.params["ts"] for c in box.slack.calls("chat.delete") if c.status == 200}
    assert ts in deleted and reply_ts not in deleted

    stored = everything_stored(box)
    for trace in (SECRET, "Elm Street", "Maria", "maria_l", "pbs.twimg.example", MARIA):
        assert trace not in stored, trace
    with box.bridge.ctx.db.read() as s:
        assert s.exec(select(Audit).where(Audit.action == "erase")).one().detail == ERASED
        rows_before = len(s.exec(select(Outbox)).all())
    key = f"msg:{CHANNEL}:{reply_ts}"

    # Slack replays the agent's old message: it is known by its dedupe key and stores nothing
    assert box.slack.deliver(dict(reply, ts=reply_ts)) == [200]
    with box.bridge.ctx.db.read() as s:
        assert [e.payload for e in s.exec(select(SlackEvent).where(SlackEvent.dedupe_key == key)).all()] == ["{}"]
        assert len(s.exec(select(Outbox)).all()) == rows_before  # nothing relayed again
    assert SECRET not in everything_stored(box)


def test_the_serve_schedulers_retention_job_prunes_by_the_bridges_clock(
    clock: OffsetClock, make_box: BoxFactory
) -> None:
    box = make_box(clock=clock, file=FileConfig(retention=Retention(every="2h", events="1d")))
    job = box.bridge.scheduler.get_job("retention")
    assert job is not None and job.trigger.interval.total_seconds() == 7200
    box.x.customer_sends(MARIA, f"Please send it to {SECRET}")
    ts = box.thread_with("Elm Street")
    reply_ts, _ = box.slack.post_as_user(SAM, CHANNEL, "Noted: 12 Elm Street.", thread_ts=ts)
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, reply_ts), what="✅ on the reply")
    assert job.func() == {"slack_event": 0, "outbox": 0, "inbound_event": 0, "audit": 0}  # all recent
    clock.offset = 2 * 86400.0  # two days later: processed events are past their day
    done = job.func()
    assert done["slack_event"] >= 1 and done["outbox"] == 0 and done["inbound_event"] == 0
    with box.bridge.ctx.db.read() as s:
        assert (
            s.exec(select(SlackEvent.payload).where(SlackEvent.dedupe_key == f"msg:{CHANNEL}:{reply_ts}")).one() == "{}"
        )
    clock.offset = 100 * 86400.0
    assert job.func()["inbound_event"] == 1
    assert SECRET not in everything_stored(box)
    assert box.slack.deliver(
        {
            "type": "message",
            "channel": CHANNEL,
            "user": SAM,
            "ts": reply_ts,
            "thread_ts": ts,
            "text": "Noted: 12 Elm Street.",
        }
    ) == [200]
    with box.bridge.ctx.db.read() as s:  # the replay is known by its key: nothing stored, nothing relayed
        assert (
            s.exec(select(SlackEvent.payload).where(SlackEvent.dedupe_key == f"msg:{CHANNEL}:{reply_ts}")).one() == "{}"
        )
    assert box.x.received_by(MARIA) == ["Noted: 12 Elm Street."]


def test_chat_delete_removes_only_the_bots_own_messages(box: Sandbox) -> None:
    slack = box.bridge.ctx.slack
    box.x.customer_sends(MARIA, "delete test")
    ts = box.thread_with("delete test")
    agent_ts, _ = box.slack.post_as_user(SAM, CHANNEL, "// an agent's note", thread_ts=ts)
    with pytest.raises(Rejected, match="cant_delete_message"):  # a bot token cannot delete people's messages
        slack.delete(CHANNEL, agent_ts)
    assert slack.delete(CHANNEL, ts) == "deleted"
    assert slack.delete(CHANNEL, ts) == "already deleted"  # a retry after a lost answer is done, not failed
    assert ts not in {m["ts"] for m in box.slack.messages(CHANNEL)}
    assert agent_ts in {m["ts"] for m in box.slack.messages(CHANNEL)}
