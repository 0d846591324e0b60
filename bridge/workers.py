"""Background delivery: outbox loops for Slack and platforms, and the Slack event processor.

No platform call happens in a request handler: handlers only store, these
loops deliver. A row is claimed in one short transaction, the call is made
with no transaction open, and the outcome is written in another.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from bridge import outbound, profiles
from bridge.config import FileConfig, Settings
from bridge.desk import Desk, refresh_home
from bridge.domain import Limits, OutboundMessage, Platform
from bridge.errors import AuthFailed, DeliveryError, Rejected, RetryLater
from bridge.outbound import Command, Ignore, Relay
from bridge.pacing import Pacer
from bridge.sla_runner import report_text
from bridge.slack.blocks import SlackMessage, header_card, notice
from bridge.slack.threads import SlackThreads
from bridge.slack.views import home_view
from bridge.store import conversations, events, outbox
from bridge.store import desk as desk_store
from bridge.store.db import Database
from bridge.store.tables import Conversation, Outbox, SlackEvent
from connectors.base import Connector, ProfileLookup

log = logging.getLogger(__name__)

POST_KINDS = {"card", "mirror", "notice", "template_post", "channel_post"}
MAX_ATTEMPTS = 12
STALE_CLAIM_SECONDS = 120.0
OK, WAITING, WARNING = "white_check_mark", "hourglass_flowing_sand", "warning"


def backoff(attempts: int) -> float:
    """Exponential backoff with jitter, capped at five minutes."""
    return float(min(300.0, 2.0 ** min(attempts, 9)) * (0.75 + random.random() / 2))


@dataclass
class Context:
    """What the loops share; built by ``bridge.app``."""

    settings: Settings
    file: FileConfig
    db: Database
    slack: SlackThreads
    connectors: dict[str, Connector]
    """Senders by platform (``x``, ``messenger``, ``instagram``, ``generic``)."""
    desk: Desk
    clock: Callable[[], float] = time.time
    profiles: dict[str, ProfileLookup] = field(default_factory=dict)
    bot_user_id: str = ""
    wake_slack: threading.Event = field(default_factory=threading.Event)
    wake_platform: threading.Event = field(default_factory=threading.Event)
    wake_events: threading.Event = field(default_factory=threading.Event)
    health: dict[str, str] = field(default_factory=dict)

    def limits(self) -> dict[str, Limits]:
        return {c.platform.value: c.limits for c in self.connectors.values()}


def _claim(ctx: Context, row_id: int, now: float) -> tuple[Outbox, Conversation | None] | None:
    with ctx.db.session() as s:
        if not outbox.claim(s, row_id, now):
            return None
        row = s.get(Outbox, row_id)
        assert row is not None
        conv = s.get(Conversation, row.conversation_id) if row.conversation_id else None
        return row, conv


class SlackDelivery:
    """Delivers ``target='slack'`` rows: cards, mirrored messages, notices, reactions; paced per channel."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.pacer = Pacer(ctx.settings.dmbridge_slack_posts_per_second, ctx.settings.dmbridge_slack_burst)

    def step(self) -> float:
        ctx, now = self.ctx, self.ctx.clock()
        with ctx.db.session() as s:
            rows = outbox.due(s, "slack", now, limit=50)
            channels = _channels(s, rows)
        if not rows:
            return _idle(ctx, "slack", now)
        done, wait = 0, 1.0
        for row in rows:
            assert row.id is not None
            channel = channels.get(row.conversation_id or 0, "")
            if row.kind in POST_KINDS:
                w = self.pacer.wait(channel, ctx.clock())
                if w > 0:
                    wait = min(wait, w)
                    continue
            claimed = _claim(ctx, row.id, ctx.clock())
            if claimed is None:
                continue
            row, conv = claimed
            if row.kind in POST_KINDS:
                self.pacer.take(channel, ctx.clock())
            self._deliver(row, conv)
            done += 1
        if done:
            ctx.wake_slack.set()
        return 0.0 if done else wait

    def _deliver(self, row: Outbox, conv: Conversation | None) -> None:
        ctx, data = self.ctx, outbox.load(row)
        assert row.id is not None
        try:
            result = self._call(row, conv, data)
        except RetryLater as exc:
            when = exc.retry_at if exc.retry_at is not None else ctx.clock() + backoff(row.attempts)
            if exc.rate_limited and conv is not None:
                self.pacer.pause(conv.channel, when)
            with ctx.db.session() as s:
                if row.attempts >= MAX_ATTEMPTS and not exc.rate_limited:
                    outbox.fail(s, row.id, exc.reason)
                else:
                    outbox.retry_at(s, row.id, when, exc.reason)
            log.info("slack %s #%s retry at %.1f: %s", row.kind, row.id, when, exc.reason)
        except AuthFailed as exc:
            ctx.health["slack"] = exc.reason
            with ctx.db.session() as s:
                outbox.retry_at(s, row.id, ctx.clock() + 60, exc.reason)
        except DeliveryError as exc:
            log.warning("slack %s #%s failed: %s", row.kind, row.id, exc.reason)
            with ctx.db.session() as s:
                outbox.fail(s, row.id, exc.reason)
        else:
            ctx.health["slack"] = "ok"
            with ctx.db.session() as s:
                outbox.finish(s, row.id, result)
                if row.kind == "card" and conv is not None and result:
                    fresh = s.get(Conversation, conv.id)
                    if fresh is not None and fresh.thread_ts is None:
                        fresh.thread_ts = result
                        s.add(fresh)

    def _call(self, row: Outbox, conv: Conversation | None, data: dict[str, object]) -> str | None:
        ctx, slack = self.ctx, self.ctx.slack
        match row.kind:
            case "ephemeral":
                thread = data.get("thread_ts")
                slack.post_ephemeral(str(data["channel"]), str(data["user"]), str(data["text"]),
                                     thread_ts=str(thread) if thread else None)
                return None
            case "channel_post":
                return slack.post(str(data["channel"]), notice(str(data["text"])), key=row.dedupe_key)
            case "home":
                user = str(data["user"])
                slack.publish_home(user, self._home(user))
                return None
            case "react":
                slack.react(str(data["channel"]), str(data["ts"]), str(data["name"]))
                return None
            case "unreact":
                slack.unreact(str(data["channel"]), str(data["ts"]), str(data["name"]))
                return None
        if conv is None:
            raise Rejected("conversation is gone")
        match row.kind:
            case "card":
                if conv.thread_ts:
                    return conv.thread_ts
                return slack.post(conv.channel, header_card(ctx.desk.card(conv)), key=row.dedupe_key)
            case "card_update":
                if conv.thread_ts:
                    card = ctx.desk.card(conv, reopened=bool(data.get("reopened")))
                    slack.update(conv.channel, conv.thread_ts, header_card(card))
                return None
            case "autoassign":
                self._auto_assign(conv, str(data.get("skip") or ""))
                return None
        if not conv.thread_ts:
            raise Rejected("the conversation's header card could not be posted")
        match row.kind:
            case "notice" | "template_post":
                return slack.post(conv.channel, notice(str(data["text"])), thread_ts=conv.thread_ts,
                                  key=row.dedupe_key)
            case "mirror":
                message = SlackMessage(text=str(data["text"]), blocks=list(data["blocks"]))  # type: ignore[call-overload]
                if data.get("echo_of") and _our_echo(self.ctx, data["echo_of"]):
                    return "our own send: not mirrored"
                if data.get("from_brand"):
                    return slack.post(conv.channel, message, thread_ts=conv.thread_ts, key=row.dedupe_key,
                                      username=f"@{conv.account} (outside Slack)")
                return slack.post(conv.channel, message, thread_ts=conv.thread_ts, key=row.dedupe_key,
                                  username=conv.customer_name, icon_url=conv.customer_avatar)
        raise Rejected(f"unknown delivery kind {row.kind}")

    def _home(self, user: str) -> dict[str, object]:
        ctx, now = self.ctx, self.ctx.clock()
        with ctx.db.session() as s:
            mine, unassigned, escalated = (desk_store.listing(s, scope, user)
                                           for scope in ("mine", "unassigned", "escalated"))
            counts = desk_store.status_counts(s)
        return home_view(user, mine, unassigned, escalated, counts, ctx.desk.link, now,
                         report_text(ctx.db, ctx.file, 7, now))

    def _auto_assign(self, conv: Conversation, skip: str = "") -> None:
        """Round robin needs the group's members and presence from Slack: ask first, then decide in one go."""
        ctx = self.ctx
        group = ctx.file.assignment.usergroup
        if not group:
            return
        roster = ctx.desk.roster.group(group)
        away = {u for u in roster if u == skip or ctx.desk.roster.away(u)}
        with ctx.db.session() as s:
            fresh = s.get(Conversation, conv.id)
            if fresh is not None:
                ctx.desk.auto_assign(s, fresh, roster, away, ctx.clock())


class PlatformDelivery:
    """Delivers ``target='platform'`` rows (agent replies) through the conversation's connector."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def step(self) -> float:
        ctx, now = self.ctx, self.ctx.clock()
        with ctx.db.session() as s:
            rows = outbox.due(s, "platform", now, limit=20)
        if not rows:
            return _idle(ctx, "platform", now)
        done = 0
        for row in rows:
            assert row.id is not None
            claimed = _claim(ctx, row.id, ctx.clock())
            if claimed is None:
                continue
            match claimed[0].kind:
                case "profile":
                    profiles.refresh(ctx, *claimed)
                case _:
                    self._deliver(*claimed)
            done += 1
        ctx.wake_slack.set()
        return 0.0 if done else 0.5

    def _deliver(self, row: Outbox, conv: Conversation | None) -> None:
        ctx, data = self.ctx, outbox.load(row)
        assert row.id is not None
        channel, ts = str(data["slack_channel"]), data.get("slack_ts")
        if ts is None and data.get("receipt_key"):
            # a template: its receipts go on the thread post that shows it, which must exist first
            with ctx.db.session() as s:
                post = s.exec(select(Outbox).where(Outbox.dedupe_key == data["receipt_key"])).first()
                if post is not None and post.state in (outbox.PENDING, outbox.SENDING):
                    outbox.retry_at(s, row.id, ctx.clock() + 0.2, "waiting for the thread post")
                    return
                ts = post.result if post is not None and post.state == outbox.SENT else None
        try:
            if conv is None:
                raise Rejected("conversation is gone")
            connector = ctx.connectors.get(conv.platform)
            if connector is None:
                raise Rejected(f"no {conv.platform} connector is configured")
            result = connector.send(OutboundMessage(
                platform=Platform(conv.platform), account=conv.account, conversation=conv.remote_id,
                recipient_id=conv.customer_id, text=str(data["text"]), last_inbound_at=conv.last_inbound_at,
                key=row.dedupe_key))
        except RetryLater as exc:
            assert conv is not None
            if exc.rate_limited:
                when = exc.retry_at if exc.retry_at is not None else ctx.clock() + 60
                with ctx.db.session() as s:
                    outbox.retry_at(s, row.id, max(when, ctx.clock() + 1), exc.reason, waiting_shown=True)
                    if not row.waiting_shown:
                        outbound.enqueue_reaction(s, conv, channel, ts, WAITING, ctx.clock())
            elif row.attempts >= MAX_ATTEMPTS:
                self._failed(row, conv, channel, ts, f"{exc.reason} (gave up after {row.attempts} attempts)")
            else:
                with ctx.db.session() as s:
                    outbox.retry_at(s, row.id, ctx.clock() + backoff(row.attempts), exc.reason)
        except AuthFailed as exc:
            ctx.health[conv.platform if conv else "platform"] = exc.reason
            with ctx.db.session() as s:
                outbox.retry_at(s, row.id, ctx.clock() + 60, exc.reason)
        except DeliveryError as exc:
            if conv is None:
                with ctx.db.session() as s:
                    outbox.fail(s, row.id, exc.reason)
            else:
                self._failed(row, conv, channel, ts, exc.reason)
        else:
            assert conv is not None and conv.id is not None
            ctx.health[conv.platform] = "ok"
            now = ctx.clock()
            with ctx.db.session() as s:
                outbox.finish(s, row.id, result.remote_id)
                events.record_sent(s, platform=conv.platform, account=conv.account, remote_id=result.remote_id,
                                   conversation_id=conv.id, slack_channel=channel, slack_ts=ts, now=now)
                fresh = s.get(Conversation, conv.id)
                if fresh is not None:  # an agent reply was delivered: the SLA clocks change
                    desk_store.sla_touch(fresh, now)
                    s.add(fresh)
                if int(data["part"]) == int(data["parts"]) - 1:
                    outbound.enqueue_reaction(s, conv, channel, ts, OK, now)
                    if _exists(s, f"react:{WAITING}:{channel}:{ts}"):
                        outbound.enqueue_reaction(s, conv, channel, ts, WAITING, now, remove=True)

    def _failed(self, row: Outbox, conv: Conversation, channel: str, ts: str | None, reason: str) -> None:
        assert row.id is not None
        now = self.ctx.clock()
        with self.ctx.db.session() as s:
            outbox.fail(s, row.id, reason)
            # later parts of the same Slack message must not arrive without this one
            siblings = row.dedupe_key.rsplit(":", 1)[0] + ":"
            later = s.exec(select(Outbox).where(col(Outbox.dedupe_key).startswith(siblings),
                                                Outbox.state == outbox.PENDING)).all()
            for other in later:
                assert other.id is not None
                outbox.fail(s, other.id, "not sent: an earlier part was refused")
            outbound.enqueue_reaction(s, conv, channel, ts, WARNING, now)
            if _exists(s, f"react:{WAITING}:{channel}:{ts}"):
                outbound.enqueue_reaction(s, conv, channel, ts, WAITING, now, remove=True)
            outbound.enqueue_notice(s, conv, f"failed:{channel}:{ts}",
                                    f":warning: Not delivered to the customer. {reason}", now)


class EventProcessor:
    """Turns stored Slack events into outbox rows (relay, notices), each exactly once."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def step(self) -> float:
        ctx = self.ctx
        with ctx.db.session() as s:
            pending = [r.id for r in events.unprocessed_slack_events(s)]
        for row_id in pending:
            assert row_id is not None
            try:
                self._process(row_id)
            except _AlreadyDone:
                continue
        if pending:
            ctx.wake_slack.set()
            ctx.wake_platform.set()
        return 0.0 if pending else 1.0

    def _process(self, row_id: int) -> None:
        """Classify a stored event, look the author up in Slack (no transaction open), then act in one."""
        ctx = self.ctx
        with ctx.db.session() as s:
            row = s.get(SlackEvent, row_id)
            if row is None or row.processed_at is not None:
                raise _AlreadyDone
            body = json.loads(row.payload)
        event = body.get("event", body)
        action = outbound.classify(event, ctx.bot_user_id, ctx.settings.note_prefixes)
        who = ctx.desk.who(action.user, action.channel) if isinstance(action, Relay | Command) else None
        with ctx.db.session() as s:
            now = ctx.clock()
            match action:
                case Command(channel, thread_ts, ts, _user, text):
                    conv = conversations.by_thread(s, channel, thread_ts)
                    assert who is not None
                    outcome = ("ignored: command outside a conversation" if conv is None else
                               ctx.desk.thread_command(s, who, conv, ts, text, ctx.bot_user_id, now))
                case Ignore() if event.get("type") == "app_home_opened" and event.get("tab", "home") == "home":
                    refresh_home(s, str(event.get("user")), f"opened:{row_id}", now)
                    outcome = "home"
                case _:
                    outcome = outbound.apply(s, action, ctx.limits(), now, is_agent=who is None or who.is_agent)
            if not events.mark_processed(s, row_id, outcome, now):
                raise _AlreadyDone


class _AlreadyDone(Exception):
    pass


def _channels(s: Session, rows: list[Outbox]) -> dict[int, str]:
    ids = {r.conversation_id for r in rows if r.conversation_id}
    if not ids:
        return {}
    found = s.exec(select(Conversation.id, Conversation.channel).where(col(Conversation.id).in_(ids))).all()
    return {int(i): str(ch) for i, ch in found if i is not None}


def _our_echo(ctx: Context, echo_of: object) -> bool:
    platform, account, remote_id = (str(v) for v in echo_of)  # type: ignore[attr-defined]
    with ctx.db.session() as s:
        return events.sent_by_us(s, platform, account, remote_id)


def _exists(s: Session, key: str) -> bool:
    return s.exec(select(Outbox.id).where(Outbox.dedupe_key == key)).first() is not None


def _idle(ctx: Context, target: str, now: float) -> float:
    with ctx.db.session() as s:
        nxt = outbox.next_due_at(s, target)
    return 1.0 if nxt is None else max(0.0, min(1.0, nxt - now))


class Loop(threading.Thread):
    """Runs ``step`` until stopped; sleeps for what it returns or until woken."""

    def __init__(self, name: str, step: Callable[[], float], wake: threading.Event, stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.step_fn, self.wake, self.stop_event = step, wake, stop

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                delay = self.step_fn()
            except Exception:
                log.exception("%s step failed", self.name)
                delay = 1.0
            if delay > 0:
                self.wake.wait(delay)
            self.wake.clear()


def recover(ctx: Context) -> int:
    """Rows a crashed process left in ``sending`` go back to the queue."""
    with ctx.db.session() as s:
        return outbox.recover_stale(s, ctx.clock() - STALE_CLAIM_SECONDS)


def wake_snoozed(ctx: Context) -> int:
    """Snoozes that are over: reopen and remind (each once, whichever process gets there first)."""
    with ctx.db.session() as s:
        woken = ctx.desk.wake_snoozed(s, ctx.clock())
    if woken:
        ctx.wake_slack.set()
    return woken
