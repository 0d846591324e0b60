"""Pure builders for modals, the App Home, and the desk's text answers (lists, timelines)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bridge.commands import PRIORITIES
from bridge.domain import Platform
from bridge.sla import Policy
from bridge.store.tables import Audit, Conversation, InboundEvent
from bridge.text import slack_escape

View = dict[str, Any]
Link = Callable[[str, str], str]

ASSIGN_MODAL, TEMPLATE_MODAL, ESCALATE_MODAL, STATUS_MODAL = (
    "dmbridge_assign_modal", "dmbridge_template_modal", "dmbridge_escalate_modal", "dmbridge_status_modal")


def _text(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:75]}


def _option(label: str, value: str) -> dict[str, Any]:
    return {"text": _text(label), "value": value}


def _modal(callback_id: str, title: str, conv_id: int, blocks: list[dict[str, Any]], submit: str,
           extra: dict[str, Any] | None = None) -> View:
    return {"type": "modal", "callback_id": callback_id, "title": _text(title[:24]), "submit": _text(submit),
            "close": _text("Cancel"), "private_metadata": json.dumps({"conv": conv_id, **(extra or {})}),
            "blocks": blocks}


def assign_modal(conv_id: int, initial: str | None) -> View:
    select: dict[str, Any] = {"type": "users_select", "action_id": "user", "placeholder": _text("Choose an agent")}
    if initial:
        select["initial_user"] = initial
    return _modal(ASSIGN_MODAL, f"Assign #{conv_id}", conv_id,
                  [{"type": "input", "block_id": "assignee", "label": _text("Assign to"), "element": select}],
                  "Assign")


def template_modal(conv_id: int, names: list[str], selected: str | None, preview: str) -> View:
    if not names:
        return _modal(TEMPLATE_MODAL, f"Template for #{conv_id}", conv_id, [{
            "type": "section", "text": {"type": "mrkdwn", "text":
                "There are no templates yet. Add one in the channel: `/dm template add NAME text…`"}}], "Close")
    options = [_option(n, n) for n in names[:100]]
    pick: dict[str, Any] = {"type": "static_select", "action_id": "tpl_pick", "options": options,
                            "placeholder": _text("Choose a template")}
    if selected:
        pick["initial_option"] = _option(selected, selected)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "block_id": "tpl_pick", "text": {"type": "mrkdwn", "text": "*Template*"},
         "accessory": pick},
        # a new block_id per template makes Slack show the new initial value after views.update
        {"type": "input", "block_id": f"preview:{selected or ''}", "label": _text("Message to the customer"),
         "element": {"type": "plain_text_input", "action_id": "text", "multiline": True,
                     "initial_value": preview}},
    ]
    return _modal(TEMPLATE_MODAL, f"Template for #{conv_id}", conv_id, blocks, "Send", {"template": selected})


def escalate_modal(conv_id: int, teams: list[str]) -> View:
    if not teams:
        return _modal(ESCALATE_MODAL, f"Escalate #{conv_id}", conv_id, [{
            "type": "section", "text": {"type": "mrkdwn", "text":
                "No teams are configured: add `[teams]` to dmbridge.toml."}}], "Close")
    blocks: list[dict[str, Any]] = [
        {"type": "input", "block_id": "team", "label": _text("Team"), "element": {
            "type": "static_select", "action_id": "value", "options": [_option(t, t) for t in teams],
            "initial_option": _option(teams[0], teams[0])}},
        {"type": "input", "block_id": "priority", "label": _text("Priority"), "element": {
            "type": "static_select", "action_id": "value", "options": [_option(p, p) for p in PRIORITIES],
            "initial_option": _option("high", "high")}},
        {"type": "input", "block_id": "reason", "label": _text("Reason"), "optional": True, "element": {
            "type": "plain_text_input", "action_id": "value", "multiline": True}},
    ]
    return _modal(ESCALATE_MODAL, f"Escalate #{conv_id}", conv_id, blocks, "Escalate")


def status_modal(conv_id: int, status: str) -> View:
    choices = [("Resolve", "resolve"), ("Reopen", "reopen"), ("Snooze", "snooze"), ("Unassign", "unassign"),
               ("De-escalate", "deescalate")]
    initial = "reopen" if status != "open" else "resolve"
    blocks: list[dict[str, Any]] = [
        {"type": "input", "block_id": "action", "label": _text(f"#{conv_id} is {status}. Do:"), "element": {
            "type": "radio_buttons", "action_id": "value", "options": [_option(a, v) for a, v in choices],
            "initial_option": _option(dict((v, a) for a, v in choices)[initial], initial)}},
        {"type": "input", "block_id": "when", "optional": True, "label": _text("Snooze until"), "element": {
            "type": "plain_text_input", "action_id": "value",
            "placeholder": _text("2h, tomorrow 9:00, mon 10:00")}},
    ]
    return _modal(STATUS_MODAL, f"Conversation #{conv_id}", conv_id, blocks, "Apply")


def state_value(values: dict[str, Any], block_prefix: str) -> str | None:
    """The value of the first input whose block_id starts with ``block_prefix`` in ``view.state.values``."""
    for block_id, actions in values.items():
        if not block_id.startswith(block_prefix):
            continue
        for element in actions.values():
            for key in ("value", "selected_user"):
                if element.get(key):
                    return str(element[key])
            option = element.get("selected_option")
            if option:
                return str(option.get("value"))
    return None


def age(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m"
    if minutes < 48 * 60:
        return f"{minutes // 60}h"
    return f"{minutes // 1440}d"


def conversation_line(conv: Conversation, link: Link, now: float) -> str:
    assert conv.thread_ts is not None
    who = f"<@{conv.assignee}>" if conv.assignee else "_unassigned_"
    waiting = "waiting on us" if (conv.last_inbound_at or 0) >= (conv.last_outbound_at or 0) else \
        "waiting on the customer"
    flags = f" · :rotating_light: {slack_escape(conv.team)} ({conv.priority})" if conv.team else ""
    snoozed = " · :zzz: snoozed" if conv.status == "snoozed" else ""
    return (f"<{link(conv.channel, conv.thread_ts)}|#{conv.id}> · {Platform(conv.platform).label} · "
            f"{slack_escape(conv.customer_name)} · {who} · {age(now - conv.created_at)} · {waiting}"
            f"{flags}{snoozed}")


def listing_text(scope: str, convs: list[Conversation], link: Link, now: float) -> str:
    title = {"mine": "Your open conversations", "unassigned": "Unassigned conversations",
             "escalated": "Escalated conversations", "all": "Open conversations"}[scope]
    if not convs:
        return f"*{title}*: none."
    return f"*{title}* ({len(convs)}):\n" + "\n".join(conversation_line(c, link, now) for c in convs)


def timeline_text(conv: Conversation, inbound: list[InboundEvent], actions: list[Audit], tz: ZoneInfo,
                  link: Link, limit: int = 40) -> str:
    rows: list[tuple[float, str]] = []
    for ev in inbound:
        who = "brand (outside Slack)" if ev.from_brand else slack_escape(conv.customer_name)
        rows.append((ev.sent_at, f"{who}: {_clip(slack_escape(ev.text))}"))
    for a in actions:
        actor = f"<@{a.actor}>" if a.actor.startswith(("U", "W")) else a.actor
        if a.action in ("relay", "template"):
            rows.append((a.at, f"{actor} → customer: {_clip(slack_escape(a.detail))}"))
        else:
            detail = f" {slack_escape(a.detail)}" if a.detail else ""
            rows.append((a.at, f"_{actor} {a.action}{detail}_"))
    rows.sort(key=lambda r: r[0])
    shown = rows[-limit:]
    head = (f"*#{conv.id}* · {Platform(conv.platform).label} · {slack_escape(conv.customer_name)} · "
            f"{conv.status}" + (f" · <{link(conv.channel, conv.thread_ts)}|open the thread>" if conv.thread_ts
                                else ""))
    more = f"\n_({len(rows) - limit} earlier entries not shown)_" if len(rows) > limit else ""
    lines = [f"`{datetime.fromtimestamp(t, tz):%d %b %H:%M}` {text}" for t, text in shown]
    return head + more + "\n" + ("\n".join(lines) if lines else "_nothing yet_")


def _clip(text: str, n: int = 300) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= n else one_line[:n] + "…"


def home_view(user: str, mine: list[Conversation], unassigned: list[Conversation], escalated: list[Conversation],
              counts: dict[str, int], link: Link, now: float, report: str = "") -> View:
    def section(title: str, convs: list[Conversation]) -> list[dict[str, Any]]:
        body = "\n".join(conversation_line(c, link, now) for c in convs[:15]) or "_none_"
        if len(convs) > 15:
            body += f"\n_and {len(convs) - 15} more: `/dm list`_"
        return [{"type": "header", "text": _text(f"{title} ({len(convs)})")},
                {"type": "section", "text": {"type": "mrkdwn", "text": body[:3000]}}]

    summary = " · ".join(f"{status}: *{counts.get(status, 0)}*" for status in ("open", "snoozed", "resolved"))
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"Hi <@{user}>. Conversations — {summary}"}},
        *section("Assigned to you", mine), {"type": "divider"},
        *section("Unassigned", unassigned), {"type": "divider"},
        *section("Escalated", escalated),
    ]
    if report:
        blocks += [{"type": "divider"}, {"type": "section", "text": {"type": "mrkdwn", "text": report[:3000]}}]
    return {"type": "home", "blocks": blocks}


def not_agent_home_view() -> View:
    """The App Home of someone who is not an agent of this desk: no conversation data at all."""
    return {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text":
            "You are not an agent of this desk, so there is nothing to show here. Ask the desk's admins to add "
            "you to the agents (or to the desk's channel) if you should be."}}]}


def template_list_text(rows: list[tuple[str, str]]) -> str:
    if not rows:
        return "No templates yet. Add one: `/dm template add thanks Thanks {first_name}! — {agent_first_name}`"
    return "*Templates:*\n" + "\n".join(f"• `{name}` — {_clip(slack_escape(text), 120)}" for name, text in rows)


def policies_text(policies: list[Policy]) -> str:
    if not policies:
        return "No SLA policies are set. Add `[[sla]]` tables to dmbridge.toml (see the README)."
    lines = ["*SLA policies* (the first that applies to a conversation is its policy):"]
    for p in policies:
        scope = ", ".join(filter(None, [
            "platforms " + "/".join(sorted(p.platforms)) if p.platforms else "",
            "accounts " + "/".join(sorted(p.accounts)) if p.accounts else "",
            "priority " + "/".join(sorted(p.priorities)) if p.priorities else ""])) or "every conversation"
        targets = ", ".join(f"{t.kind.value.replace('_', ' ')} {age(t.seconds)}" for t in p.targets)
        warn = (f"warn {age(p.warn_before)} before" if p.warn_before else
                f"warn when {p.warn_fraction:.0%} is left" if p.warn_fraction else "no warning")
        hours = f"business hours ({p.hours.timezone})" if p.hours else "24/7"
        lines.append(f"• *{p.name}* — {scope}: {targets}; {warn}; {hours}; on breach: {', '.join(p.on_breach)}")
    return "\n".join(lines)
