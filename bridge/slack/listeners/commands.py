"""``/dm …`` in the channel (Slack does not allow slash commands in threads).

Read-only commands answer from the database; conversation commands run
``Desk.act`` in one transaction before the ack. The answer is the ephemeral
ack text; nothing here calls X or Meta.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bridge import templates
from bridge.authz import NOT_CONVERSATION_AGENT, Scope, scope_of
from bridge.commands import (
    CHANNEL_USAGE,
    THREAD_USAGE,
    Export,
    ListConversations,
    ListLeads,
    OnConversation,
    ParseError,
    Show,
    SlaPolicies,
    Stats,
    TemplateAdd,
    TemplateDelete,
    TemplateList,
    TemplateShow,
    parse_slash,
)
from bridge.sla_runner import report_text
from bridge.slack.answers import listing_text, policies_text, template_list_text, template_show_text, timeline_text
from bridge.slack.listeners.deps import ListenerDeps
from bridge.slack.listeners.records import export_asked, leads_text
from bridge.store import conversations
from bridge.store import desk as store

DM_HELP = (
    "*dmbridge* mirrors customer DMs into this channel, one thread per conversation.\n"
    "• Reply in a conversation's thread to answer the customer.\n"
    "• Start a thread message with `//` or `note:` to keep it internal.\n"
    "• Buttons on each conversation's card, and the message shortcuts (⋮ on any message of the thread), "
    "assign, send templates, escalate and resolve.\n"
    f"• {THREAD_USAGE}\n• {CHANNEL_USAGE}"
)


def register(app: App, deps: ListenerDeps) -> None:
    @app.command("/dm")
    def dm_command(ack: Ack, command: dict[str, Any]) -> None:
        ack(
            text=answer(
                deps, str(command.get("user_id", "")), str(command.get("channel_id", "")), str(command.get("text", ""))
            )
        )
        deps.wake()


def answer(deps: ListenerDeps, user: str, channel: str, text: str) -> str:
    """The answer to ``/dm text``; ``channel`` (where it was typed) never decides who may do what."""
    try:
        cmd = parse_slash(text)
    except ParseError as exc:
        return str(exc)
    scope = scope_of(cmd)
    if scope is None:
        return DM_HELP
    if isinstance(cmd, Show | OnConversation | Export):
        return _on_conversation(deps, user, cmd)
    decision = deps.desk.authorize(user, scope)
    if not decision.allowed:
        return decision.reason
    now = deps.clock()
    if isinstance(cmd, Stats):
        return report_text(deps.db, deps.desk.file, cmd.days, now)
    if isinstance(cmd, ListLeads):
        return leads_text(deps, user)
    if isinstance(cmd, ListConversations):
        with deps.db.read() as s:
            listed = store.listing(s, cmd.scope, user)
        seen = deps.desk.visible_channels(user, tuple(c.channel for c in listed))
        return listing_text(cmd.scope, [c for c in listed if c.channel in seen], deps.desk.link, now)
    with deps.db.session() as s:
        match cmd:
            case SlaPolicies():
                return policies_text(deps.desk.file.policies())
            case TemplateList():
                return template_list_text([(t.name, t.text) for t in store.all_templates(s)])
            case TemplateShow(name):
                row = store.get_template(s, name)
                return template_show_text(name, row.text) if row else f"There is no template `{name}`."
            case TemplateDelete(name):
                return (
                    f"Deleted template `{name}`."
                    if store.delete_template(s, name)
                    else f"There is no template `{name}`."
                )
            case TemplateAdd(name, body):
                return _save_template(s, user, name, body, now)
    return DM_HELP


def _on_conversation(deps: ListenerDeps, user: str, cmd: Show | OnConversation | Export) -> str:
    """Judged in the conversation's own channel. A stranger to the whole desk gets the same answer whether
    the conversation exists or not (no way to learn which numbers exist)."""
    with deps.db.read() as s:
        conv = conversations.get(s, cmd.number)
    who = deps.desk.who(user, conv.channel) if conv is not None else None
    if who is None or not who.is_agent:
        desk_wide = deps.desk.authorize(user, Scope.DESK)
        if not desk_wide.allowed:
            return desk_wide.reason
        if who is not None:
            return NOT_CONVERSATION_AGENT
    if conv is None or (isinstance(cmd, OnConversation | Export) and conv.thread_ts is None):
        return f"There is no conversation #{cmd.number}."
    assert who is not None
    now = deps.clock()
    with deps.db.session() as s:
        fresh = conversations.get(s, cmd.number)
        assert fresh is not None
        if isinstance(cmd, Show):
            inbound, actions = store.history(s, cmd.number)
            return timeline_text(fresh, inbound, actions, deps.desk.file.tz, deps.desk.link)
        if isinstance(cmd, Export):
            return export_asked(s, user, fresh, now)
        return deps.desk.act(s, who, fresh, cmd.command, now).text


def _save_template(s: Any, user: str, name: str, body: str, now: float) -> str:
    try:
        templates.validate(body)
    except ValueError as exc:
        return f"Template `{name}` was not saved: {exc}."
    created = store.save_template(s, name, body, user, now)
    return f"{'Saved' if created else 'Updated'} template `{name}`. Use it in a thread: `@dmbridge template {name}`."
