"""The card's inquiry type (shown, suggested with a Confirm button, or chosen from a select) and the suggested
replies under a mirrored customer message: pure Block Kit, within Slack's limits (docs/design.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bridge.text import clip, slack_escape

Block = dict[str, Any]
OPTIONS = 100  # a static select's most options
SUGGESTED = 3


def type_fact(inquiry_type: str | None, suggested: str | None, types: Sequence[tuple[str, str]]) -> str | None:
    """The card's "Type" fact: the confirmed type with its emoji, the suggestion marked with "?", or None."""
    emoji = dict(types)
    if inquiry_type:
        return f"Type: {emoji.get(inquiry_type, '')} *{slack_escape(inquiry_type)}*".replace(":  *", ": *")
    if suggested:
        return f"Type: {emoji.get(suggested, '')} *{slack_escape(suggested)}?* (suggested)".replace(":  *", ": *")
    return None


def type_actions(inquiry_type: str | None, suggested: str | None, types: Sequence[tuple[str, str]]) -> Block | None:
    """Confirm (when there is an unconfirmed suggestion) and a select of the types."""
    if not types:
        return None
    elements: list[Block] = []
    if suggested and not inquiry_type and suggested in dict(types):
        elements.append(
            {
                "type": "button",
                "action_id": "conv_type_confirm",
                "text": {"type": "plain_text", "text": clip(f"Confirm: {suggested}", 75)},
                "value": suggested,
                "style": "primary",
            }
        )
    options = [_option(name, emoji) for name, emoji in list(types)[:OPTIONS]]
    select: Block = {
        "type": "static_select",
        "action_id": "conv_type_pick",
        "placeholder": {"type": "plain_text", "text": "Change type" if inquiry_type or suggested else "Set type"},
        "options": options,
    }
    chosen = next((o for o in options if o["value"] == inquiry_type), None)
    if chosen is not None:
        select["initial_option"] = chosen
    elements.append(select)
    return {"type": "actions", "block_id": "conv_type", "elements": elements}


def _option(name: str, emoji: str) -> Block:
    return {"text": {"type": "plain_text", "text": clip(f"{emoji} {name}", 75), "emoji": True}, "value": name}


def suggestion_actions(names: Sequence[str]) -> Block | None:
    """Up to three template buttons under a customer's message; each opens the template modal on it."""
    if not names:
        return None
    return {
        "type": "actions",
        "block_id": "sugg_tpl",
        "elements": [
            {
                "type": "button",
                "action_id": f"sugg_tpl_{i}",
                "text": {"type": "plain_text", "text": clip(f"Reply: {name}", 75)},
                "value": name,
            }
            for i, name in enumerate(names[:SUGGESTED])
        ],
    }
