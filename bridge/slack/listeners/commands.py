"""``/dm …`` in the channel (Slack does not allow slash commands in threads).

Read-only commands answer from the database; conversation commands run
``Desk.act`` in one transaction before the ack. The answer is the ephemeral
ack text; nothing here calls X or Meta.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bridge import templates
from bridge.commands import (
    CHANNEL_USAGE,
    THREAD_USAGE,
    Help,
    ListConversations,
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
from bridge.desk import NOT_AGENT, Who
from bridge.sla_runner import report_text
from bridge.slack.listeners.deps import ListenerDeps
from bridge.slack.views import listing_text, policies_text, template_list_text, timeline_text
from bridge.store import conversations
from bridge.store import desk as store
from bridge.text import slack_escape

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
        ack(text=answer(deps, str(command.get("user_id", "")), str(command.get("channel_id", "")),
                        str(command.get("text", ""))))
        deps.wake()


def answer(deps: ListenerDeps, user: str, channel: str, text: str) -> str:
    try:
        cmd = parse_slash(text)
    except ParseError as exc:
        return str(exc)
    if isinstance(cmd, Help):
        return DM_HELP
    who = deps.desk.who(user, channel)
    if not who.is_agent:
        return NOT_AGENT
    now = deps.clock()
    if isinstance(cmd, Stats):
        return report_text(deps.db, deps.desk.file, cmd.days, now)
    with deps.db.session() as s:
        match cmd:
            case ListConversations(scope):
                return listing_text(scope, store.listing(s, scope, user), deps.desk.link, now)
            case Show(number):
                conv = conversations.get(s, number)
                if conv is None:
                    return f"There is no conversation #{number}."
                inbound, actions = store.history(s, number)
                return timeline_text(conv, inbound, actions, deps.desk.file.tz, deps.desk.link)
            case SlaPolicies():
                return policies_text(deps.desk.file.policies())
            case TemplateList():
                return template_list_text([(t.name, t.text) for t in store.all_templates(s)])
            case TemplateShow(name):
                row = store.get_template(s, name)
                return f"*{name}*:\n```{slack_escape(row.text)}```" if row else f"There is no template `{name}`."
            case TemplateDelete(name):
                return f"Deleted template `{name}`." if store.delete_template(s, name) else \
                    f"There is no template `{name}`."
            case TemplateAdd(name, body):
                return _save_template(s, who, name, body, now)
            case OnConversation(number, conv_cmd):
                conv = conversations.get(s, number)
                if conv is None or conv.thread_ts is None:
                    return f"There is no conversation #{number}."
                return deps.desk.act(s, who, conv, conv_cmd, now).text
    return DM_HELP


def _save_template(s: Any, who: Who, name: str, body: str, now: float) -> str:
    try:
        templates.validate(body)
    except ValueError as exc:
        return f"Template `{name}` was not saved: {exc}."
    created = store.save_template(s, name, body, who.id, now)
    return f"{'Saved' if created else 'Updated'} template `{name}`. Use it in a thread: `@dmbridge template {name}`."
