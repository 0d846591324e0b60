"""Background delivery: outbox loops for Slack and platforms, the Slack event processor, pollers.

No platform call happens in a request handler: handlers only store, these
loops deliver. A row is claimed in one short transaction, the call is made
with no transaction open, and the outcome is written in another.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from bridge import membership, outbound
from bridge.authz import Scope
from bridge.claims import give_back as give_back  # re-exported for the delivery modules
from bridge.claims import recover as recover  # re-exported for bridge.app and tests
from bridge.claims import write_outcomes as write_outcomes
from bridge.config import FileConfig, Settings, channel_for
from bridge.desk import Desk
from bridge.domain import Limits, Platform
from bridge.errors import AuthFailed, DeliveryError, Rejected, RetryLater
from bridge.links import safe_https_url
from bridge.loops import AuthState, backoff
from bridge.pacing import Pacer
from bridge.sla_runner import report_text
from bridge.slack.blocks import SlackMessage, customer_username, header_card, notice
from bridge.slack.threads import SlackThreads
from bridge.slack.views import home_view, not_agent_home_view
from bridge.store import desk as desk_store
from bridge.store import events, outbox
from bridge.store.db import Database
from bridge.store.tables import Conversation, Outbox
from connectors.base import Connector, ProfileLookup

log = logging.getLogger(__name__)

POST_KINDS = {"card", "mirror", "notice", "channel_notice", "template_post"}
UNTHREADED = {"channel_notice", "ephemeral", "home", "delete"}  # deliveries that need no conversation
OK, WAITING, WARNING = "white_check_mark", "hourglass_flowing_sand", "warning"


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
    bot_id: str = ""
    wake_slack: threading.Event = field(default_factory=threading.Event)
    wake_platform: threading.Event = field(default_factory=threading.Event)
    wake_events: threading.Event = field(default_factory=threading.Event)
    wake_sla: threading.Event = field(default_factory=threading.Event)  # a timeline changed: book its SLA now
    health: dict[str, str] = field(default_factory=dict)
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    auth: dict[str, AuthState] = field(default_factory=dict)
    failed_event: Callable[[], None] = lambda: None  # counts a Slack event whose processing raised (/metrics)

    def auth_state(self, name: str) -> AuthState:
        return self.auth.setdefault(name, AuthState())

    def limits(self) -> dict[str, Limits]:
        return {c.platform.value: c.limits for c in self.connectors.values()}


def claim_rows(ctx: Context, row_ids: list[int], now: float) -> list[tuple[Outbox, Conversation | None]]:
    """Claim rows in one short transaction; the ones we got, with their conversations."""
    with ctx.db.session() as s:
        rows = outbox.claim_many(s, row_ids, now, ctx.instance_id)
        ids = {r.conversation_id for r in rows if r.conversation_id}
        convs = {c.id: c for c in s.exec(select(Conversation).where(col(Conversation.id).in_(ids))).all()} \
            if ids else {}
        return [(r, convs.get(r.conversation_id)) for r in rows]


class SlackDelivery:
    """Delivers ``target='slack'`` rows: cards, mirrored messages, notices, reactions; paced per channel."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.pacer = Pacer(ctx.settings.dmbridge_slack_posts_per_second, ctx.settings.dmbridge_slack_burst)

    def step(self) -> float:
        ctx, now = self.ctx, self.ctx.clock()
        paused = ctx.auth_state("slack").paused_until - now
        if paused > 0:  # the token was refused: one probe per pause, not one call per queued row
            return min(paused, 1.0)
        with ctx.db.read() as s:
            rows = outbox.due(s, "slack", now, limit=50)
            channels = _channels(s, rows)
        if not rows:
            return idle(ctx, "slack", now)
        wait, wanted = 1.0, []
        for row in rows:  # each is the head of its lane; pace posts per channel before claiming
            assert row.id is not None
            if row.kind in POST_KINDS:
                channel = channels.get(row.conversation_id or 0) or str(outbox.load(row).get("channel", ""))
                w = self.pacer.wait(channel, ctx.clock())
                if w > 0:
                    wait = min(wait, w)
                    continue
                self.pacer.take(channel, ctx.clock())
            wanted.append(row.id)
        claimed = claim_rows(ctx, wanted, ctx.clock())
        # Calls go out one after another with no transaction open; their outcomes are written together
        # afterwards. A crash in between leaves rows in ``sending``: they are verified before any resend.
        # Any error in between gives the claims back (bridge.claims): none stays ``sending`` under us.
        outcomes: list[Callable[[Session], None]] = []
        finished: list[tuple[int, str | None]] = []
        limited: set[str] = set()
        try:
            for row, conv in claimed:
                refused = ctx.auth_state("slack").paused_until > ctx.clock()  # refused just now, in this batch
                if refused or (conv is not None and conv.channel in limited and row.kind in POST_KINDS):
                    # the token was just refused, or this channel just answered 429: hand the row back untouched
                    when = ctx.auth_state("slack").paused_until if refused else ctx.clock() + 1.0
                    outcomes.append(hand_back(row, when))
                    continue
                outcomes.append(self._attempt(row, conv, limited, finished))
        except BaseException:
            give_back(ctx, [r for r, _ in claimed], "interrupted")
            raise
        if outcomes:
            write_outcomes(ctx, [r for r, _ in claimed], [lambda s: outbox.finish_many(s, finished), *outcomes])
            ctx.wake_slack.set()
        return 0.0 if claimed else wait

    def _attempt(self, row: Outbox, conv: Conversation | None, limited: set[str],
                 finished: list[tuple[int, str | None]]) -> Callable[[Session], None]:
        """Make the call (no transaction open); return what to write about its outcome (successes are
        added to ``finished``, written in one statement)."""
        ctx, data = self.ctx, outbox.load(row)
        row_id = row.id
        assert row_id is not None
        checked = not row.uncertain
        try:
            if row.kind == "channel_notice":
                result: str | None = self._channel_notice(row, data)
            elif row.kind in UNTHREADED:
                result = self._unthreaded(row, data)
            else:
                if conv is None:
                    raise Rejected("conversation is gone")
                result = None if checked else self._verify(row, conv)
                checked = True
                if result is None:
                    result = self._call(row, conv, data)
        except RetryLater as exc:
            when = exc.retry_at if exc.retry_at is not None else ctx.clock() + backoff(row.attempts)
            if exc.uncertain:  # let a late answer land before we look for it
                when = max(when, ctx.clock() + ctx.settings.dmbridge_http_timeout)
            if exc.rate_limited and conv is not None:
                self.pacer.pause(conv.channel, when)
                limited.add(conv.channel)
            log.info("slack %s #%s retry at %.1f: %s", row.kind, row_id, when, exc.reason)
            give_up = row.attempts >= ctx.settings.dmbridge_max_attempts and not exc.rate_limited
            uncertain, why = exc.uncertain or not checked, exc.reason
            if give_up:
                return self._give_up(row, conv, f"{why} (gave up after {row.attempts} attempts)")
            return lambda s: outbox.retry_at(s, row_id, when, why, uncertain=uncertain)
        except AuthFailed as exc:
            state = ctx.auth_state("slack")
            if state.refused(ctx.clock()):
                log.error("slack deliveries paused: %s", exc.reason)
            ctx.health["slack"] = exc.reason
            paused_until, reason, unsure = state.paused_until, exc.reason, not checked
            return lambda s: outbox.retry_at(s, row_id, paused_until, reason, uncertain=unsure)
        except DeliveryError as exc:
            log.warning("slack %s #%s failed: %s", row.kind, row_id, exc.reason)
            failed_reason = exc.reason
            invite = membership.hint(ctx.settings, row, conv, data, exc.reason, ctx.clock())

            def failed(s: Session) -> None:
                outbox.fail(s, row_id, failed_reason)
                if invite is not None:
                    invite(s)
            return failed
        except Exception as exc:  # anything unforeseen: the row must not stay claimed; it may have gone out
            log.exception("slack %s #%s: unexpected error", row.kind, row_id)
            if row.attempts >= ctx.settings.dmbridge_max_attempts:
                return self._give_up(row, conv, f"unexpected {type(exc).__name__} "
                                                f"(gave up after {row.attempts} attempts)")
            return unexpected(row, ctx.clock(), exc)
        ctx.health["slack"] = "ok"
        ended = ctx.auth_state("slack").works()
        finished.append((row_id, result))

        def sent(s: Session) -> None:
            if ended is not None:
                log.warning("slack deliveries resumed: the bot token works again")
                enqueue_channel_notice(s, ctx, "slack", ended, ":white_check_mark: Slack refused dmbridge's "
                                       "bot token for a while; it works again and queued messages are being "
                                       "delivered in order.")
            if row.kind == "card" and conv is not None and result:
                fresh = s.get(Conversation, conv.id)
                if fresh is not None and fresh.thread_ts is None:
                    fresh.thread_ts = result
                    s.add(fresh)
        return sent

    def _give_up(self, row: Outbox, conv: Conversation | None, reason: str) -> Callable[[Session], None]:
        """Fail the row for good; say so in its thread (unless the row is itself a thread notice)."""
        row_id = row.id
        assert row_id is not None
        log.warning("slack %s #%s failed: %s", row.kind, row_id, reason)

        def write(s: Session) -> None:
            outbox.fail(s, row_id, reason)
            if conv is not None and conv.thread_ts and row.kind not in ("notice", "card"):
                outbound.enqueue_notice(s, conv, f"failed:slack:{row_id}",
                                        f":warning: A Slack delivery ({row.kind}) was given up. {reason}",
                                        self.ctx.clock())
        return write

    def _verify(self, row: Outbox, conv: Conversation) -> str | None:
        """An earlier attempt ended without an answer: did it post? (Only posts need this; the rest is idempotent.)"""
        if row.kind not in POST_KINDS:
            return None
        if row.kind == "card" and conv.thread_ts:
            return conv.thread_ts
        thread = None if row.kind == "card" else conv.thread_ts
        if row.kind != "card" and not thread:
            return None
        found = self.ctx.slack.find_delivered(conv.channel, row.dedupe_key, thread_ts=thread, since=row.created_at)
        if found:
            log.info("slack %s #%s was already posted before the interruption (ts %s)", row.kind, row.id, found)
        return found

    def _channel_notice(self, row: Outbox, data: dict[str, object]) -> str | None:
        channel = str(data["channel"])
        if row.uncertain:
            found = self.ctx.slack.find_delivered(channel, row.dedupe_key, thread_ts=None, since=row.created_at)
            if found:
                return found
        return self.ctx.slack.post(channel, notice(str(data["text"])), key=row.dedupe_key)

    def _unthreaded(self, row: Outbox, data: dict[str, object]) -> str | None:
        slack = self.ctx.slack
        if row.kind == "delete":  # queued by `dmbridge forget` (bridge/forget.py)
            return slack.delete(str(data["channel"]), str(data["ts"]))
        if row.kind == "ephemeral":
            thread = data.get("thread_ts")
            slack.post_ephemeral(str(data["channel"]), str(data["user"]), str(data["text"]),
                                 thread_ts=str(thread) if thread else None)
        else:  # home
            user = str(data["user"])
            slack.publish_home(user, self._home(user))
        return None

    def _call(self, row: Outbox, conv: Conversation, data: dict[str, object]) -> str | None:
        ctx, slack = self.ctx, self.ctx.slack
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
            case "react":
                slack.react(str(data["channel"]), str(data["ts"]), str(data["name"]))
                return None
            case "unreact":
                slack.unreact(str(data["channel"]), str(data["ts"]), str(data["name"]))
                return None
        if not conv.thread_ts:
            raise Rejected("the conversation's header card could not be posted")
        match row.kind:
            case "notice" | "template_post":
                return slack.post(conv.channel, notice(str(data["text"])), thread_ts=conv.thread_ts,
                                  key=row.dedupe_key)
            case "mirror":
                message = SlackMessage(text=str(data["text"]), blocks=list(data["blocks"]))  # type: ignore[call-overload]
                if data.get("echo_of") and _our_echo(ctx, data["echo_of"]):
                    return "our own send: not mirrored"
                if data.get("from_brand"):
                    return slack.post(conv.channel, message, thread_ts=conv.thread_ts, key=row.dedupe_key,
                                      username=f"@{conv.account} (outside Slack)")
                return slack.post(conv.channel, message, thread_ts=conv.thread_ts, key=row.dedupe_key,
                                  username=customer_username(conv.customer_name, Platform(conv.platform).label),
                                  icon_url=safe_https_url(conv.customer_avatar))
        raise Rejected(f"unknown delivery kind {row.kind}")

    def _home(self, user: str) -> dict[str, object]:
        ctx, now = self.ctx, self.ctx.clock()
        if not ctx.desk.authorize(user, Scope.DESK).allowed:  # asked at each publish, so leaving the desk shows
            return not_agent_home_view()
        with ctx.db.read() as s:
            mine, unassigned, escalated = (desk_store.listing(s, scope, user)
                                           for scope in ("mine", "unassigned", "escalated"))
            counts = desk_store.status_counts(s)
        seen = ctx.desk.visible_channels(user, tuple(c.channel for c in (*mine, *unassigned, *escalated)))
        mine, unassigned, escalated = ([c for c in convs if c.channel in seen]
                                       for convs in (mine, unassigned, escalated))
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


def enqueue_channel_notice(s: Session, ctx: Context, about: str, since: float, text: str) -> None:
    """A top-level message in the inbox channel (credential problems), once per incident."""
    try:
        channel = channel_for(ctx.settings, ctx.file, about, "")
    except Exception:
        channel = ctx.settings.dmbridge_channel
    if not channel:
        return
    outbox.enqueue(s, key=f"auth:{about}:{int(since)}:{'ok' if text.startswith(':white') else 'refused'}",
                   target="slack", lane=f"c:{channel}", kind="channel_notice",
                   payload={"channel": channel, "text": text}, now=ctx.clock())


def _channels(s: Session, rows: list[Outbox]) -> dict[int, str]:
    ids = {r.conversation_id for r in rows if r.conversation_id}
    if not ids:
        return {}
    found = s.exec(select(Conversation.id, Conversation.channel).where(col(Conversation.id).in_(ids))).all()
    return {int(i): str(ch) for i, ch in found if i is not None}


def _our_echo(ctx: Context, echo_of: object) -> bool:
    platform, account, remote_id = (str(v) for v in echo_of)  # type: ignore[attr-defined]
    with ctx.db.read() as s:
        return events.sent_by_us(s, platform, account, remote_id)


def optional_text(value: object) -> str | None:
    return None if value is None else str(value)


def row_exists(s: Session, key: str) -> bool:
    return s.exec(select(Outbox.id).where(Outbox.dedupe_key == key)).first() is not None


def unexpected(row: Outbox, now: float, exc: Exception) -> Callable[[Session], None]:
    row_id, when, reason = row.id, now + backoff(row.attempts), f"unexpected {type(exc).__name__}"
    assert row_id is not None
    return lambda s: outbox.retry_at(s, row_id, when, reason, uncertain=True)


def hand_back(row: Outbox, when: float) -> Callable[[Session], None]:
    """A claimed row we will not attempt now goes back to ``pending`` as it was."""
    row_id, error, uncertain = row.id, row.last_error or "postponed", row.uncertain
    assert row_id is not None
    return lambda s: outbox.retry_at(s, row_id, when, error, uncertain=uncertain)


BLOCKED_RECHECK = 0.2


def idle(ctx: Context, target: str, now: float) -> float:
    """How long to sleep with nothing to claim (the loop's wake event cuts it short)."""
    with ctx.db.read() as s:
        nxt = outbox.next_due_at(s, target)
    if nxt is None:
        return 1.0
    if nxt <= now:  # due but waiting behind an older row of its lane: that row's outcome wakes us
        return BLOCKED_RECHECK
    return min(1.0, nxt - now)


def wake_snoozed(ctx: Context) -> int:
    """Snoozes that are over: reopen and remind (each once, whichever process gets there first)."""
    with ctx.db.session() as s:
        woken = ctx.desk.wake_snoozed(s, ctx.clock())
    if woken:
        ctx.wake_slack.set()
    return woken
