"""Pure builders of Slack views: the modals and the App Home (the text answers to ``/dm`` are in ``answers``)."""

from __future__ import annotations

import json
from typing import Any

from bridge.commands import PRIORITIES
from bridge.slack.answers import Link, conversation_line, fit_lines
from bridge.store.tables import Conversation
from bridge.text import clip, mrkdwn_safe_cut, slack_escape, split_text

View = dict[str, Any]

SECTION_LIMIT = 3000
INPUT_LIMIT = 3000  # a plain_text_input holds at most 3,000 characters (max_length's ceiling)
OPTIONS_LIMIT = 100  # options of one select, and option groups of one select
OPTION_TEXT = 75

ASSIGN_MODAL, TEMPLATE_MODAL, ESCALATE_MODAL, STATUS_MODAL = (
    "dmbridge_assign_modal",
    "dmbridge_template_modal",
    "dmbridge_escalate_modal",
    "dmbridge_status_modal",
)


def _text(text: str, limit: int = OPTION_TEXT) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit) or " "}


def _option(label: str, value: str) -> dict[str, Any]:
    return {"text": _text(label), "value": value}


def _modal(
    callback_id: str,
    title: str,
    conv_id: int,
    blocks: list[dict[str, Any]],
    submit: str,
    extra: dict[str, Any] | None = None,
) -> View:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": _text(title, 24),
        "submit": _text(submit, 24),
        "close": _text("Cancel", 24),
        "private_metadata": json.dumps({"conv": conv_id, **(extra or {})}),
        "blocks": blocks,
    }


def assign_modal(conv_id: int, initial: str | None) -> View:
    select: dict[str, Any] = {"type": "users_select", "action_id": "user", "placeholder": _text("Choose an agent")}
    if initial:
        select["initial_user"] = initial
    return _modal(
        ASSIGN_MODAL,
        f"Assign #{conv_id}",
        conv_id,
        [{"type": "input", "block_id": "assignee", "label": _text("Assign to"), "element": select}],
        "Assign",
    )


def template_modal(conv_id: int, names: list[str], selected: str | None, preview: str) -> View:
    if not names:
        return _modal(
            TEMPLATE_MODAL,
            f"Template for #{conv_id}",
            conv_id,
            [
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": "There are no templates yet. Add one in the channel: `/dm template add NAME text…`",
                    },
                }
            ],
            "Close",
        )
    pick: dict[str, Any] = {
        "type": "static_select",
        "action_id": "tpl_pick",
        **_choices(names),
        "placeholder": _text("Choose a template"),
    }
    if selected:
        pick["initial_option"] = _option(selected, selected)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "block_id": "tpl_pick", "text": {"type": "mrkdwn", "text": "*Template*"}, "accessory": pick}
    ]
    whole = len(preview) > INPUT_LIMIT
    if whole:  # a text box cannot hold it: shown read-only, and sent as the template renders it
        blocks += [
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"This text is {len(preview):,} characters, more than a Slack text box holds "
                        f"({INPUT_LIMIT:,}): it is sent as shown, without edits.",
                    }
                ],
            }
        ]
        pieces = split_text(preview, SECTION_LIMIT, lambda c: len(slack_escape(c)))
        blocks += [
            {"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(p) or " ", "verbatim": True}}
            for p in pieces[:90]
            if p.strip()
        ]
        # an input to confirm with, and to carry an error if the platform refuses the length
        blocks.append(
            {
                "type": "input",
                "block_id": f"preview:whole:{selected or ''}",
                "label": _text("Send"),
                "element": {
                    "type": "checkboxes",
                    "action_id": "text",
                    "options": [_option("Send this text unedited", "whole")],
                },
            }
        )
    else:
        # a new block_id per template makes Slack show the new initial value after views.update
        blocks.append(
            {
                "type": "input",
                "block_id": f"preview:{selected or ''}",
                "label": _text("Message to the customer"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "text",
                    "multiline": True,
                    "initial_value": preview,
                },
            }
        )
    return _modal(
        TEMPLATE_MODAL,
        f"Template for #{conv_id}",
        conv_id,
        blocks,
        "Send",
        {"template": selected, **({"whole": True} if whole else {})},
    )


def _choices(names: list[str]) -> dict[str, Any]:
    """A select's ``options``, or ``option_groups`` of 100 each past 100 names (up to 10,000)."""
    if len(names) <= OPTIONS_LIMIT:
        return {"options": [_option(n, n) for n in names]}
    chunks = [names[i : i + OPTIONS_LIMIT] for i in range(0, len(names), OPTIONS_LIMIT)][:OPTIONS_LIMIT]
    return {
        "option_groups": [{"label": _text(f"{c[0]} – {c[-1]}"), "options": [_option(n, n) for n in c]} for c in chunks]
    }


def escalate_modal(conv_id: int, teams: list[str]) -> View:
    if not teams:
        return _modal(
            ESCALATE_MODAL,
            f"Escalate #{conv_id}",
            conv_id,
            [
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": "No teams are configured: add `[teams]` to dmbridge.toml."},
                }
            ],
            "Close",
        )
    team: dict[str, Any]
    if len(teams) <= OPTIONS_LIMIT and all(len(t) <= OPTION_TEXT for t in teams):
        team = {
            "type": "input",
            "block_id": "team",
            "label": _text("Team"),
            "element": {
                "type": "static_select",
                "action_id": "value",
                "options": [_option(t, t) for t in teams],
                "initial_option": _option(teams[0], teams[0]),
            },
        }
    else:  # more than a select holds: the name is typed in and checked on submit like `/dm escalate`
        team = {
            "type": "input",
            "block_id": "team",
            "label": _text("Team"),
            "hint": _text(f"One of the {len(teams):,} teams of dmbridge.toml, e.g. " + ", ".join(teams[:5]), 150),
            "element": {
                "type": "plain_text_input",
                "action_id": "value",
                "max_length": 150,
                "placeholder": _text("team name", 150),
            },
        }
    blocks: list[dict[str, Any]] = [
        team,
        {
            "type": "input",
            "block_id": "priority",
            "label": _text("Priority"),
            "element": {
                "type": "static_select",
                "action_id": "value",
                "options": [_option(p, p) for p in PRIORITIES],
                "initial_option": _option("high", "high"),
            },
        },
        {
            "type": "input",
            "block_id": "reason",
            "label": _text("Reason"),
            "optional": True,
            "element": {"type": "plain_text_input", "action_id": "value", "multiline": True, "max_length": INPUT_LIMIT},
        },
    ]
    return _modal(ESCALATE_MODAL, f"Escalate #{conv_id}", conv_id, blocks, "Escalate")


def status_modal(conv_id: int, status: str) -> View:
    choices = [
        ("Resolve", "resolve"),
        ("Reopen", "reopen"),
        ("Snooze", "snooze"),
        ("Unassign", "unassign"),
        ("De-escalate", "deescalate"),
    ]
    initial = "reopen" if status != "open" else "resolve"
    blocks: list[dict[str, Any]] = [
        {
            "type": "input",
            "block_id": "action",
            "label": _text(f"#{conv_id} is {status}. Do:"),
            "element": {
                "type": "radio_buttons",
                "action_id": "value",
                "options": [_option(a, v) for a, v in choices],
                "initial_option": _option(dict((v, a) for a, v in choices)[initial], initial),
            },
        },
        {
            "type": "input",
            "block_id": "when",
            "optional": True,
            "label": _text("Snooze until"),
            "element": {
                "type": "plain_text_input",
                "action_id": "value",
                "placeholder": _text("2h, tomorrow 9:00, mon 10:00"),
            },
        },
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


def home_view(
    user: str,
    mine: list[Conversation],
    unassigned: list[Conversation],
    escalated: list[Conversation],
    counts: dict[str, int],
    link: Link,
    now: float,
    report: str = "",
) -> View:
    def section(title: str, convs: list[Conversation]) -> list[dict[str, Any]]:
        lines = fit_lines([conversation_line(c, link, now) for c in convs[:15]], SECTION_LIMIT - 60)
        if len(convs) > len(lines):
            lines.append(f"_and {len(convs) - len(lines)} more: `/dm list`_")
        body = "\n".join(lines) or "_none_"
        return [
            {"type": "header", "text": _text(f"{title} ({len(convs)})", 150)},
            {"type": "section", "text": {"type": "mrkdwn", "text": body}},
        ]

    summary = " · ".join(f"{status}: *{counts.get(status, 0)}*" for status in ("open", "snoozed", "resolved"))
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"Hi <@{user}>. Conversations — {summary}"}},
        *section("Assigned to you", mine),
        {"type": "divider"},
        *section("Unassigned", unassigned),
        {"type": "divider"},
        *section("Escalated", escalated),
    ]
    if report:
        pieces = split_text(report, SECTION_LIMIT, can_cut=mrkdwn_safe_cut)
        blocks += [
            {"type": "divider"},
            *({"type": "section", "text": {"type": "mrkdwn", "text": p}} for p in pieces[:80] if p.strip()),
        ]
    return {"type": "home", "blocks": blocks}


def not_agent_home_view() -> View:
    """The App Home of someone who is not an agent of this desk: no conversation data at all."""
    return {
        "type": "home",
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "You are not an agent of this desk, so there is nothing to show here. "
                    "Ask the desk's admins to add you to the agents (or to the desk's channel) if you should be.",
                },
            }
        ],
    }
