"""SLA duties: evaluate conversations whose time has come, warn before a breach, act on it — each once.

Nothing is held in memory: a conversation's next evaluation time is
``conversation.sla_next_at`` (indexed), set whenever its timeline changes
and after each evaluation. The sweep reads the due ones with one range scan.
Every warning and breach is an outbox row whose unique key names the
conversation, the clock and the span it measures, so several processes
sweeping the same database send each reminder once, and breach actions run
only in the transaction that inserted that row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlmodel import Session

from bridge import sla, state
from bridge.commands import Escalate
from bridge.deliveries import Cause, Notice
from bridge.desk import Desk, Who
from bridge.reports import ConversationFacts, build_report, render
from bridge.sla import Event, Mark, Policy, State
from bridge.slack.blocks import slack_date
from bridge.store import conversations, outbox
from bridge.store import desk as store
from bridge.store.db import Database
from bridge.store.tables import Conversation
from bridge.toml_config import FileConfig

log = logging.getLogger(__name__)

SYSTEM = Who("dmbridge", "dmbridge", is_agent=True)
_ACTIONS = {"snooze": Mark.SNOOZE, "resolve": Mark.RESOLVE, "reopen": Mark.REOPEN}


def policy_for(policies: list[Policy], conv: Conversation) -> Policy | None:
    return next((p for p in policies if p.applies(conv.platform, conv.account, conv.priority, conv.inquiry_type)), None)


def timelines(s: Session, conv_ids: list[int]) -> dict[int, list[Event]]:
    return {cid: _events(*rows) for cid, rows in store.timeline_rows(s, conv_ids).items()}


def _events(inbound: list[tuple[float, bool]], sent: list[float], changes: list[tuple[float, str]]) -> list[Event]:
    events = [Event(_dt(t), Mark.AGENT if brand else Mark.CUSTOMER) for t, brand in inbound]
    events += [Event(_dt(t), Mark.AGENT) for t in sent]
    events += [Event(_dt(t), _ACTIONS[a]) for t, a in changes]
    # at one instant a customer message comes before the reopen it caused
    order = {Mark.CUSTOMER: 0, Mark.AGENT: 1}
    return sorted(events, key=lambda e: (e.at, order.get(e.mark, 2)))


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class SlaRunner:
    def __init__(self, db: Database, desk: Desk, policies: list[Policy], clock: Callable[[], float]) -> None:
        self.db, self.desk, self.policies, self.clock = db, desk, policies, clock

    def sweep(self) -> int:
        """Evaluate every conversation that is due; returns how many were evaluated."""
        if not self.policies:
            return 0
        now = self.clock()
        done = 0
        while True:
            with self.db.read() as s:  # a read: on SQLite it does not take the one write lock
                due = store.sla_due(s, now)
            for start in range(0, len(due), 50):  # a few dozen per transaction: one commit, not one each
                batch = due[start : start + 50]
                with self.db.session() as s:
                    conversations.lock(s, batch)  # by id, not in due order (bridge.store.conversations.lock)
                    found = timelines(s, batch)
                    for conv_id in batch:
                        self.evaluate(s, conv_id, now, found[conv_id])
                done += len(batch)
            if len(due) < 500:
                return done

    def next_at(self) -> float | None:
        if not self.policies:
            return None  # nothing is ever due: sweep evaluates nothing
        with self.db.read() as s:
            return store.next_sla_at(s)

    def evaluate(self, s: Session, conv_id: int, now: float, events: list[Event]) -> None:
        conv = s.get(Conversation, conv_id)
        if conv is None or conv.sla_next_at is None or conv.sla_next_at > now:
            return  # another process got here first
        policy = policy_for(self.policies, conv)
        if policy is None:
            self._store(s, conv, None, sla.Summary(State.NONE), None, now)
            return
        moment = _dt(now)
        upcoming: list[float] = []
        for clock in sla.clocks(policy, events, moment):
            if not clock.running or clock.due is None:
                continue
            span: Cause = ("sla", conv_id, clock.kind.value, f"{clock.started.timestamp():.3f}")
            if clock.due <= moment:
                [breach] = Notice.parts(conv_id, (*span, "breach"), [self._breach_text(conv, policy, clock)])
                if outbox.enqueue(s, breach, now):
                    self._on_breach(s, conv, policy, clock, now)
                continue
            upcoming.append(clock.due.timestamp())
            if clock.warn_at is not None:
                if clock.warn_at <= moment:
                    state.say(s, conv, (*span, "warn"), self._warn_text(conv, policy, clock), now)
                else:
                    upcoming.append(clock.warn_at.timestamp())
        summary = sla.summarise(policy, events, moment)
        self._store(s, conv, policy.name, summary, min(upcoming) if upcoming else None, now)

    def _store(
        self,
        s: Session,
        conv: Conversation,
        policy: str | None,
        summary: sla.Summary,
        next_at: float | None,
        now: float,
    ) -> None:
        state.sla_evaluated(
            s,
            conv,
            policy=policy,
            state=None if summary.state is State.NONE else summary.state.value,
            kind=summary.kind.value if summary.kind else None,
            due=summary.due.timestamp() if summary.due else None,
            next_at=next_at,
            now=now,
        )

    def _who(self, conv: Conversation) -> str:
        if conv.assignee:
            return f"<@{conv.assignee}>"
        team = self.desk.file.teams.get(conv.team or "")
        return team.mention() if team else "<!here>"

    def _warn_text(self, conv: Conversation, policy: Policy, clock: sla.Clock) -> str:
        assert clock.due is not None
        return (
            f":hourglass: {self._who(conv)} {clock.kind.value.replace('_', ' ')} is due "
            f"{_slack_time(clock.due)} (SLA *{policy.name}*)."
        )

    def _breach_text(self, conv: Conversation, policy: Policy, clock: sla.Clock) -> str:
        assert clock.due is not None
        return (
            f":rotating_light: {self._who(conv)} the {clock.kind.value.replace('_', ' ')} SLA "
            f"*{policy.name}* was breached (due {_slack_time(clock.due)})."
        )

    def _on_breach(self, s: Session, conv: Conversation, policy: Policy, clock: sla.Clock, now: float) -> None:
        """The policy's breach actions, run once (in the transaction that recorded the breach)."""
        assert conv.id is not None
        what = clock.kind.value.replace("_", " ")
        for action in policy.on_breach:
            verb, _, team = action.partition(":")
            if verb == "escalate" and conv.team != team:
                self.desk.act(s, SYSTEM, conv, Escalate(team, "urgent", f"SLA {policy.name}: {what} breached"), now)
            elif verb == "reassign":
                state.unassigned_after_breach(s, conv, policy.name, what, now)


def _slack_time(when: datetime) -> str:
    return slack_date(when.timestamp(), f"{when:%Y-%m-%d %H:%M} UTC")


def report_text(db: Database, file: FileConfig, days: int, now: float) -> str:
    """``/dm stats`` and ``dmbridge stats``: the last ``days`` days."""
    policies = file.policies()
    since, until = now - days * 86_400, now
    with db.session() as s:
        convs = store.active_between(s, since, until)
        found = timelines(s, [c.id for c in convs if c.id is not None])
        facts = [
            ConversationFacts(
                number=c.id or 0, assignee=c.assignee, policy=policy_for(policies, c), timeline=found.get(c.id or 0, [])
            )
            for c in convs
        ]
    report = build_report(facts, _dt(since), _dt(until), file.tz)
    from bridge.stats import playbook_text  # bridge.stats reads this module's timelines

    return render(report, f"Last {days} days") + "\n" + playbook_text(db, days, now)
