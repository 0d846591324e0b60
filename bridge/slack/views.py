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
from bridge.text import clip, clip_escaped, mrkdwn_safe_cut, slack_escape, split_text

View = dict[str, Any]
Link = Callable[[str, str], str]

TEXT_LIMIT = 40_000  # a message's ``text`` (the slash command answers below are text-only messages)
SECTION_LIMIT = 3000
INPUT_LIMIT = 3000  # a plain_text_input holds at most 3,000 characters (max_length's ceiling)
OPTIONS_LIMIT = 100  # options of one select, and option groups of one select
OPTION_TEXT = 75
DETAIL_CHARS = 2000  # one audit entry's detail in /dm show

ASSIGN_MODAL, TEMPLATE_MODAL, ESCALATE_MODAL, STATUS_MODAL = (
    "dmbridge_assign_modal", "dmbridge_template_modal", "dmbridge_escalate_modal", "dmbridge_status_modal")


def _text(text: str, limit: int = OPTION_TEXT) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit) or " "}


def _option(label: str, value: str) -> dict[str, Any]:
    return {"text": _text(label), "value": value}


def _modal(callback_id: str, title: str, conv_id: int, blocks: list[dict[str, Any]], submit: str,
           extra: dict[str, Any] | None = None) -> View:
    return {"type": "modal", "callback_id": callback_id, "title": _text(title, 24), "submit": _text(submit, 24),
            "close": _text("Cancel", 24), "private_metadata": json.dumps({"conv": conv_id, **(extra or {})}),
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
    pick: dict[str, Any] = {"type": "static_select", "action_id": "tpl_pick", **_choices(names),
                            "placeholder": _text("Choose a template")}
    if selected:
        pick["initial_option"] = _option(selected, selected)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "block_id": "tpl_pick", "text": {"type": "mrkdwn", "text": "*Template*"},
         "accessory": pick}]
    whole = len(preview) > INPUT_LIMIT
    if whole:  # a text box cannot hold it: shown read-only, and sent as the template renders it
        blocks += [{"type": "context", "elements": [{"type": "mrkdwn", "text":
                    f"This text is {len(preview):,} characters, more than a Slack text box holds "
                    f"({INPUT_LIMIT:,}): it is sent as shown, without edits."}]}]
        pieces = split_text(preview, SECTION_LIMIT, lambda c: len(slack_escape(c)))
        blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(p) or " ", "verbatim": True}}
                   for p in pieces[:90] if p.strip()]
        # an input to confirm with, and to carry an error if the platform refuses the length
        blocks.append({"type": "input", "block_id": f"preview:whole:{selected or ''}", "label": _text("Send"),
                       "element": {"type": "checkboxes", "action_id": "text",
                                   "options": [_option("Send this text unedited", "whole")]}})
    else:
        # a new block_id per template makes Slack show the new initial value after views.update
        blocks.append({"type": "input", "block_id": f"preview:{selected or ''}",
                       "label": _text("Message to the customer"),
                       "element": {"type": "plain_text_input", "action_id": "text", "multiline": True,
                                   "initial_value": preview}})
    return _modal(TEMPLATE_MODAL, f"Template for #{conv_id}", conv_id, blocks, "Send",
                  {"template": selected, **({"whole": True} if whole else {})})


def _choices(names: list[str]) -> dict[str, Any]:
    """A select's ``options``, or ``option_groups`` of 100 each past 100 names (up to 10,000)."""
    if len(names) <= OPTIONS_LIMIT:
        return {"options": [_option(n, n) for n in names]}
    chunks = [names[i:i + OPTIONS_LIMIT] for i in range(0, len(names), OPTIONS_LIMIT)][:OPTIONS_LIMIT]
    return {"option_groups": [{"label": _text(f"{c[0]} – {c[-1]}"), "options": [_option(n, n) for n in c]}
                              for c in chunks]}


def escalate_modal(conv_id: int, teams: list[str]) -> View:
    if not teams:
        return _modal(ESCALATE_MODAL, f"Escalate #{conv_id}", conv_id, [{
            "type": "section", "text": {"type": "mrkdwn", "text":
                "No teams are configured: add `[teams]` to dmbridge.toml."}}], "Close")
    team: dict[str, Any]
    if len(teams) <= OPTIONS_LIMIT and all(len(t) <= OPTION_TEXT for t in teams):
        team = {"type": "input", "block_id": "team", "label": _text("Team"), "element": {
            "type": "static_select", "action_id": "value", "options": [_option(t, t) for t in teams],
            "initial_option": _option(teams[0], teams[0])}}
    else:  # more than a select holds: the name is typed in and checked on submit like `/dm escalate`
        team = {"type": "input", "block_id": "team", "label": _text("Team"),
                "hint": _text(f"One of the {len(teams):,} teams of dmbridge.toml, e.g. " + ", ".join(teams[:5]), 150),
                "element": {"type": "plain_text_input", "action_id": "value", "max_length": 150,
                            "placeholder": _text("team name", 150)}}
    blocks: list[dict[str, Any]] = [
        team,
        {"type": "input", "block_id": "priority", "label": _text("Priority"), "element": {
            "type": "static_select", "action_id": "value", "options": [_option(p, p) for p in PRIORITIES],
            "initial_option": _option("high", "high")}},
        {"type": "input", "block_id": "reason", "label": _text("Reason"), "optional": True, "element": {
            "type": "plain_text_input", "action_id": "value", "multiline": True, "max_length": INPUT_LIMIT}},
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
    flags = f" · :rotating_light: {clip_escaped(conv.team, 60)} ({conv.priority})" if conv.team else ""
    snoozed = " · :zzz: snoozed" if conv.status == "snoozed" else ""
    return (f"<{link(conv.channel, conv.thread_ts)}|#{conv.id}> · {Platform(conv.platform).label} · "
            f"{clip_escaped(conv.customer_name, 80)} · {who} · {age(now - conv.created_at)} · {waiting}"
            f"{flags}{snoozed}")


def listing_text(scope: str, convs: list[Conversation], link: Link, now: float) -> str:
    title = {"mine": "Your open conversations", "unassigned": "Unassigned conversations",
             "escalated": "Escalated conversations", "all": "Open conversations"}[scope]
    if not convs:
        return f"*{title}*: none."
    lines = _fit([conversation_line(c, link, now) for c in convs], TEXT_LIMIT - 200,
                 lambda n: f"_and {n} more; narrow the list (`/dm list mine`, `unassigned`, `escalated`)_")
    return f"*{title}* ({len(convs)}):\n" + "\n".join(lines)


def _fit(lines: list[str], budget: int, more: Callable[[int], str] | None = None) -> list[str]:
    """The first lines that fit ``budget`` characters (newlines counted), then ``more(left out)``."""
    kept: list[str] = []
    used = 0
    for i, line in enumerate(lines):
        if used + len(line) + 1 > budget:
            return [*kept, more(len(lines) - i)] if more else kept
        kept.append(line)
        used += len(line) + 1
    return kept


def timeline_text(conv: Conversation, inbound: list[InboundEvent], actions: list[Audit], tz: ZoneInfo,
                  link: Link, limit: int = 40) -> str:
    rows: list[tuple[float, str]] = []
    for ev in inbound:
        who = "brand (outside Slack)" if ev.from_brand else clip_escaped(conv.customer_name, 80)
        rows.append((ev.sent_at, f"{who}: {_clip(slack_escape(ev.text))}"))
    for a in actions:
        actor = f"<@{a.actor}>" if a.actor.startswith(("U", "W")) else a.actor
        if a.action in ("relay", "template"):
            rows.append((a.at, f"{actor} → customer: {_clip(slack_escape(a.detail))}"))
        else:
            detail = f" {clip_escaped(a.detail, DETAIL_CHARS)}" if a.detail else ""
            rows.append((a.at, f"_{actor} {a.action}{detail}_"))
    rows.sort(key=lambda r: r[0])
    shown = rows[-limit:]
    while len(shown) > 1 and sum(len(r[1]) + 20 for r in shown) > TEXT_LIMIT - 2000:
        shown = shown[1:]  # the newest entries that fit one message
    limit = len(shown)
    head = (f"*#{conv.id}* · {Platform(conv.platform).label} · {clip_escaped(conv.customer_name, 1000)} · "
            f"{conv.status}" + (f" · <{link(conv.channel, conv.thread_ts)}|open the thread>" if conv.thread_ts
                                else ""))
    more = f"\n_({len(rows) - limit} earlier entries not shown)_" if len(rows) > limit else ""
    lines = [f"`{datetime.fromtimestamp(t, tz):%d %b %H:%M}` {text}" for t, text in shown]
    return head + more + "\n" + ("\n".join(lines) if lines else "_nothing yet_")


def _clip(text: str, n: int = 300) -> str:
    """Escaped text on one line, cut visibly (never inside an entity or a grapheme)."""
    return clip(" ".join(text.split()), n, can_cut=mrkdwn_safe_cut)


def home_view(user: str, mine: list[Conversation], unassigned: list[Conversation], escalated: list[Conversation],
              counts: dict[str, int], link: Link, now: float, report: str = "") -> View:
    def section(title: str, convs: list[Conversation]) -> list[dict[str, Any]]:
        lines = _fit([conversation_line(c, link, now) for c in convs[:15]], SECTION_LIMIT - 60)
        if len(convs) > len(lines):
            lines.append(f"_and {len(convs) - len(lines)} more: `/dm list`_")
        body = "\n".join(lines) or "_none_"
        return [{"type": "header", "text": _text(f"{title} ({len(convs)})", 150)},
                {"type": "section", "text": {"type": "mrkdwn", "text": body}}]

    summary = " · ".join(f"{status}: *{counts.get(status, 0)}*" for status in ("open", "snoozed", "resolved"))
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"Hi <@{user}>. Conversations — {summary}"}},
        *section("Assigned to you", mine), {"type": "divider"},
        *section("Unassigned", unassigned), {"type": "divider"},
        *section("Escalated", escalated),
    ]
    if report:
        pieces = split_text(report, SECTION_LIMIT, can_cut=mrkdwn_safe_cut)
        blocks += [{"type": "divider"}, *({"type": "section", "text": {"type": "mrkdwn", "text": p}}
                                          for p in pieces[:80] if p.strip())]
    return {"type": "home", "blocks": blocks}


def not_agent_home_view() -> View:
    """The App Home of someone who is not an agent of this desk: no conversation data at all."""
    return {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text":
            "You are not an agent of this desk, so there is nothing to show here. Ask the desk's admins to add "
            "you to the agents (or to the desk's channel) if you should be."}}]}


def template_list_text(rows: list[tuple[str, str]]) -> str:
    if not rows:
        return "No templates yet. Add one: `/dm template add thanks Thanks {first_name}! — {agent_first_name}`"
    lines = _fit([f"• `{name}` — {_clip(slack_escape(text), 120)}" for name, text in rows], TEXT_LIMIT - 200,
                 lambda n: f"_and {n} more: `/dm template show NAME`_")
    return "*Templates:*\n" + "\n".join(lines)


def template_show_text(name: str, text: str) -> str:
    """``/dm template show NAME``: the text as stored, within one message (cut visibly past that)."""
    return f"*{name}*:\n```{clip_escaped(text, TEXT_LIMIT - 200)}```"


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
    return "\n".join(_fit(lines, TEXT_LIMIT - 200, lambda n: f"_and {n} more (see dmbridge.toml)_"))
