"""One check of Block Kit payloads against slack_sdk's own models and Slack's documented limits.

Used by the builder tests (tests/unit/test_blocks_limits.py) and the hostile-markup scenarios: a message
or view that passes here is one Slack accepts, as far as its published limits go.
"""

from __future__ import annotations

import re
from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

BLOCKS_PER_MESSAGE = 50
BLOCKS_PER_VIEW = 100
MESSAGE_TEXT = 40_000
SECTION_TEXT = 3000
CONTEXT_ELEMENTS = 10
CONTEXT_TEXT = 3000
HEADER_TEXT = 150
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
ID_LENGTH = 255
OPTIONS = 100
OPTION_TEXT = 75
OPTION_VALUE = 150
OVERFLOW_OPTIONS = 5
VIEW_TITLE = 24
PRIVATE_METADATA = 3000
INPUT_VALUE = 3000
USERNAME = 80

# the only <…> forms our own text writes; anything else in a payload came from outside
_MARKUP = re.compile(r"<([^<>]*)>")
_OURS = re.compile(r"@[UW][A-Z0-9]+|!subteam\^[A-Z0-9]+|!date\^\d+\^[^|<>]*\|[^<>|]*|https://[^\s<>|]+(\|[^<>]*)?")


def problems_of_message(text: str, blocks: list[dict[str, Any]]) -> list[str]:
    """Everything Slack would refuse in a chat.postMessage / chat.update with this text and these blocks."""
    found = []
    if len(text) > MESSAGE_TEXT:
        found.append(f"text is {len(text)} characters (> {MESSAGE_TEXT})")
    if not blocks or len(blocks) > BLOCKS_PER_MESSAGE:
        found.append(f"{len(blocks)} blocks (1..{BLOCKS_PER_MESSAGE})")
    for i, block in enumerate(blocks):
        found += [f"block {i}: {p}" for p in _problems_of_block(block)]
    return found


def problems_of_view(view: dict[str, Any]) -> list[str]:
    """Everything Slack would refuse in views.open / views.update / views.publish."""
    found = []
    try:
        View(**view).validate_json()
    except Exception as exc:  # slack_sdk raises SlackObjectFormationError and friends
        found.append(f"slack_sdk View: {exc}")
    blocks = view.get("blocks") or []
    if not blocks or len(blocks) > BLOCKS_PER_VIEW:
        found.append(f"{len(blocks)} blocks (1..{BLOCKS_PER_VIEW})")
    for key in ("title", "submit", "close"):
        if key in view and not 1 <= len(view[key]["text"]) <= VIEW_TITLE:
            found.append(f"{key} is {len(view[key]['text'])} characters (1..{VIEW_TITLE})")
    if len(view.get("private_metadata") or "") > PRIVATE_METADATA:
        found.append("private_metadata too long")
    for i, block in enumerate(blocks):
        found += [f"block {i}: {p}" for p in _problems_of_block(block)]
    return found


def _problems_of_block(block: dict[str, Any]) -> list[str]:
    found = []
    try:
        parsed = Block.parse(block)
        if parsed is None:
            found.append(f"slack_sdk does not know a {block.get('type')!r} block")
        else:
            parsed.validate_json()
    except Exception as exc:
        found.append(f"slack_sdk: {exc}")
    kind = block.get("type")
    if len(block.get("block_id") or "") > ID_LENGTH:
        found.append("block_id too long")
    if kind == "section" and len(block.get("text", {}).get("text", "")) > SECTION_TEXT:
        found.append(f"section text is {len(block['text']['text'])} characters")
    if kind == "section" and not block.get("text", {}).get("text", "").strip():
        found.append("empty section text")
    if kind == "header" and len(block["text"]["text"]) > HEADER_TEXT:
        found.append("header text too long")
    if kind == "context":
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= CONTEXT_ELEMENTS:
            found.append(f"context has {len(elements)} elements")
        found += [
            f"context text of {len(e.get('text', ''))}" for e in elements if len(e.get("text", "")) > CONTEXT_TEXT
        ]
    for element in _elements(block):
        found += _problems_of_element(element)
    return found


def _elements(block: dict[str, Any]) -> list[dict[str, Any]]:
    out = list(block.get("elements") or []) if block.get("type") == "actions" else []
    for key in ("accessory", "element"):
        if isinstance(block.get(key), dict):
            out.append(block[key])
    return out


def _problems_of_element(element: dict[str, Any]) -> list[str]:
    found = []
    if len(element.get("action_id") or "") > ID_LENGTH:
        found.append("action_id too long")
    if element.get("type") == "button":
        if len(element["text"]["text"]) > BUTTON_TEXT:
            found.append("button text too long")
        if len(element.get("value") or "") > BUTTON_VALUE:
            found.append("button value too long")
    if element.get("type") == "plain_text_input" and len(element.get("initial_value") or "") > INPUT_VALUE:
        found.append(f"initial_value is {len(element['initial_value'])} characters")
    options = list(element.get("options") or [])
    groups = element.get("option_groups") or []
    if len(groups) > OPTIONS:
        found.append(f"{len(groups)} option groups")
    for group in groups:
        if len(group.get("options") or []) > OPTIONS:
            found.append("an option group holds more than 100 options")
        options += group.get("options") or []
    cap = OVERFLOW_OPTIONS if element.get("type") == "overflow" else OPTIONS
    if len(element.get("options") or []) > cap:
        found.append(f"{len(element['options'])} options (> {cap})")
    for option in options + ([element["initial_option"]] if element.get("initial_option") else []):
        if len(option["text"]["text"]) > OPTION_TEXT:
            found.append("option text too long")
        if len(option.get("value") or "") > OPTION_VALUE:
            found.append("option value too long")
    return found


def foreign_markup(blocks: list[dict[str, Any]]) -> list[str]:
    """``<…>`` sequences in the blocks' mrkdwn that none of our own builders writes (live mentions,
    ``<!here>``, links to anything but a plain https URL)."""
    found = []
    for text in _mrkdwn_texts(blocks):
        found += [m.group(0) for m in _MARKUP.finditer(text) if not _OURS.fullmatch(m.group(1))]
    return found


def _mrkdwn_texts(value: Any) -> list[str]:
    if isinstance(value, dict):
        own = [value["text"]] if value.get("type") == "mrkdwn" and isinstance(value.get("text"), str) else []
        return own + [t for v in value.values() for t in _mrkdwn_texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _mrkdwn_texts(v)]
    return []


def check_message(text: str, blocks: list[dict[str, Any]]) -> None:
    problems = problems_of_message(text, blocks)
    assert not problems, problems


def check_view(view: dict[str, Any]) -> None:
    problems = problems_of_view(view)
    assert not problems, problems
