"""Slack deliveries (``target='slack'``): cards, mirrored messages, notices, receipts, App Home; paced per channel.

The ``Handler`` the runner (``bridge.runner``) uses for Slack: what each typed
delivery calls, how a post whose answer was lost is found again (by its
metadata key), and what a failure writes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlmodel import Session

from bridge import automatic, membership, state
from bridge.authz import Scope
from bridge.context import Context, enqueue_channel_notice
from bridge.decide import Failed, Retry
from bridge.deliveries import (
    POSTS,
    AutoAssign,
    AutoReplyDue,
    Card,
    CardUpdate,
    ChannelNotice,
    Delete,
    Delivery,
    Ephemeral,
    Home,
    Mirror,
    Notice,
    Reaction,
    Target,
    TemplatePost,
    TranscriptUpload,
    Unreaction,
    Upload,
)
from bridge.domain import Pacer, Platform, safe_https_url
from bridge.errors import Rejected
from bridge.leads import lead_label
from bridge.runner import Write, retry_write
from bridge.slack.blocks import SlackMessage, card_view, customer_username, header_card, notice
from bridge.slack.files import Copier, not_copied_note
from bridge.slack.views import home_view, not_agent_home_view
from bridge.store import desk as desk_store
from bridge.store import events, outbox, replies
from bridge.store import leads as lead_store
from bridge.store.tables import Conversation, Outbox
from bridge.transcripts import Transcripts

log = logging.getLogger(__name__)


class SlackHandler:
    """Sends the Slack side of every conversation, and what belongs to no thread."""

    target: Target = "slack"
    batch = 50

    def __init__(
        self, ctx: Context, home_report: Callable[[float], str] = lambda now: "", copier: Copier | None = None
    ) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self.copier = copier or Copier(
            ctx.slack,
            cap_mb=settings.dmbridge_max_attachment_mb,
            timeout=settings.dmbridge_http_timeout,
            private_ok=settings.dmbridge_fetch_private,
        )
        self.pacer = Pacer(ctx.settings.dmbridge_slack_posts_per_second, ctx.settings.dmbridge_slack_burst)
        self.transcripts = Transcripts(ctx.db, ctx.slack, self.copier.poster, ctx.toml.tz)
        self.home_report = home_report  # the last 7 days' figures (bridge.app: computed at most once a minute)

    # ------------------------------------------------------------------------------------------------ admission

    def admit(self, rows: list[Outbox], where: dict[int, tuple[str, str]], now: float) -> tuple[list[int], float]:
        ctx = self.ctx
        paused = ctx.auth_state("slack").paused_until - now
        if paused > 0:  # the token was refused: one probe per pause, not one call per queued row
            return [], min(paused, 1.0)
        wait, wanted = 1.0, []
        for row in rows:  # each is the head of its lane; pace posts per channel before claiming
            assert row.id is not None
            if row.kind in POST_KINDS:
                channel = where.get(row.conversation_id or 0, ("", ""))[0] or self._channel_of(row)
                w = self.pacer.wait(channel, ctx.clock())
                if w > 0:
                    wait = min(wait, w)
                    continue
                self.pacer.take(channel, ctx.clock())
            wanted.append(row.id)
        return wanted, wait

    @staticmethod
    def _channel_of(row: Outbox) -> str:
        try:
            delivery = outbox.delivery(row)
        except ValueError:
            return ""
        return delivery.channel if isinstance(delivery, ChannelNotice) else ""

    def group(self, delivery: Delivery, conv: Conversation | None) -> str | None:
        """A rate limit holds back the other posts to the same channel."""
        if isinstance(delivery, Upload):
            return conv.channel if conv is not None else None
        if not isinstance(delivery, POSTS):
            return None
        if isinstance(delivery, ChannelNotice):
            return delivery.channel
        return conv.channel if conv is not None else None

    def credential(self, conv: Conversation | None) -> str:
        return "slack"

    # ------------------------------------------------------------------------------------------------ the call

    def before(self, delivery: Delivery, row: Outbox, conv: Conversation | None) -> Write | None:
        return None

    def verify(self, delivery: Delivery, row: Outbox, conv: Conversation | None) -> object | None:
        """An earlier attempt ended without an answer: did it post? (Only posts need this; the rest is idempotent.)"""
        if isinstance(delivery, TranscriptUpload) and conv is not None:
            return self.transcripts.find(delivery, conv, since=row.created_at, bot_user=self.ctx.bot_user_id)
        if isinstance(delivery, Upload) and conv is not None and conv.id is not None:
            with self.ctx.db.read() as s:
                known = outbox.results(s, conv.id, Upload.kind)
            return self.copier.find(delivery, conv, since=row.created_at, known=known, bot_user=self.ctx.bot_user_id)
        if not isinstance(delivery, POSTS):
            return None
        if isinstance(delivery, ChannelNotice):
            return self.ctx.slack.find_delivered(delivery.channel, delivery.key, thread_ts=None, since=row.created_at)
        if conv is None:
            return None
        if isinstance(delivery, Card) and conv.thread_ts:
            return conv.thread_ts
        thread = None if isinstance(delivery, Card) else conv.thread_ts
        if not isinstance(delivery, Card) and not thread:
            return None
        found = self.ctx.slack.find_delivered(conv.channel, delivery.key, thread_ts=thread, since=row.created_at)
        if found:
            log.info("slack %s #%s was already posted before the interruption (ts %s)", row.kind, row.id, found)
        return found

    def send(self, delivery: Delivery, row: Outbox, conv: Conversation | None) -> object:
        ctx, slack = self.ctx, self.ctx.slack
        match delivery:
            case ChannelNotice(channel=channel, text=text):
                return slack.post(channel, notice(text), key=delivery.key)
            case Delete(channel=channel, ts=ts):  # queued by `dmbridge forget` (bridge/forget.py)
                return slack.delete(channel, ts)
            case Ephemeral(channel=channel, user=user, text=text, thread_ts=thread_ts):
                slack.post_ephemeral(channel, user, text, thread_ts=thread_ts or None)
                return None
            case Home(user=user):
                slack.publish_home(user, self._home(user))
                return None
        if conv is None:
            raise Rejected("conversation is gone")
        match delivery:
            case Card():
                if conv.thread_ts:
                    return conv.thread_ts
                card = card_view(conv, ctx.toml.tz, types=_types(ctx), lead=self._lead(conv))
                return slack.post(conv.channel, header_card(card), key=delivery.key)
            case CardUpdate(reopened=reopened):
                if conv.thread_ts:
                    view = card_view(conv, ctx.toml.tz, reopened, _types(ctx), self._csat(conv), self._lead(conv))
                    slack.update(conv.channel, conv.thread_ts, header_card(view))
                return None
            case AutoAssign(skip=skip):
                self._auto_assign(conv, skip)
                return None
            case AutoReplyDue():
                with ctx.db.session() as s:
                    fresh = s.get(Conversation, conv.id)
                    if fresh is not None:
                        automatic.send_due(s, ctx.toml, fresh, delivery, ctx.clock())
                ctx.wake_platform.set()  # the DM it queued
                return None
            case Unreaction(channel=channel, ts=ts, name=name):
                slack.unreact(channel, ts, name)
                return None
            case Reaction(channel=channel, ts=ts, name=name):
                slack.react(channel, ts, name)
                return None
        if not conv.thread_ts:
            raise Rejected("the conversation's header card could not be posted")
        match delivery:
            case TranscriptUpload():
                return self.transcripts.upload(delivery, conv, ctx.bot_user_id)
            case Upload():
                source = ctx.connectors.get(conv.platform) if delivery.private else None
                return self.copier.copy(delivery, conv, max(row.attempts - 1, 0), source)  # attempts counts this one
            case Notice(text=text):
                return slack.post(conv.channel, notice(text), thread_ts=conv.thread_ts, key=delivery.key)
            case Mirror():
                message = SlackMessage(text=delivery.text, blocks=delivery.blocks)
                if delivery.echo_of is not None and _our_echo(ctx, delivery.echo_of):
                    return "our own send: not mirrored"
                if delivery.from_brand:
                    return slack.post(
                        conv.channel,
                        message,
                        thread_ts=conv.thread_ts,
                        key=delivery.key,
                        username=f"@{conv.account} (outside Slack)",
                    )
                return slack.post(
                    conv.channel,
                    message,
                    thread_ts=conv.thread_ts,
                    key=delivery.key,
                    username=customer_username(conv.customer_name, Platform(conv.platform).label),
                    icon_url=safe_https_url(conv.customer_avatar),
                )
        raise Rejected(f"unknown delivery kind {row.kind}")

    def _csat(self, conv: Conversation) -> int | None:
        """The score the card shows (``bridge.automatic``)."""
        with self.ctx.db.read() as s:
            return replies.latest_score(s, conv.id) if conv.id is not None else None

    def _lead(self, conv: Conversation) -> str | None:
        """The lead's stage and value for the card (None: not a lead)."""
        with self.ctx.db.read() as s:
            lead = lead_store.get(s, conv.id or 0)
        return None if lead is None else lead_label(lead.stage, lead.value_minor, lead.currency)

    def _home(self, user: str) -> dict[str, object]:
        ctx, now = self.ctx, self.ctx.clock()
        if not ctx.desk.authorize(user, Scope.DESK).allowed:  # asked at each publish, so leaving the desk shows
            return not_agent_home_view()
        with ctx.db.read() as s:
            mine, unassigned, escalated = (
                desk_store.listing(s, scope, user) for scope in ("mine", "unassigned", "escalated")
            )
            counts = desk_store.status_counts(s)
        seen = ctx.desk.visible_channels(user, tuple(c.channel for c in (*mine, *unassigned, *escalated)))
        mine, unassigned, escalated = (
            [c for c in convs if c.channel in seen] for convs in (mine, unassigned, escalated)
        )
        return home_view(user, mine, unassigned, escalated, counts, ctx.desk.link, now, self.home_report(now))

    def _auto_assign(self, conv: Conversation, skip: str = "") -> None:
        """Round robin needs the group's members and presence from Slack: ask first, then decide in one go."""
        ctx = self.ctx
        group = ctx.toml.assignment.usergroup
        if not group:
            return
        roster = ctx.desk.roster.group(group)
        away = {u for u in roster if u == skip or ctx.desk.roster.away(u)}
        with ctx.db.session() as s:
            fresh = s.get(Conversation, conv.id)
            if fresh is not None:
                ctx.desk.auto_assign(s, fresh, roster, away, ctx.clock())

    # ---------------------------------------------------------------------------------------------- outcomes

    def sent(
        self, delivery: Delivery, row: Outbox, conv: Conversation | None, result: object, resumed: float | None
    ) -> tuple[str | None, Write | None]:
        ctx, stored = self.ctx, None if result is None else str(result)

        def write(s: Session) -> None:
            if resumed is not None:
                enqueue_channel_notice(
                    s,
                    ctx,
                    "slack",
                    resumed,
                    ":white_check_mark: Slack refused dmbridge's "
                    "bot token for a while; it works again and queued messages are being "
                    "delivered in order.",
                    working=True,
                )
            if isinstance(delivery, Card) and conv is not None and conv.id is not None and stored:
                state.card_posted(s, conv.id, stored)

        return stored, write if resumed is not None or isinstance(delivery, Card) else None

    def retry(self, delivery: Delivery, row: Outbox, conv: Conversation | None, verdict: Retry) -> Write:
        if verdict.rate_limited and (channel := self.group(delivery, conv)) is not None:
            self.pacer.pause(channel, verdict.at)
        return retry_write(row, verdict)

    def paused(
        self,
        delivery: Delivery,
        row: Outbox,
        conv: Conversation | None,
        until: float,
        first: bool,
        since: float,
        reason: str,
    ) -> Write | None:
        return None  # said in the channel once the token works again (``sent``)

    def failed(self, delivery: Delivery | None, row: Outbox, conv: Conversation | None, verdict: Failed) -> Write:
        """Fail the row; for a delivery given up after retries, say so in its thread (unless it is itself a thread
        notice or the card); for a post refused for want of membership, tell the team once."""
        ctx, row_id, reason = self.ctx, row.id, verdict.reason
        assert row_id is not None
        invite = (
            None
            if delivery is None or verdict.gave_up
            else membership.hint(ctx.settings, delivery, conv, reason, ctx.clock())
        )
        say = verdict.gave_up and conv is not None and conv.thread_ts and not isinstance(delivery, Notice | Card)
        # a file that cannot be copied is named in its thread with the reason, never left out in silence
        note = not_copied_note(delivery, conv, reason) if isinstance(delivery, Upload) and conv is not None else None

        def write(s: Session) -> None:
            outbox.fail(s, row_id, reason)
            if isinstance(delivery, AutoReplyDue):  # never sent: it must not count for the cooldown
                record = replies.pending(s, delivery.key)
                if record is not None:
                    replies.settle(s, record, None)
            if invite is not None:
                invite(s)
            if note is not None and conv is not None:
                state.say(s, conv, ("not_copied", row_id), note, ctx.clock())
            elif say and conv is not None:
                state.say(
                    s,
                    conv,
                    ("failed", "slack", row_id),
                    f":warning: A Slack delivery ({row.kind}) was given up. {reason}",
                    ctx.clock(),
                )

        return write


POST_KINDS = {kind.kind for kind in (*POSTS, TemplatePost, Upload, TranscriptUpload)}


def _types(ctx: Context) -> list[tuple[str, str]]:
    return [(t.name, t.emoji) for t in ctx.toml.types]


def _our_echo(ctx: Context, echo_of: tuple[str, str, str]) -> bool:
    platform, account, remote_id = echo_of
    with ctx.db.read() as s:
        return events.sent_by_us(s, platform, account, remote_id)
