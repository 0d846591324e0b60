"""The one delivery runner: claim due rows, call out with no transaction open, record the outcomes.

One ``Runner`` per target (``slack``, ``platform``); what differs between
them is a ``Handler`` (``bridge.slack_delivery``, ``bridge.platform_delivery``):
which rows to take now, how to verify and make a call, and what to write
after it. Each step:

1. reads the due rows (the head of each lane) and lets the handler admit
   them (pacing per channel, a paused credential);
2. claims the admitted rows in one short transaction (``bridge.store.outbox``);
3. for each claimed row: decodes its typed delivery, verifies an uncertain
   earlier attempt, makes the call; an error becomes a verdict of the pure
   ``bridge.decide.decide``; a row of a group that just answered "slow down"
   or "refused" (a channel, a platform) is handed back untouched;
4. writes every outcome in one transaction (``bridge.claims.write_outcomes``:
   retried, and on failure every claim is given back).

A crash between 2 and 4 leaves rows in ``sending``: ``claims.recover`` returns
them as ``uncertain``, and step 3 looks for them before sending again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from sqlmodel import Session, col, select

from bridge.claims import give_back, write_outcomes
from bridge.context import Context
from bridge.decide import Failed, Paused, Policy, Retry, Verdict, decide
from bridge.deliveries import Delivery, Target
from bridge.errors import DeliveryError
from bridge.store import outbox
from bridge.store.tables import Conversation, Outbox

log = logging.getLogger(__name__)

Write = Callable[[Session], None]
BLOCKED_RECHECK = 0.2


class Handler(Protocol):
    """What one target's deliveries need beyond claiming and recording."""

    target: Target
    batch: int

    def admit(self, rows: list[Outbox], where: dict[int, tuple[str, str]], now: float) -> tuple[list[int], float]:
        """The ids of ``rows`` to claim now, and how soon to look again for the others (``where``: each
        conversation's Slack channel and platform, by id)."""

    def group(self, delivery: Delivery, conv: Conversation | None) -> str | None:
        """What a refusal or rate limit holds back within the batch (a channel, a platform); None: nothing."""

    def credential(self, conv: Conversation | None) -> str:
        """Whose credential carries this delivery (``slack``, ``x`` …), for pauses and /healthz."""

    def before(self, delivery: Delivery, row: Outbox, conv: Conversation | None) -> Write | None:
        """What to write instead of attempting now (a row that must wait, or writes its own outcome)."""

    def verify(self, delivery: Delivery, row: Outbox, conv: Conversation | None) -> object | None:
        """An earlier attempt ended without an answer: its result if it went through, else None."""

    def send(self, delivery: Delivery, row: Outbox, conv: Conversation | None) -> object:
        """Make the call; its result (a ts, a platform message id …)."""

    def sent(
        self, delivery: Delivery, row: Outbox, conv: Conversation | None, result: object, resumed: float | None
    ) -> tuple[str | None, Write | None]:
        """The result column for a success, and anything else to write (``resumed``: a credential incident
        that just ended, since when)."""

    def retry(self, delivery: Delivery, row: Outbox, conv: Conversation | None, verdict: Retry) -> Write: ...

    def failed(self, delivery: Delivery | None, row: Outbox, conv: Conversation | None, verdict: Failed) -> Write: ...

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
        """Anything to write besides the row's retry when a credential is refused (``first`` of an incident)."""


class Runner:
    """Runs one target's deliveries; ``step()`` returns how long to sleep before the next."""

    def __init__(self, ctx: Context, handler: Handler) -> None:
        self.ctx, self.handler = ctx, handler
        self.policy = Policy(ctx.settings.dmbridge_max_attempts, ctx.settings.dmbridge_http_timeout)

    def step(self) -> float:
        ctx, handler, now = self.ctx, self.handler, self.ctx.clock()
        with ctx.db.read() as s:
            rows = outbox.due(s, handler.target, now, limit=handler.batch)
            where = _where(s, rows)
        if not rows:
            return idle(ctx, handler.target, now)
        wanted, wait = handler.admit(rows, where, now)
        claimed = claim_rows(ctx, wanted, ctx.clock())
        outcomes: list[Write] = []
        finished: list[tuple[int, str | None]] = []
        held: dict[str, float] = {}  # groups that just answered "slow down" or "refused": until when
        try:
            for row, conv in claimed:
                ctx.edge.give_way()  # no transaction is open here: requests being answered go first
                outcomes.append(self._attempt(row, conv, held, finished))
        except BaseException:
            give_back(ctx, [r for r, _ in claimed], "interrupted")
            raise
        if claimed:
            written = write_outcomes(
                ctx, [r for r, _ in claimed], [lambda s: outbox.finish_many(s, finished), *outcomes]
            )
            if written and handler.target == "platform":
                ctx.wake_sla.set()  # a delivered reply changes the conversation's SLA clocks
            ctx.wake_slack.set()
        return 0.0 if claimed else wait

    def _attempt(
        self, row: Outbox, conv: Conversation | None, held: dict[str, float], finished: list[tuple[int, str | None]]
    ) -> Write:
        """One claimed row: what to write about it (a success's result goes in ``finished``)."""
        ctx, handler = self.ctx, self.handler
        assert row.id is not None
        try:
            delivery = outbox.delivery(row)
        except ValueError as exc:
            return handler.failed(None, row, conv, Failed(str(exc)))
        group, name = handler.group(delivery, conv), handler.credential(conv)
        paused_until = ctx.auth_state(name).paused_until
        if paused_until > ctx.clock():  # refused just now, earlier in this batch: leave the row as it was
            return hand_back(row, paused_until)
        if group is not None and group in held:  # rate-limited just now, earlier in this batch
            return hand_back(row, held[group])
        if (early := handler.before(delivery, row, conv)) is not None:
            return early
        checked = not row.uncertain
        try:
            result = None if checked else handler.verify(delivery, row, conv)
            checked = True
            if result is None:
                result = handler.send(delivery, row, conv)
        except Exception as exc:
            verdict: Verdict = decide(exc, attempts=row.attempts, checked=checked, now=ctx.clock(), policy=self.policy)
            return self._record(delivery, row, conv, verdict, exc, name, group, held)
        ctx.health[name] = "ok"
        resumed = ctx.auth_state(name).works()
        if resumed is not None:
            log.warning("%s deliveries resumed: the credential works again", name)
        stored, extra = handler.sent(delivery, row, conv, result, resumed)
        finished.append((row.id, stored))
        return extra or _nothing

    def _record(
        self,
        delivery: Delivery,
        row: Outbox,
        conv: Conversation | None,
        verdict: Verdict,
        exc: Exception,
        name: str,
        group: str | None,
        held: dict[str, float],
    ) -> Write:
        ctx, handler = self.ctx, self.handler
        row_id = row.id
        assert row_id is not None
        match verdict:
            case Retry():
                if verdict.rate_limited and group is not None:
                    held[group] = verdict.at  # the limit is the group's: the others would only hit it too
                log.info("%s %s #%s retry at %.1f: %s", handler.target, row.kind, row_id, verdict.at, verdict.reason)
                return handler.retry(delivery, row, conv, verdict)
            case Paused():
                state = ctx.auth_state(name)
                first = state.refused(ctx.clock())
                if first:
                    log.error("%s deliveries paused: %s", name, verdict.reason)
                ctx.health[name] = verdict.reason
                until, unsure, reason = state.paused_until, verdict.uncertain, verdict.reason
                extra = handler.paused(delivery, row, conv, until, first, state.since, reason)

                def paused(s: Session) -> None:
                    outbox.retry_at(s, row_id, until, reason, uncertain=unsure, counted=False)
                    if extra is not None:
                        extra(s)

                return paused
            case Failed():
                if not isinstance(exc, DeliveryError):  # a bug, not the platform's answer
                    log.error("%s %s #%s: %s", handler.target, row.kind, row_id, verdict.reason, exc_info=exc)
                else:
                    log.warning("%s %s #%s failed: %s", handler.target, row.kind, row_id, verdict.reason)
                return handler.failed(delivery, row, conv, verdict)


def _nothing(_s: Session) -> None:
    return None


def _where(s: Session, rows: list[Outbox]) -> dict[int, tuple[str, str]]:
    ids = {r.conversation_id for r in rows if r.conversation_id}
    if not ids:
        return {}
    found = s.exec(
        select(Conversation.id, Conversation.channel, Conversation.platform).where(col(Conversation.id).in_(ids))
    ).all()
    return {int(i): (str(ch), str(p)) for i, ch, p in found if i is not None}


def claim_rows(ctx: Context, row_ids: list[int], now: float) -> list[tuple[Outbox, Conversation | None]]:
    """Claim rows in one short transaction; the ones we got, with their conversations."""
    if not row_ids:
        return []
    with ctx.db.session() as s:
        rows = outbox.claim_many(s, row_ids, now, ctx.instance_id)
        ids = {r.conversation_id for r in rows if r.conversation_id}
        convs = (
            {c.id: c for c in s.exec(select(Conversation).where(col(Conversation.id).in_(ids))).all()} if ids else {}
        )
        return [(r, convs.get(r.conversation_id)) for r in rows]


def hand_back(row: Outbox, when: float) -> Write:
    """A claimed row we will not attempt now goes back to ``pending`` as it was."""
    row_id, error, uncertain = row.id, row.last_error or "postponed", row.uncertain
    assert row_id is not None
    return lambda s: outbox.retry_at(s, row_id, when, error, uncertain=uncertain, counted=False)


def retry_write(row: Outbox, verdict: Retry, waiting_shown: bool | None = None) -> Write:
    row_id = row.id
    assert row_id is not None
    return lambda s: outbox.retry_at(
        s,
        row_id,
        verdict.at,
        verdict.reason,
        waiting_shown=waiting_shown,
        uncertain=verdict.uncertain,
        counted=verdict.counted,
    )


def idle(ctx: Context, target: str, now: float) -> float:
    """How long to sleep with nothing to claim (the loop's wake event cuts it short)."""
    with ctx.db.read() as s:
        nxt = outbox.next_due_at(s, target)
    if nxt is None:
        return 1.0
    if nxt <= now:  # due but waiting behind an older row of its lane: that row's outcome wakes us
        return BLOCKED_RECHECK
    return min(1.0, nxt - now)
