"""Buttons on the header card, message shortcuts, and the modals they open.

Every action ends in ``Desk.act`` (or ``Desk.send_text`` for an edited
template), run in one transaction before the ack. Modals are opened in the
request because Slack's trigger id lives 3 seconds.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from slack_bolt import Ack, App, Respond

from bridge import templates
from bridge.commands import (
    Assign,
    Claim,
    ConversationCommand,
    Deescalate,
    Escalate,
    Reopen,
    Resolve,
    SetLead,
    SetType,
    Snooze,
    Unassign,
)
from bridge.desk import NOT_AGENT, ephemeral
from bridge.errors import DeliveryError
from bridge.slack.listeners.deps import ListenerDeps
from bridge.slack.views import (
    ASSIGN_MODAL,
    ESCALATE_MODAL,
    STATUS_MODAL,
    TEMPLATE_MODAL,
    assign_modal,
    escalate_modal,
    state_value,
    status_modal,
    template_modal,
)
from bridge.store import conversations
from bridge.store import desk as store
from bridge.store.tables import Conversation

NOT_A_CONVERSATION = "That message is not part of a customer conversation."
MORE: dict[str, ConversationCommand] = {"unassign": Unassign(), "deescalate": Deescalate()}


log = logging.getLogger(__name__)


def _conversation(deps: ListenerDeps, channel: str, message: dict[str, Any]) -> Conversation | None:
    root = str(message.get("thread_ts") or message.get("ts") or "")
    with deps.db.session() as s:
        return conversations.by_thread(s, channel, root) if root else None


def _card_command(action: dict[str, Any]) -> ConversationCommand | str | None:
    """The command a card element means, or the name of the modal it opens."""
    match action.get("action_id"):
        case "conv_claim":
            return Claim()
        case "conv_assign":
            return Assign(str(action["selected_user"])) if action.get("selected_user") else None
        case "conv_resolve":
            return Resolve()
        case "conv_reopen":
            return Reopen()
        case "conv_lead":
            return SetLead()
        case "conv_template" | "conv_escalate" as opener:
            return str(opener)
        case "conv_type_confirm":
            return SetType(str(action.get("value", ""))[:100]) if action.get("value") else None
        case "conv_type_pick":
            value = str((action.get("selected_option") or {}).get("value", ""))[:100]
            return SetType(value) if value else None
        case "conv_more":
            value = str((action.get("selected_option") or {}).get("value", ""))
            return Snooze(value.removeprefix("snooze:")) if value.startswith("snooze:") else MORE.get(value)
    return None


def run(
    deps: ListenerDeps,
    user: str,
    conv: Conversation,
    cmd: ConversationCommand,
    thread_ts: str | None = None,
    respond: Respond | None = None,
) -> str | None:
    """Act, and tell the person privately when it did not work (through the interaction's ``respond``
    when there is one, else as an ephemeral in ``thread_ts``). Returns the refusal, if any."""
    who = deps.desk.who(user, conv.channel)
    now = deps.clock()
    with deps.db.session() as s:
        fresh = conversations.get(s, conv.id or 0)
        assert fresh is not None
        reply = deps.desk.act(s, who, fresh, cmd, now)
        if not reply.ok and thread_ts is not None and respond is None:
            ephemeral(s, conv.channel, user, reply.text, now, thread_ts)
    deps.wake()
    if not reply.ok and respond is not None:
        privately(respond, reply.text)
    return None if reply.ok else reply.text


def privately(respond: Respond, text: str) -> None:
    """Answer through the interaction's ``response_url``: it reaches the person who clicked even when they
    only preview the channel (an ephemeral message to a non-member fails with ``user_not_in_channel``)."""
    try:
        respond(text=text, response_type="ephemeral", replace_original=False)
    except Exception as exc:  # slack_sdk's webhook client: a lost private answer is not worth a retry
        log.warning("could not answer an interaction privately: %s", type(exc).__name__)


def tell(deps: ListenerDeps, user: str, conv: Conversation, text: str, respond: Respond | None = None) -> None:
    """A private answer to ``user`` (through ``respond`` when the interaction has one, else in the thread)."""
    if respond is not None:
        privately(respond, text)
        return
    with deps.db.session() as s:
        ephemeral(s, conv.channel, user, text, deps.clock(), conv.thread_ts)
    deps.wake()


def open_modal(
    deps: ListenerDeps,
    trigger_id: str,
    user: str,
    conv: Conversation,
    which: str,
    respond: Respond | None = None,
    template: str | None = None,
) -> None:
    """Open a form on ``conv`` for an agent of its channel; anyone else is refused privately, nothing opens."""
    assert conv.id is not None
    who = deps.desk.who(user, conv.channel)
    if not who.is_agent:
        tell(deps, user, conv, NOT_AGENT, respond)
        return
    if which in ("conv_template", "dmbridge_template"):
        with deps.db.session() as s:
            rows = store.all_templates(s)
        first = next((r for r in rows if r.name == template), rows[0] if rows else None)
        preview = templates.render(first.text, deps.desk.template_values(conv, who)) if first else ""
        view = template_modal(conv.id, [r.name for r in rows], first.name if first else None, preview)
    elif which in ("conv_escalate", "dmbridge_escalate"):
        view = escalate_modal(conv.id, sorted(deps.desk.file.teams))
    elif which == "dmbridge_assign":
        view = assign_modal(conv.id, conv.assignee or user)
    else:
        view = status_modal(conv.id, conv.status)
    try:
        deps.slack.open_view(trigger_id, view)
    except DeliveryError as exc:
        tell(deps, user, conv, f"Could not open the form: {exc.reason}", respond)


def register(app: App, deps: ListenerDeps) -> None:
    @app.action(re.compile(r"^conv_"))
    def card_action(ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        container = body.get("container") or {}
        channel = str(container.get("channel_id") or (body.get("channel") or {}).get("id") or "")
        user = str((body.get("user") or {}).get("id", ""))
        conv = _conversation(deps, channel, body.get("message") or {})
        meaning = _card_command(action)
        if conv is None or meaning is None:
            ack()
            return
        if isinstance(meaning, str):
            open_modal(deps, str(body.get("trigger_id", "")), user, conv, meaning, respond)
            ack()
            return
        run(deps, user, conv, meaning, thread_ts=conv.thread_ts, respond=respond)
        ack()

    def shortcut(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        channel = str((body.get("channel") or {}).get("id", ""))
        user = str((body.get("user") or {}).get("id", ""))
        conv = _conversation(deps, channel, body.get("message") or {})
        if conv is None:
            with deps.db.session() as s:
                ephemeral(s, channel, user, NOT_A_CONVERSATION, deps.clock())
            deps.wake()
            ack()
            return
        open_modal(deps, str(body.get("trigger_id", "")), user, conv, str(body.get("callback_id")), respond)
        ack()

    for callback_id in ("dmbridge_assign", "dmbridge_template", "dmbridge_escalate", "dmbridge_status"):
        app.shortcut(callback_id)(shortcut)

    @app.action(re.compile(r"^sugg_tpl_[0-9]$"))
    def suggested_reply(ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        """A suggested reply under a customer's message: the template modal with that template rendered."""
        container = body.get("container") or {}
        channel = str(container.get("channel_id") or (body.get("channel") or {}).get("id") or "")
        user = str((body.get("user") or {}).get("id", ""))
        conv = _conversation(deps, channel, body.get("message") or {})
        if conv is not None:
            name = str(action.get("value", ""))[:64]
            open_modal(deps, str(body.get("trigger_id", "")), user, conv, "conv_template", respond, name)
        ack()

    @app.action("tpl_pick")
    def template_picked(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        """A template chosen in the modal: show it rendered, editable."""
        ack()
        view = body.get("view") or {}
        meta = _metadata(view)
        name = str((action.get("selected_option") or {}).get("value", ""))
        user = str((body.get("user") or {}).get("id", ""))
        with deps.db.session() as s:
            conv = conversations.get(s, meta["conv"])
            rows = store.all_templates(s)
        chosen = next((r for r in rows if r.name == name), None)
        if conv is None or chosen is None:
            return
        who = deps.desk.who(user, conv.channel)
        if not who.is_agent:
            tell(deps, user, conv, NOT_AGENT)  # nothing rendered: the preview holds the customer's name
            return
        preview = templates.render(chosen.text, deps.desk.template_values(conv, who))
        assert conv.id is not None
        try:
            deps.slack.update_view(
                str(view.get("id")), template_modal(conv.id, [r.name for r in rows], name, preview), view.get("hash")
            )
        except DeliveryError:
            return  # the modal keeps its previous preview; the agent can pick again

    def submission(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        meta = _metadata(view)
        state = view.get("state")
        values = state.get("values") if isinstance(state, dict) else None
        values = values if isinstance(values, dict) else {}
        user = str((body.get("user") or {}).get("id", ""))
        with deps.db.session() as s:
            conv = conversations.get(s, meta["conv"])
        if conv is None:
            ack()
            return
        if not deps.desk.who(user, conv.channel).is_agent:  # checked before anything is read from the form
            if values:
                ack(response_action="errors", errors={str(next(iter(values))): NOT_AGENT[:150]})
            else:
                ack()
                tell(deps, user, conv, NOT_AGENT)
            return
        callback = view.get("callback_id")
        block, error = "action", None
        if callback == TEMPLATE_MODAL:
            block = next((b for b in values if b.startswith("preview")), "preview")
            text = state_value(values, "preview")
            if meta.get("template") is None or (text is None and not meta.get("whole")):
                ack()
                return
            who = deps.desk.who(user, conv.channel)
            with deps.db.session() as s:
                fresh = conversations.get(s, conv.id or 0)
                assert fresh is not None
                reply = deps.desk.send_text(s, who, fresh, str(meta["template"]), text, deps.clock())
            deps.wake()
            error = None if reply.ok else reply.text
        else:
            cmd, block = _submitted(callback, values)
            if cmd is None:
                ack()
                return
            error = run(deps, user, conv, cmd)
        if error:
            ack(response_action="errors", errors={block: error[:150]})
        else:
            ack()

    for callback_id in (ASSIGN_MODAL, TEMPLATE_MODAL, ESCALATE_MODAL, STATUS_MODAL):
        app.view(callback_id)(submission)


def _metadata(view: dict[str, Any]) -> dict[str, Any]:
    """The modal's private_metadata as we wrote it (``conv`` an int, 0 when missing or not ours)."""
    try:
        meta = json.loads(str(view.get("private_metadata") or "{}"))
    except (ValueError, RecursionError):
        meta = {}
    if not isinstance(meta, dict):
        meta = {}
    conv = meta.get("conv")
    meta["conv"] = conv if isinstance(conv, int) and not isinstance(conv, bool) and 0 < conv < 2**31 else 0
    return meta


def _submitted(callback: Any, values: dict[str, Any]) -> tuple[ConversationCommand | None, str]:
    """The command a submitted modal asks for, and the block to attach an error to."""
    if callback == ASSIGN_MODAL:
        user = state_value(values, "assignee")
        return (Assign(user) if user else None), "assignee"
    if callback == ESCALATE_MODAL:
        team = state_value(values, "team")
        priority = state_value(values, "priority") or "high"
        return (Escalate(team, priority, state_value(values, "reason") or "") if team else None), "team"
    if callback == STATUS_MODAL:
        action = state_value(values, "action")
        if action == "snooze":
            when = state_value(values, "when")
            return Snooze(when or ""), "when"
        chosen: dict[str, ConversationCommand] = {"resolve": Resolve(), "reopen": Reopen(), **MORE}
        return chosen.get(action or ""), "action"
    return None, "action"
