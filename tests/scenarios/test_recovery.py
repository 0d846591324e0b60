"""A delivery left in ``sending`` by a dead process is verified against the other side before it is resent."""

from __future__ import annotations

import time

from sqlalchemy import update
from sqlmodel import col, delete, select

from bridge.claims import recover
from bridge.sandbox.demo import MARIA, SAM
from bridge.sandbox.harness import CHANNEL, Sandbox, wait_for
from bridge.store.tables import Outbox, SentMessage
from tests.scenarios.helpers import customer_posts, thread_with


def _as_left_by_a_dead_process(box: Sandbox, key_prefix: str) -> Outbox:
    """Put a sent row back to ``sending`` under an owner that no longer exists, as a SIGKILL would."""
    wait_for(
        lambda: (lambda r: r is not None and r.state in ("sent", "pending"))(_row_with(box, key_prefix)),
        what="the delivery's outcome recorded",
    )
    with box.bridge.ctx.db.session() as s:
        row = s.exec(select(Outbox).where(col(Outbox.dedupe_key).startswith(key_prefix))).one()
        s.execute(
            update(Outbox)
            .where(col(Outbox.id) == row.id)
            .values(state="sending", claimed_by="a-process-that-died", claimed_at=0.0, result=None)
        )
        return row


def _state(box: Sandbox, row_id: int) -> tuple[str, bool, str | None]:
    with box.bridge.ctx.db.read() as s:
        row = s.get(Outbox, row_id)
        assert row is not None
        return row.state, row.uncertain, row.result


def test_a_mirrored_post_that_reached_slack_is_found_by_its_metadata_not_posted_again(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, "did this arrive?")
    ts = thread_with(box, "did this arrive")
    (post,) = wait_for(lambda: customer_posts(box, ts), what="the mirrored post")
    row = _as_left_by_a_dead_process(box, "mirror:")
    assert row.id is not None
    assert recover(box.bridge.ctx) == 1
    wait_for(lambda: _state(box, row.id)[0] == "sent", what="the row verified")  # type: ignore[arg-type]
    assert _state(box, row.id) == ("sent", False, post["ts"])
    assert len(customer_posts(box, ts)) == 1
    lookups = box.slack.calls("conversations.replies")
    assert lookups and lookups[-1].params.get("include_all_metadata") in (True, "true", "1")


def test_a_header_card_that_reached_slack_is_found_in_the_channel_history(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, "first contact")
    ts = thread_with(box, "first contact")
    row = _as_left_by_a_dead_process(box, "card:")
    assert row.id is not None
    with box.bridge.ctx.db.session() as s:  # as if the crash came before the thread was recorded too
        from bridge.store.tables import Conversation

        s.execute(update(Conversation).values(thread_ts=None))
    assert recover(box.bridge.ctx) == 1
    wait_for(lambda: _state(box, row.id)[0] == "sent", what="the card verified")  # type: ignore[arg-type]
    assert _state(box, row.id)[2] == ts
    assert len(box.slack.roots(CHANNEL)) == 1
    assert box.slack.calls("conversations.history")


def test_a_dm_that_reached_x_is_found_in_the_conversation_not_sent_again(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, "need help")
    ts = thread_with(box, "need help")
    reply_ts, _ = box.slack.post_as_user(SAM, CHANNEL, "On it!", thread_ts=ts)
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, reply_ts), what="✅")
    row = _as_left_by_a_dead_process(box, "relay:")
    assert row.id is not None
    with box.bridge.ctx.db.session() as s:  # the crash came before the outcome was written
        s.execute(delete(SentMessage))
    assert recover(box.bridge.ctx) == 1
    wait_for(lambda: _state(box, row.id)[0] == "sent", what="the DM verified")  # type: ignore[arg-type]
    assert box.x.received_by(MARIA) == ["On it!"]
    assert any(
        path.endswith("/dm_events") and path.startswith("/2/dm_conversations/") for _m, path, _s in box.x.requests
    )


def test_a_dm_that_never_left_is_sent_once_after_the_check(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, "anyone?")
    ts = thread_with(box, "anyone")
    box.bridge.ctx.auth_state("x").paused_until = time.time() + 600  # hold X deliveries while we stage
    reply_ts, _ = box.slack.post_as_user(SAM, CHANNEL, "Yes, here.", thread_ts=ts)
    wait_for(lambda: _row_with(box, "relay:") is not None, what="the relay row")
    row = _as_left_by_a_dead_process(box, "relay:")
    assert row.id is not None
    box.bridge.ctx.auth.clear()
    assert recover(box.bridge.ctx) == 1
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, reply_ts), timeout=30, what="✅")
    assert box.x.received_by(MARIA) == ["Yes, here."]


def _row_with(box: Sandbox, prefix: str) -> Outbox | None:
    with box.bridge.ctx.db.read() as s:
        return s.exec(select(Outbox).where(col(Outbox.dedupe_key).startswith(prefix))).first()
