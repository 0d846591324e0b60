"""Platform delivery: agent replies and templates from the outbox to X, Meta or a generic source.

Rows are claimed in one short transaction, sent with no transaction open, and
their outcomes written together; a row whose last attempt may have gone out
is looked for on the platform first (``VerifiesSends``).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session, col, select

from bridge import outbound, profiles
from bridge.domain import OutboundMessage, Platform, SendResult
from bridge.errors import AuthFailed, DeliveryError, Rejected, RetryLater
from bridge.store import desk as desk_store
from bridge.store import events, outbox
from bridge.store.tables import Conversation, Outbox, SentMessage
from bridge.workers import (
    BLOCKED_RECHECK,
    OK,
    WAITING,
    WARNING,
    Context,
    backoff,
    claim_rows,
    enqueue_channel_notice,
    give_back,
    hand_back,
    idle,
    log,
    optional_text,
    row_exists,
    unexpected,
    write_outcomes,
)
from connectors.base import Connector, VerifiesSends


class PlatformDelivery:
    """Delivers ``target='platform'`` rows (agent replies) through the conversation's connector."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def step(self) -> float:
        ctx, now = self.ctx, self.ctx.clock()
        with ctx.db.read() as s:
            rows = outbox.due(s, "platform", now, limit=20)
            platforms = {i: p for i, p in s.exec(select(Conversation.id, Conversation.platform).where(
                col(Conversation.id).in_({r.conversation_id for r in rows if r.conversation_id}))).all()}
        if not rows:
            return idle(ctx, "platform", now)
        wait, wanted = 0.5, []
        for row in rows:  # each is the head of its lane
            assert row.id is not None
            paused = ctx.auth_state(platforms.get(row.conversation_id or 0, "")).paused_until - ctx.clock()
            if paused > 0:  # this platform refused our credential: leave its rows alone until the next probe
                wait = min(wait, paused)
                continue
            wanted.append(row.id)
        claimed = claim_rows(ctx, wanted, ctx.clock())
        # calls with no transaction open, outcomes written together afterwards (see SlackDelivery.step);
        # any error in between gives the claims back (bridge.claims)
        outcomes: list[Callable[[Session], None]] = []
        batch: list[Outbox] = []  # the claims whose outcomes are written together
        held: dict[str, float] = {}  # platforms that just refused us or rate-limited us: until when
        try:
            for row, conv in claimed:
                if row.kind == "profile":  # a customer profile refresh writes its own outcome
                    self._profile(row, conv)
                    continue
                batch.append(row)
                platform = conv.platform if conv else ""
                if platform in held:
                    outcomes.append(hand_back(row, held[platform]))
                    continue
                outcomes.append(self._attempt(row, conv, held))
        except BaseException:
            give_back(ctx, [r for r, _ in claimed], "interrupted")
            raise
        if outcomes and write_outcomes(ctx, batch, outcomes):
            ctx.wake_sla.set()  # a delivered reply changes the conversation's SLA clocks
        ctx.wake_slack.set()
        return 0.0 if claimed else wait

    def _profile(self, row: Outbox, conv: Conversation | None) -> None:
        try:
            profiles.refresh(self.ctx, row, conv)
        except Exception as exc:
            log.exception("profile refresh #%s: unexpected error", row.id)
            row_id, reason = row.id or 0, f"unexpected {type(exc).__name__}"
            write_outcomes(self.ctx, [row], [lambda s: outbox.fail(s, row_id, reason)])

    def _attempt(self, row: Outbox, conv: Conversation | None, held: dict[str, float]) -> Callable[[Session], None]:
        """Send one part (no transaction open); return what to write about the outcome."""
        ctx, data = self.ctx, outbox.load(row)
        row_id = row.id
        assert row_id is not None
        channel, ts = str(data["slack_channel"]), optional_text(data.get("slack_ts"))
        if ts is None and data.get("receipt_key"):
            # a template: its receipts go on the thread post that shows it, which must exist first
            with ctx.db.read() as s:
                post = s.exec(select(Outbox).where(Outbox.dedupe_key == data["receipt_key"])).first()
            if post is not None and post.state in (outbox.PENDING, outbox.SENDING):
                when, error, unsure = ctx.clock() + BLOCKED_RECHECK, "waiting for the thread post", row.uncertain
                return lambda s: outbox.retry_at(s, row_id, when, error, uncertain=unsure)
            ts = post.result if post is not None and post.state == outbox.SENT else None
        checked = not row.uncertain
        try:
            if conv is None:
                raise Rejected("conversation is gone")
            connector = ctx.connectors.get(conv.platform)
            if connector is None:
                raise Rejected(f"no {conv.platform} connector is configured")
            message = OutboundMessage(
                platform=Platform(conv.platform), account=conv.account, conversation=conv.remote_id,
                recipient_id=conv.customer_id, text=str(data["text"]), last_inbound_at=conv.last_inbound_at,
                key=row.dedupe_key)
            result = None if checked else self._verify(connector, message, row, conv)
            checked = True
            if result is None:
                result = connector.send(message)
        except RetryLater as exc:
            assert conv is not None
            uncertain, reason = exc.uncertain or not checked, exc.reason
            if exc.rate_limited:
                when = max(exc.retry_at if exc.retry_at is not None else ctx.clock() + 60, ctx.clock() + 1)
                held[conv.platform] = when  # the limit is the account's: the other rows would only hit it too
                show = not row.waiting_shown

                def limited(s: Session) -> None:
                    outbox.retry_at(s, row_id, when, reason, waiting_shown=True, uncertain=uncertain)
                    if show:
                        outbound.enqueue_reaction(s, conv, channel, ts, WAITING, ctx.clock())
                return limited
            if row.attempts >= ctx.settings.dmbridge_max_attempts:
                return self._failed(row, conv, channel, ts, f"{reason} (gave up after {row.attempts} attempts)")
            when = ctx.clock() + backoff(row.attempts)
            if exc.uncertain:  # let a late answer land before we look for it
                when = max(when, ctx.clock() + ctx.settings.dmbridge_http_timeout)
            return lambda s: outbox.retry_at(s, row_id, when, reason, uncertain=uncertain)
        except AuthFailed as exc:
            name = conv.platform if conv else "platform"
            state = ctx.auth_state(name)
            first = state.refused(ctx.clock())
            ctx.health[name] = exc.reason
            held[name] = state.paused_until
            paused_until, reason, unsure = state.paused_until, exc.reason, not checked

            def refused(s: Session) -> None:
                outbox.retry_at(s, row_id, paused_until, reason, uncertain=unsure)
                if first:
                    log.error("%s deliveries paused: %s", name, reason)
                    enqueue_channel_notice(s, ctx, name, state.since, f":warning: {reason}. Replies to "
                                           f"{Platform(name).label} customers are queued, not lost; they go out "
                                           "in order once the credential works again (see /healthz).")
            return refused
        except DeliveryError as exc:
            if conv is None:
                failed_reason = exc.reason
                return lambda s: outbox.fail(s, row_id, failed_reason)
            return self._failed(row, conv, channel, ts, exc.reason)
        except Exception as exc:  # anything unforeseen: the row must not stay claimed; it may have gone out
            log.exception("platform delivery #%s: unexpected error", row_id)
            if conv is not None and row.attempts >= ctx.settings.dmbridge_max_attempts:
                return self._failed(row, conv, channel, ts, f"Unexpected {type(exc).__name__} "
                                                            f"(gave up after {row.attempts} attempts).")
            return unexpected(row, ctx.clock(), exc)
        assert conv is not None and conv.id is not None
        ctx.health[conv.platform] = "ok"
        if ctx.auth_state(conv.platform).works() is not None:
            log.warning("%s deliveries resumed: the credential works again", conv.platform)
        last_part = int(data["part"]) == int(data["parts"]) - 1
        conv_id, sent = conv.id, result

        def delivered(s: Session) -> None:
            now = ctx.clock()
            outbox.finish(s, row_id, sent.remote_id)
            events.record_sent(s, platform=conv.platform, account=conv.account, remote_id=sent.remote_id,
                               conversation_id=conv_id, slack_channel=channel, slack_ts=ts, now=now)
            fresh = s.get(Conversation, conv_id)
            if fresh is not None:  # an agent reply was delivered: the SLA clocks change
                desk_store.sla_touch(fresh, now)
                s.add(fresh)
            if last_part:
                outbound.enqueue_reaction(s, conv, channel, ts, OK, now)
                if row_exists(s, f"react:{WAITING}:{channel}:{ts}"):
                    outbound.enqueue_reaction(s, conv, channel, ts, WAITING, now, remove=True)
        return delivered

    def _verify(self, connector: Connector, message: OutboundMessage, row: Outbox,
                conv: Conversation) -> SendResult | None:
        """An earlier attempt ended without an answer: look for it on the platform before sending again."""
        if not isinstance(connector, VerifiesSends):
            return None  # no way to check: resending may duplicate (README, "Running more than one instance")
        with self.ctx.db.session() as s:
            known = set(s.exec(select(SentMessage.remote_id).where(SentMessage.conversation_id == conv.id)).all())
        found = connector.find_sent(message, since=row.created_at, known=known)
        if found is not None:
            log.info("%s delivery #%s had gone out before the interruption (%s)", conv.platform, row.id,
                     found.remote_id)
        return found

    def _failed(self, row: Outbox, conv: Conversation, channel: str, ts: str | None,
                reason: str) -> Callable[[Session], None]:
        """What to write when a part is refused for good: ⚠️, a notice, and its later parts failed too."""
        row_id = row.id
        assert row_id is not None

        def write(s: Session) -> None:
            now = self.ctx.clock()
            outbox.fail(s, row_id, reason)
            # later parts of the same Slack message must not arrive without this one
            siblings = row.dedupe_key.rsplit(":", 1)[0] + ":"
            later = s.exec(select(Outbox).where(col(Outbox.dedupe_key).startswith(siblings),
                                                Outbox.state == outbox.PENDING)).all()
            for other in later:
                assert other.id is not None
                outbox.fail(s, other.id, "not sent: an earlier part was refused")
            outbound.enqueue_reaction(s, conv, channel, ts, WARNING, now)
            if row_exists(s, f"react:{WAITING}:{channel}:{ts}"):
                outbound.enqueue_reaction(s, conv, channel, ts, WAITING, now, remove=True)
            outbound.enqueue_notice(s, conv, f"failed:{channel}:{ts}",
                                    f":warning: Not delivered to the customer. {reason}", now)
        return write
