"""The Slack event processor: stored events → outbox rows, each exactly once, in event order.

Authors are looked up in Slack (agent or not, names) before the transaction
opens; the batch is then applied in one transaction, serialised across
processes so outbox ids follow event order, first with no savepoints; if
anything of the batch raises, it is rolled back whole and applied again with
each event in its own savepoint: one that raises something unforeseen is
rolled back alone, marked ``failed`` with the error, its author is told
privately, and the batch moves on. A database outage or deadlock is not the
event's fault: the batch rolls back and is tried again.
"""

from __future__ import annotations

import json
import logging
import traceback

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlmodel import Session, col, select

from bridge import state, thread_messages
from bridge.context import Context
from bridge.desk import Who
from bridge.runner import BLOCKED_RECHECK
from bridge.store import conversations, events, outbox
from bridge.store.locks import xact_serialize
from bridge.store.tables import Outbox

log = logging.getLogger(__name__)

FAILED = "failed"
BATCH, BUSY_BATCH = 50, 5

Thread = tuple[str, str]
Classified = tuple[int, dict[str, object], thread_messages.Action, Who | None]


class EventProcessor:
    """Turns stored Slack events into outbox rows (relay, notices), each exactly once."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.progressed = True  # the last step applied an event (else it only deferred some: take a full batch)

    def step(self) -> float:
        ctx = self.ctx
        with ctx.db.read() as s:
            # a batch is one write transaction: while requests wait to be stored, keep it short
            # (unless the last step got nowhere: events deferred at the head must not hide the ones behind them)
            small = ctx.edge.busy and self.progressed
            pending = events.unprocessed_slack_events(s, limit=BUSY_BATCH if small else BATCH)
        if not pending:
            return 1.0
        # classify, and ask Slack who the authors are, before the transaction opens (no write waits on Slack)
        classified: list[Classified] = []
        for row in pending:
            assert row.id is not None
            event = json.loads(row.payload)
            event = event.get("event", event)
            action = thread_messages.classify(event, ctx.bot_user_id, ctx.settings.note_prefixes)
            who = (
                ctx.desk.who(action.user, action.channel)
                if isinstance(action, thread_messages.Relay | thread_messages.Command)
                else None
            )
            classified.append((row.id, event, action, who))
        try:  # most batches raise nothing: then no savepoint per event (two statements each)
            done, deferred, failures, deliveries = self._batch(classified, isolate=False)
        except (OperationalError, InterfaceError):
            raise  # the database's trouble: the loop tries the batch again
        except Exception as exc:  # an event's (while applied, flushed or committed): rolled back whole; again,
            # each event in its own savepoint, so the one that raises is failed alone
            log.warning(
                "a batch of %d slack events raised %s: applied again event by event",
                len(classified),
                type(exc).__name__,
            )
            done, deferred, failures, deliveries = self._batch(classified, isolate=True)
        self.progressed = bool(done)
        for _ in failures:
            ctx.failed_event()
        if done:  # commands and replies change timelines (snooze, resolve, an agent's answer)
            ctx.wake_sla.set()
        if deliveries:
            ctx.wake_slack.set()
            ctx.wake_platform.set()
        return BLOCKED_RECHECK if deferred and not done else 0.0

    def _batch(
        self, classified: list[Classified], *, isolate: bool
    ) -> tuple[list[tuple[int, str]], set[Thread], list[int], bool]:
        """Apply the batch in one transaction: the events done (with their outcomes), the threads deferred, the
        events failed, whether deliveries were queued. Without ``isolate`` an event that raises something
        unforeseen rolls the whole batch back (the caller applies it again isolated); with it, each event runs
        in a savepoint and one that raises is rolled back alone and marked failed."""
        ctx = self.ctx
        deliveries = False
        with ctx.db.session() as s:  # the batch in one transaction, processors serialised across processes
            xact_serialize(s, "slack-event-processor")  # so outbox ids follow event order
            still = events.still_unprocessed(s, [c[0] for c in classified])
            # the threads' conversations first, by id, whatever the events' order (conversations.lock)
            conversations.lock_threads(
                s,
                {
                    (a.channel, a.thread_ts)
                    for i, _, a, _ in classified
                    if i in still
                    and isinstance(a, thread_messages.Relay | thread_messages.Command | thread_messages.Changed)
                },
            )
            now, done = ctx.clock(), []
            deferred: set[Thread] = set()  # threads whose events wait for the next batch
            failures: list[int] = []
            for row_id, event, action, who in classified:
                if row_id not in still:
                    continue  # another process got there first
                thread = (
                    (action.channel, action.thread_ts)
                    if isinstance(action, thread_messages.Relay | thread_messages.Command | thread_messages.Changed)
                    else None
                )
                if thread in deferred or _thread_not_known_yet(s, action):
                    # its header card is posted but not recorded yet: come back to it, and to the thread's
                    # later events too, even once the card's outcome lands mid-batch (they must not go first)
                    deferred.add(thread or ("", ""))
                    continue
                try:
                    if isolate:
                        with s.begin_nested():  # this event alone is rolled back if it raises
                            outcome = self._apply(s, row_id, event, action, who, now)
                    else:
                        outcome = self._apply(s, row_id, event, action, who, now)
                except (OperationalError, InterfaceError):
                    raise  # the database's trouble (lost connection, deadlock, lock timeout), not the event's:
                    # the whole batch is tried again; an IntegrityError or DataError is the event's
                except Exception as exc:
                    if not isolate:
                        raise
                    failures.append(row_id)
                    outcome = self._failed(s, row_id, action, exc, now)
                done.append((row_id, outcome))
                deliveries = deliveries or not isinstance(action, thread_messages.Ignore | thread_messages.Note)
            events.mark_all_processed(s, done, now)
        return done, deferred, failures, deliveries

    def _apply(
        self,
        s: Session,
        row_id: int,
        event: dict[str, object],
        action: thread_messages.Action,
        who: Who | None,
        now: float,
    ) -> str:
        ctx = self.ctx
        match action:
            case thread_messages.Command(channel, thread_ts, ts, _user, text):
                conv = conversations.by_thread(s, channel, thread_ts)
                assert who is not None
                if conv is None:
                    return "ignored: command outside a conversation"
                return ctx.desk.thread_command(s, who, conv, ts, text, ctx.bot_user_id, now)
            case thread_messages.Ignore() if (
                event.get("type") == "app_home_opened" and event.get("tab", "home") == "home"
            ):
                state.refresh_home(s, str(event.get("user")), ("opened", row_id), now)
                return "home"
            case (
                thread_messages.Relay() | thread_messages.Note() | thread_messages.Changed() | thread_messages.Ignore()
            ):
                return thread_messages.apply(s, action, ctx.limits(), now, is_agent=who is None or who.is_agent)
        return "ignored"

    def _failed(self, s: Session, row_id: int, action: thread_messages.Action, exc: Exception, now: float) -> str:
        """Record why the event failed and tell its author privately (nothing of the event is kept)."""
        error = f"{type(exc).__name__}: {str(exc)[:200]}"
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        # the type and where it was raised, not the message (it may quote what the user typed)
        log.error(
            "slack event #%s failed and is skipped: %s at %s:%s",
            row_id,
            type(exc).__name__,
            where.filename if where else "?",
            where.lineno if where else "?",
        )
        events.mark_failed(s, row_id, error)
        user, channel = getattr(action, "user", None), getattr(action, "channel", None)
        if user and channel:
            thread_messages.ephemeral(
                s,
                str(channel),
                str(user),
                f":warning: dmbridge could not handle that "
                f"({type(exc).__name__}); nothing was done. The error is recorded on Slack "
                f"event #{row_id} for the operator.",
                now,
                thread_ts=getattr(action, "thread_ts", None),
            )
        return FAILED


def _thread_not_known_yet(s: Session, action: thread_messages.Action) -> bool:
    """A reply in a thread we do not know, while some header card's post is unsettled: the thread may be
    that card's (posted, its ts not written yet, or cut short by a crash and awaiting verification)."""
    if not isinstance(action, thread_messages.Relay | thread_messages.Command | thread_messages.Changed):
        return False
    if conversations.by_thread(s, action.channel, action.thread_ts) is not None:
        return False
    return (
        s.exec(
            select(Outbox.id)
            .where(Outbox.kind == "card", col(Outbox.state).in_((outbox.PENDING, outbox.SENDING)))
            .limit(1)
        ).first()
        is not None
    )
