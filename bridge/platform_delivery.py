"""Platform deliveries (``target='platform'``): agent replies and templates to X, Meta or a generic source.

The ``Handler`` the runner (``bridge.runner``) uses for the platform side: a
reply whose last attempt may have gone out is looked for on the platform first
(``VerifiesSends``); receipts go on the agent's Slack message (✅ delivered,
⏳ waiting on a rate limit, ⚠️ refused, with the reason in the thread).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace

from sqlmodel import Session, col, select

from bridge import profiles, state, thread_messages
from bridge.automatic import AUTHOR
from bridge.context import Context, enqueue_channel_notice
from bridge.crm import CrmClient
from bridge.decide import Failed, Retry
from bridge.deliveries import DM, OK, WAITING, WARNING, CrmPost, Delivery, Profile, Reaction, Target, Unreaction
from bridge.domain import OutboundFile, OutboundMessage, Platform, SendResult, file_kind, limits_of
from bridge.errors import Rejected
from bridge.runner import BLOCKED_RECHECK, Write, retry_write
from bridge.slack.agent_files import AgentFiles, MediaLinks
from bridge.store import events, outbox, replies
from bridge.store.tables import Conversation, Outbox, SentMessage
from connectors.base import Connector, VerifiesSends

log = logging.getLogger(__name__)


class PlatformHandler:
    """Sends replies through the conversation's connector; refreshes customer profiles."""

    target: Target = "platform"
    batch = 20

    def __init__(self, ctx: Context, files: AgentFiles | None = None, crm: CrmClient | None = None) -> None:
        self.ctx = ctx
        self.files = files or agent_files(ctx)
        self.crm = crm  # [crm]: leads handed off (bridge.crm)

    def admit(self, rows: list[Outbox], where: dict[int, tuple[str, str]], now: float) -> tuple[list[int], float]:
        wait, wanted = 0.5, []
        for row in rows:  # each is the head of its lane
            assert row.id is not None
            if row.kind == CrmPost.kind:  # the CRM is not the platform: its credential pauses nothing here
                wanted.append(row.id)
                continue
            platform = where.get(row.conversation_id or 0, ("", ""))[1]
            paused = self.ctx.auth_state(platform).paused_until - self.ctx.clock()
            if paused > 0:  # this platform refused our credential: leave its rows alone until the next probe
                wait = min(wait, paused)
                continue
            wanted.append(row.id)
        return wanted, wait

    def group(self, delivery: Delivery, conv: Conversation | None) -> str | None:
        """A rate limit is the account's: the platform's other rows would only hit it too."""
        if isinstance(delivery, CrmPost):
            return "crm"
        return conv.platform if conv is not None else None

    def credential(self, conv: Conversation | None) -> str:
        return conv.platform if conv is not None else "platform"

    def before(self, delivery: Delivery, row: Outbox, conv: Conversation | None) -> Write | None:
        if isinstance(delivery, Profile):  # a customer profile refresh writes its own outcome
            return profiles.refresh(self.ctx, row, conv)
        waits_for = delivery.receipt_key if isinstance(delivery, DM | CrmPost) else None
        if waits_for is not None and self._settled(waits_for) is None:
            row_id, unsure = row.id, row.uncertain
            assert row_id is not None
            when = self.ctx.clock() + BLOCKED_RECHECK
            return lambda s: outbox.retry_at(
                s, row_id, when, "waiting for the thread post", uncertain=unsure, counted=False
            )
        return None

    def _post(self, dm: DM) -> Outbox | None:
        """A template's thread post, once it is settled (its ts carries the receipts); None while it is not."""
        assert dm.receipt_key is not None
        return self._settled(dm.receipt_key)

    def _settled(self, key: str) -> Outbox | None:
        """The thread post ``key``, once it is settled; None while it is not."""
        with self.ctx.db.read() as s:
            post = outbox.row_for(s, key)
        if post is not None and post.state in (outbox.PENDING, outbox.SENDING):
            return None
        return post

    def _receipt_ts(self, dm: DM) -> str | None:
        """The Slack message whose receipts show this reply's fate."""
        if dm.receipt_key is None:
            return dm.slack_ts
        post = self._post(dm)
        return post.result if post is not None and post.state == outbox.SENT else None

    def _message(self, delivery: Delivery, conv: Conversation | None) -> tuple[Connector, OutboundMessage]:
        if not isinstance(delivery, DM):
            raise Rejected(f"{delivery.kind} is not a platform delivery")
        if conv is None:
            raise Rejected("conversation is gone")
        connector = self.ctx.connectors.get(conv.platform)
        if connector is None:
            raise Rejected(f"no {conv.platform} connector is configured")
        return connector, OutboundMessage(
            platform=Platform(conv.platform),
            account=conv.account,
            conversation=conv.remote_id,
            recipient_id=conv.customer_id,
            text=delivery.text,
            last_inbound_at=conv.last_inbound_at,
            key=delivery.key,
            via=conv.via or "",
            file=None if delivery.file is None else _named(delivery.file.name, delivery.file.mimetype),
            quick_replies=delivery.options,
        )

    def media(self, token: str) -> tuple[str, str, int, Iterator[bytes]] | None:
        """``GET /media/{token}``: an agent's file for a source that takes links (``bridge.http``)."""

        def channel_of(conversation_id: int) -> str | None:
            with self.ctx.db.read() as s:
                conv = s.get(Conversation, conversation_id)
            return conv.channel if conv is not None else None

        found = self.files.serve(token, channel_of)
        return None if found is None else (found[0].name, found[0].mimetype, found[0].size, found[1])

    def verify(self, delivery: Delivery, row: Outbox, conv: Conversation | None) -> SendResult | None:
        """An earlier attempt ended without an answer: look for it on the platform before sending again."""
        if isinstance(delivery, CrmPost):
            return None  # sent again: the CRM deduplicates by event_id (README)
        connector, message = self._message(delivery, conv)
        if not isinstance(connector, VerifiesSends) or conv is None:
            return None  # no way to check: resending may duplicate (README, "Running more than one instance")
        with self.ctx.db.read() as s:
            known = set(s.exec(select(SentMessage.remote_id).where(SentMessage.conversation_id == conv.id)).all())
        found = connector.find_sent(message, since=row.created_at, known=known)
        if found is not None:
            log.info(
                "%s delivery #%s had gone out before the interruption (%s)", conv.platform, row.id, found.remote_id
            )
        return found

    def send(self, delivery: Delivery, row: Outbox, conv: Conversation | None) -> SendResult | str:
        if isinstance(delivery, CrmPost):
            if self.crm is None:
                raise Rejected("no [crm] is configured (or its secret is not set)")
            if conv is None:
                raise Rejected("conversation is gone")
            return self.crm.post(delivery, conv)
        connector, message = self._message(delivery, conv)
        if not isinstance(delivery, DM) or delivery.file is None or conv is None or conv.id is None:
            return connector.send(message)
        limits = limits_of(self.ctx.limits(), conv.platform, conv.via)
        if limits is None or limits.files is None:
            raise Rejected(f"{Platform(conv.platform).label} takes text only from dmbridge")
        with self.files.outbound(delivery.file, limits.files, conv.id) as file:  # the local copy goes afterwards
            return connector.send(replace(message, file=file))

    # ---------------------------------------------------------------------------------------------- outcomes

    def sent(
        self, delivery: Delivery, row: Outbox, conv: Conversation | None, result: object, resumed: float | None
    ) -> tuple[str | None, Write | None]:
        if isinstance(delivery, CrmPost):
            return str(result), self._crm_receipt(delivery, conv, OK)
        assert isinstance(delivery, DM) and isinstance(result, SendResult) and conv is not None
        ctx, conv_id, ts = self.ctx, conv.id, self._receipt_ts(delivery)
        assert conv_id is not None

        def delivered(s: Session) -> None:
            now = ctx.clock()
            events.record_sent(
                s,
                platform=conv.platform,
                account=conv.account,
                remote_id=result.remote_id,
                conversation_id=conv_id,
                slack_channel=delivery.slack_channel,
                slack_ts=ts,
                now=now,
            )
            state.reply_delivered(s, conv_id, now)
            if delivery.author == AUTHOR:  # an automatic message: not an agent's answer (bridge.store.desk)
                replies.delivered(s, delivery.key, result.remote_id)
            if delivery.part == delivery.parts - 1:
                _settle(s, delivery, ts, OK, now, row)

        return result.remote_id, delivered

    def retry(self, delivery: Delivery, row: Outbox, conv: Conversation | None, verdict: Retry) -> Write:
        if not verdict.rate_limited or not isinstance(delivery, DM):
            return retry_write(row, verdict)
        waiting = None if row.waiting_shown else delivery.receipt(self._receipt_ts(delivery), WAITING)
        marked = retry_write(row, verdict, waiting_shown=True)
        now = self.ctx.clock()

        def limited(s: Session) -> None:
            marked(s)
            thread_messages.enqueue_receipt(s, waiting, now)

        return limited

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
        if not first or conv is None:
            return None
        ctx, name = self.ctx, conv.platform
        return lambda s: enqueue_channel_notice(
            s,
            ctx,
            name,
            since,
            f":warning: {reason}. Replies to {Platform(name).label} customers are queued, "
            "not lost; they go out in order once the credential works again (see /healthz).",
        )

    def failed(self, delivery: Delivery | None, row: Outbox, conv: Conversation | None, verdict: Failed) -> Write:
        """Refused for good: ⚠️, a notice with the reason, and the message's later parts failed too."""
        row_id, reason = row.id, verdict.reason
        assert row_id is not None
        if conv is not None and isinstance(delivery, CrmPost):
            receipt, now = self._crm_receipt(delivery, conv, WARNING), self.ctx.clock()

            def refused(s: Session) -> None:
                outbox.fail(s, row_id, reason)
                receipt(s)
                state.say(s, conv, ("crm_failed", row_id), f":warning: Not handed to the CRM. {reason}", now)

            return refused
        if conv is None or not isinstance(delivery, DM):
            return lambda s: outbox.fail(s, row_id, reason)
        ts, now = self._receipt_ts(delivery), self.ctx.clock()

        def write(s: Session) -> None:
            outbox.fail(s, row_id, reason)
            # later parts of the same Slack message must not arrive without this one
            later = s.exec(
                select(Outbox).where(col(Outbox.dedupe_key).in_(delivery.later_parts()), Outbox.state == outbox.PENDING)
            ).all()
            for other in later:
                assert other.id is not None
                outbox.fail(s, other.id, "not sent: an earlier part was refused")
            _settle(s, delivery, ts, WARNING, now, row)
            state.say(
                s,
                conv,
                ("failed", delivery.slack_channel, str(ts)),
                f":warning: Not delivered to the customer. {reason}",
                now,
            )

        return write

    def _crm_receipt(self, post: CrmPost, conv: Conversation | None, name: str) -> Write:
        """✅ or ⚠️ on the thread line that announced the lead's change."""
        line, now = self._settled(post.receipt_key), self.ctx.clock()
        ts = line.result if line is not None and line.state == outbox.SENT else None
        channel = conv.channel if conv is not None else ""

        def write(s: Session) -> None:
            if ts and post.conversation_id is not None:
                thread_messages.enqueue_receipt(s, Reaction.on(post.conversation_id, channel, ts, name), now)

        return write


def _settle(s: Session, dm: DM, ts: str | None, name: str, now: float, row: Outbox) -> None:
    """The final receipt on the agent's message, and the ⏳ taken off if it was shown (only a rate-limited
    row shows it: a one-part message whose row never was has none to look for)."""
    thread_messages.enqueue_receipt(s, dm.receipt(ts, name), now)
    waiting = dm.receipt(ts, WAITING) if dm.parts > 1 or row.waiting_shown else None
    if waiting is not None and outbox.queued(s, waiting):
        thread_messages.enqueue_receipt(
            s, Unreaction.on(waiting.conversation_id or 0, waiting.channel, waiting.ts, WAITING), now
        )


def _named(name: str, mimetype: str) -> OutboundFile:
    """What a file part carries before its bytes are fetched (what ``find_sent`` needs to know of it)."""
    return OutboundFile(name, file_kind(mimetype), mimetype, 0)


def agent_files(ctx: Context) -> AgentFiles:
    """Agents' files read from Slack with the bot token; links signed for sources that take links."""
    settings = ctx.settings
    links = None
    if settings.dmbridge_public_url:
        links = MediaLinks(
            settings.slack_bot_token, settings.dmbridge_public_url, settings.dmbridge_media_link_hours, ctx.clock
        )
    return AgentFiles(
        ctx.slack,
        token=settings.slack_bot_token,
        api_url=settings.slack_base_url,
        cap_mb=settings.dmbridge_max_attachment_mb,
        timeout=settings.dmbridge_http_timeout,
        links=links,
    )
