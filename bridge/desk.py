"""The desk: every action on a conversation, whichever way it was asked for.

``Desk.act`` is the one place assignment, templates, escalation and status
change. It runs inside the caller's transaction, writes an audit row, and
enqueues what Slack must show (card redraw, a line in the thread, the team's
notice, App Home refreshes) as outbox rows. Slack look-ups (who is an agent,
names) happen before, in ``Desk.who``, so no transaction waits on Slack.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlmodel import Session

from bridge import automatic, lead_actions, notices, state, templates, types_desk
from bridge.authz import NOT_AGENT, Decision, Facts, Scope, agent_channels, decide
from bridge.commands import (
    THREAD_USAGE,
    Assign,
    Claim,
    ConversationCommand,
    Deescalate,
    Escalate,
    Help,
    ParseError,
    Reopen,
    Resolve,
    SetLead,
    SetType,
    Snooze,
    Unassign,
    UseTemplate,
    parse_thread,
)
from bridge.deliveries import DM, ChannelNotice
from bridge.domain import Limits, Platform, limits_of
from bridge.store import conversations, outbox, playbook_types
from bridge.store import desk as store
from bridge.store.tables import Conversation
from bridge.text import utf8_len
from bridge.thread_messages import ephemeral
from bridge.toml_config import FileConfig
from bridge.when import parse_when


@dataclass(frozen=True)
class Who:
    """The person asking, as Slack knows them."""

    id: str
    name: str
    is_agent: bool


@dataclass(frozen=True)
class Reply:
    """What to tell the person who asked (an ephemeral message, or a modal error)."""

    text: str
    ok: bool = True


def mention(user: str) -> str:
    """``<@U…>`` for a person; dmbridge's own actions (SLA breaches) are signed with its name."""
    return f"<@{user}>" if user.startswith(("U", "W")) else user


def pick_assignee(
    roster: list[str], away: set[str], open_counts: dict[str, int], capacity: int, last: str | None
) -> str | None:
    """Round robin: the first member after ``last`` (in roster order) who is present and under capacity.

    Pure and deterministic: the same roster, presence, counts and last pick give the same answer.
    """
    members = sorted(dict.fromkeys(roster))
    if not members:
        return None
    start = members.index(last) + 1 if last in members else 0
    for i in range(len(members)):
        user = members[(start + i) % len(members)]
        if user not in away and open_counts.get(user, 0) < capacity:
            return user
    return None


class RosterFacts(Protocol):
    """What the desk needs to know about people, already fetched from Slack (``bridge.slack.roster.Roster``:
    cached look-ups that fail closed); the desk never waits on Slack inside a transaction."""

    def facts(self, channels: tuple[str, ...], *, admins: bool = False) -> Facts: ...

    def group(self, group: str) -> list[str]: ...

    def name(self, user: str) -> str: ...

    def away(self, user: str) -> bool: ...


class Desk:
    def __init__(
        self,
        *,
        file: FileConfig,
        roster: RosterFacts,
        limits: Callable[[], dict[str, Limits]],
        link: Callable[[str, str], str],
        desk_channels: tuple[str, ...] = (),
    ) -> None:
        self.file, self.roster, self.limits, self.link = file, roster, limits, link
        self.desk_channels = tuple(dict.fromkeys(c for c in desk_channels if c))
        """DMBRIDGE_CHANNEL and every routed channel: where desk-wide requests are judged."""

    # ------------------------------------------------------------------ outside the transaction

    def authorize(self, user: str, scope: Scope, conversation_channel: str | None = None) -> Decision:
        """``bridge.authz.decide`` with the facts from Slack: every entry point asks this (or ``who``)."""
        if scope is Scope.CONVERSATION:
            channels: tuple[str, ...] = (conversation_channel,) if conversation_channel else ()
        else:
            channels = self.desk_channels
        return decide(user, scope, channels, self.roster.facts(channels, admins=scope is Scope.ADMIN))

    def visible_channels(self, user: str, channels: tuple[str, ...]) -> frozenset[str]:
        """Those of ``channels`` whose conversations ``user`` may see listed: where they are an agent."""
        unique = tuple(dict.fromkeys(channels))
        return agent_channels(user, unique, self.roster.facts(unique))

    def who(self, user: str, conversation_channel: str) -> Who:
        """The person acting on a conversation of ``conversation_channel`` (its row's channel, never the channel
        a request came from), and whether they may."""
        allowed = self.authorize(user, Scope.CONVERSATION, conversation_channel).allowed
        return Who(user, self.roster.name(user), allowed)

    # ------------------------------------------------------------------ actions

    def act(self, s: Session, who: Who, conv: Conversation, cmd: ConversationCommand, now: float) -> Reply:
        """Run one conversation command for ``who``; refuse non-agents and change nothing."""
        assert conv.id is not None
        if not who.is_agent:
            return Reply(NOT_AGENT, ok=False)
        match cmd:
            case Claim():
                return self._assign(s, who, conv, who.id, now)
            case Assign(user):
                if not self.authorize(user, Scope.CONVERSATION, conv.channel).allowed:
                    return Reply(f"<@{user}> is not an agent of this desk; nothing was changed.", ok=False)
                return self._assign(s, who, conv, user, now)
            case Unassign():
                if conv.assignee is None:
                    return Reply(f"#{conv.id} is not assigned.", ok=False)
                previous = conv.assignee
                conv.assignee, conv.assigned_at = None, None
                self._changed(
                    s, conv, who.id, "unassign", previous, f"Unassigned by {mention(who.id)}.", now, homes=[previous]
                )
                return Reply(f"#{conv.id} is unassigned.")
            case UseTemplate(name):
                return self._template(s, who, conv, name, now)
            case Escalate(team, priority, reason):
                return self._escalate(s, who, conv, team, priority, reason, now)
            case Deescalate():
                if conv.team is None:
                    return Reply(f"#{conv.id} is not escalated.", ok=False)
                team, conv.team, conv.escalation_reason, conv.priority = conv.team, None, None, "normal"
                self._changed(
                    s, conv, who.id, "deescalate", team, f"De-escalated from *{team}* by {mention(who.id)}.", now
                )
                return Reply(f"#{conv.id} is no longer escalated.")
            case Resolve():
                if conv.status == "resolved":
                    return Reply(f"#{conv.id} is already resolved.", ok=False)
                conv.status, conv.resolved_at, conv.snoozed_until = "resolved", now, None
                audit_id = self._changed(s, conv, who.id, "resolve", "", f"Resolved by {mention(who.id)}.", now)
                automatic.on_resolved(s, self.file, conv, audit_id, now)  # the CSAT survey, where configured
                return Reply(f"#{conv.id} is resolved.")
            case Reopen():
                if conv.status == "open":
                    return Reply(f"#{conv.id} is already open.", ok=False)
                conv.status, conv.resolved_at, conv.snoozed_until = "open", None, None
                self._changed(s, conv, who.id, "reopen", "", f"Reopened by {mention(who.id)}.", now)
                return Reply(f"#{conv.id} is open again.")
            case Snooze(when):
                try:
                    until = parse_when(when, datetime.fromtimestamp(now, self.file.tz))
                except ValueError as exc:
                    return Reply(f"Cannot snooze: {exc}.", ok=False)
                conv.status, conv.snoozed_until = "snoozed", until.timestamp()
                shown = f"{until:%a %d %b %H:%M} ({self.file.timezone})"
                self._changed(s, conv, who.id, "snooze", shown, f"Snoozed until {shown} by {mention(who.id)}.", now)
                return Reply(f"#{conv.id} is snoozed until {shown}.")
            case SetType(name):
                ok, text = types_desk.set_type(s, self.file.types, conv, name, who.id, now)
                return Reply(text, ok=ok)
            case SetLead():
                text, ok = lead_actions.apply(s, who.id, conv, cmd, now, crm=self.file.crm is not None)
                return Reply(text, ok)
        return Reply("That does not apply to a conversation.", ok=False)

    def _assign(self, s: Session, who: Who, conv: Conversation, user: str, now: float) -> Reply:
        if conv.assignee == user:
            return Reply(f"#{conv.id} is already assigned to <@{user}>.", ok=False)
        previous = conv.assignee
        conv.assignee, conv.assigned_at = user, now
        self._changed(
            s,
            conv,
            who.id,
            "assign",
            user,
            f"Assigned to <@{user}> by {mention(who.id)}.",
            now,
            homes=[user, *([previous] if previous else [])],
        )
        return Reply(f"#{conv.id} is assigned to <@{user}>.")

    def _escalate(
        self, s: Session, who: Who, conv: Conversation, team_name: str, priority: str, reason: str, now: float
    ) -> Reply:
        assert conv.id is not None
        team = self.file.teams.get(team_name)
        if team is None:
            return Reply(notices.unknown_team(team_name, sorted(self.file.teams)), ok=False)
        conv.team, conv.priority, conv.escalation_reason = team_name, priority, reason or None
        line = notices.escalation_line(team.mention(), team_name, priority, mention(who.id), reason)
        audit_id = self._changed(s, conv, who.id, "escalate", f"{team_name} {priority} {reason}".strip(), line, now)
        if team.channel and conv.thread_ts:
            notice = notices.team_notice(
                team.mention(),
                self.link(conv.channel, conv.thread_ts),
                conv.id,
                Platform(conv.platform).label,
                conv.customer_name,
                team_name,
                priority,
                mention(who.id),
                reason,
            )
            outbox.enqueue(s, ChannelNotice.escalation(conv.id, audit_id, team.channel, notice), now)
        return Reply(f"#{conv.id} is escalated to {team_name}.")

    def _template(
        self, s: Session, who: Who, conv: Conversation, name: str, now: float, text: str | None = None
    ) -> Reply:
        row = store.get_template(s, name) if text is None else None
        if text is None:
            if row is None:
                return Reply(f"There is no template `{name}` (see `/dm template list`).", ok=False)
            text = templates.render(row.text, self.template_values(conv, who))
        problem = self.too_long(conv, text)
        if problem:
            return Reply(problem, ok=False)
        assert conv.id is not None
        audit_id = store.audit(s, conversation_id=conv.id, actor=who.id, action="template", detail=text, now=now)
        # a long template shows as several posts; the receipts go on the first
        posts = state.template_posts(conv.id, audit_id, notices.template_post(who.id, name, text))
        for post in posts:
            outbox.enqueue(s, post, now)
        outbox.enqueue(s, DM.template(conv.id, posts[0], text, who.id, conv.channel), now)
        state.reply_queued(s, conv, now)
        playbook_types.remember_choice(s, conv.id, name, now)  # what suggested replies learn from
        return Reply(f"Template *{name}* is on its way to the customer.")

    def thread_command(
        self, s: Session, who: Who, conv: Conversation, ts: str, text: str, bot_user_id: str, now: float
    ) -> str:
        """``@dmbridge …`` typed in the thread; answers privately when it did not work. Returns the outcome."""
        try:
            cmd = parse_thread(text, bot_user_id)
        except ParseError as exc:
            ephemeral(s, conv.channel, who.id, str(exc), now, conv.thread_ts)
            return "command: not understood"
        name = type(cmd).__name__.lower()
        if isinstance(cmd, Help):
            ephemeral(s, conv.channel, who.id, THREAD_USAGE, now, conv.thread_ts)
            return "command: help"
        reply = self.act(s, who, conv, cmd, now)
        if not reply.ok:
            ephemeral(s, conv.channel, who.id, reply.text, now, conv.thread_ts)
            return f"command: {name} refused"
        return f"command: {name}"

    def send_text(self, s: Session, who: Who, conv: Conversation, name: str, text: str | None, now: float) -> Reply:
        """Send an (edited) template text from the modal; None: the template as stored (too long to edit)."""
        if not who.is_agent:
            return Reply(NOT_AGENT, ok=False)
        if text is None:
            return self._template(s, who, conv, name, now)
        if not text.strip():
            return Reply("There is nothing to send.", ok=False)
        return self._template(s, who, conv, name, now, text=text)

    def template_values(self, conv: Conversation, who: Who) -> dict[str, str]:
        assert conv.id is not None
        return templates.TemplateContext(
            customer_name=conv.customer_name,
            customer_handle=conv.customer_handle,
            agent_name=who.name,
            platform=Platform(conv.platform).label,
            conversation=conv.id,
            brand=self.file.brand,
        ).values()

    def too_long(self, conv: Conversation, text: str) -> str | None:
        limits = limits_of(self.limits(), conv.platform, conv.via)
        if limits is None:
            return None
        size = sum(utf8_len(c) for c in text) if limits.count_bytes else len(text)
        if size > limits.max_chars:
            unit = "bytes" if limits.count_bytes else "characters"
            return (
                f"That text is {size:,} {unit}; {Platform(conv.platform).label} takes at most "
                f"{limits.max_chars:,} in one message. Shorten it (nothing was sent)."
            )
        return None

    @staticmethod
    def _changed(
        s: Session,
        conv: Conversation,
        actor: str,
        action: str,
        detail: str,
        line: str,
        now: float,
        homes: list[str] | None = None,
    ) -> int:
        """Record the action, redraw the card, say it in the thread, refresh App Homes (``bridge.state``)."""
        return state.changed(s, conv, actor=actor, action=action, detail=detail, line=line, now=now, homes=homes or [])

    # ------------------------------------------------------------------ background duties

    def auto_assign(self, s: Session, conv: Conversation, roster: list[str], away: set[str], now: float) -> str | None:
        """Round-robin assignment of a new conversation (roster and presence fetched by the caller)."""
        assert conv.id is not None
        if conv.assignee is not None or conv.status == "resolved":
            return conv.assignee
        counts = store.open_counts(s, roster)
        user = pick_assignee(roster, away, counts, self.file.assignment.capacity, store.last_auto_assignee(s))
        if user is None:
            state.say(
                s,
                conv,
                ("noassign", conv.id),
                "Nobody is free to take this conversation (everyone is away or at capacity); it stays unassigned.",
                now,
            )
            return None
        conv.assignee, conv.assigned_at = user, now
        self._changed(s, conv, "dmbridge", "autoassign", user, f"Assigned to <@{user}> (round robin).", now)
        return user

    def wake_snoozed(self, s: Session, now: float) -> int:
        """Reopen conversations whose snooze is over, each once, and remind their assignee."""
        due = store.due_snoozes(s, now)
        conversations.lock(s, [c.id for c in due])  # by id (bridge.store.conversations.lock)
        return sum(state.snooze_over(s, conv, now) for conv in due)
