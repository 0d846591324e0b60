"""What Slack refuses in a message or a view: slack_sdk's Block Kit models plus the documented limits.

Slack answers a bad message with ``invalid_blocks`` (``msg_too_long`` for an over-long ``text``, ``no_text``
when there is nothing to show) and a bad view with ``invalid_arguments``, each with the reasons in
``response_metadata.messages``. Limits (docs.slack.dev, Block Kit reference): 50 blocks per message, 100 per
view; a text object at most 3,000 characters (a header's 150, a button's 75, an option's 75); a button value
2,000; ``action_id``/``block_id`` 255; at most 100 options in a select, 5 in an overflow; 25 elements in an
actions block, 10 in a context block; a view's title, submit and close 24; ``private_metadata`` 3,000;
``callback_id`` 255; a message's ``text`` 40,000.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
TEXT_OBJECT = 3000
MESSAGE_TEXT = 40_000
ID_LIMIT = 255
OPTIONS = 100
VIEW_TITLE = 24
PRIVATE_METADATA = 3000
BLOCK_TYPES = {
    "section",
    "divider",
    "image",
    "actions",
    "context",
    "input",
    "header",
    "file",
    "video",
    "rich_text",
    "markdown",
}
TEXT_LIMITS = {"header": 150, "button": 75, "option": 75, "placeholder": 150, "label": 2000, "hint": 2000}


class Refused(Exception):
    """Slack's error code and the reasons it gives."""

    def __init__(self, error: str, messages: list[str]) -> None:
        super().__init__(error)
        self.error, self.messages = error, messages


def check_message(text: Any, blocks: Any) -> None:
    """A chat.postMessage / chat.update / chat.postEphemeral payload, as Slack checks it."""
    if not text and not blocks:
        raise Refused("no_text", ["[ERROR] text or blocks required"])
    if len(str(text or "")) > MESSAGE_TEXT:
        raise Refused("msg_too_long", [f"[ERROR] text is longer than {MESSAGE_TEXT} characters"])
    if blocks in (None, ""):
        return
    problems = _blocks(blocks, MESSAGE_BLOCKS)
    if problems:
        raise Refused("invalid_blocks", problems)


def check_view(view: Any, kinds: tuple[str, ...]) -> None:
    """A views.open / views.update / views.publish ``view``, as Slack checks it."""
    if not isinstance(view, dict) or view.get("type") not in kinds:
        raise Refused("invalid_arguments", ["[ERROR] view type must be one of " + ", ".join(kinds)])
    problems = _blocks(view.get("blocks"), VIEW_BLOCKS)
    for key in ("title", "submit", "close"):
        if key in view:
            problems += _text(view[key], f"{key}", VIEW_TITLE, plain=True)
    if view.get("type") == "modal" and "title" not in view:
        problems.append("[ERROR] a modal needs a title")
    if len(str(view.get("private_metadata") or "")) > PRIVATE_METADATA:
        problems.append(f"[ERROR] private_metadata is longer than {PRIVATE_METADATA} characters")
    if len(str(view.get("callback_id") or "")) > ID_LIMIT:
        problems.append(f"[ERROR] callback_id is longer than {ID_LIMIT} characters")
    if not problems:
        try:
            View(**view).validate_json()
        except (SlackObjectFormationError, TypeError, ValueError, KeyError) as exc:
            problems.append(f"[ERROR] {exc}")
    if problems:
        raise Refused("invalid_arguments", problems)


def _blocks(blocks: Any, cap: int) -> list[str]:
    if not isinstance(blocks, list):
        return ["[ERROR] blocks must be an array"]
    if len(blocks) > cap:
        return [f"[ERROR] no more than {cap} items allowed [json-pointer:/blocks]"]
    problems: list[str] = []
    for i, block in enumerate(blocks):
        where = f"[json-pointer:/blocks/{i}]"
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            problems.append(f"[ERROR] unsupported type {where}")
            continue
        problems += [f"{p} {where}" for p in _block(block)]
        if problems:
            continue
        try:
            parsed = Block.parse(block)
            if parsed is not None:
                parsed.validate_json()
        except (SlackObjectFormationError, TypeError, ValueError, KeyError) as exc:
            problems.append(f"[ERROR] {exc} {where}")
    return problems


def _block(block: dict[str, Any]) -> list[str]:
    kind = str(block["type"])
    problems = _id(block, "block_id")
    if kind == "header":
        problems += _text(block.get("text"), "header", TEXT_LIMITS["header"], plain=True)
    elif kind == "section":
        if "text" in block:
            problems += _text(block["text"], "text", TEXT_OBJECT)
        for f in block.get("fields") or []:
            problems += _text(f, "field", 2000)
        if block.get("accessory"):
            problems += _element(block["accessory"])
    elif kind == "context":
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= 10:
            problems.append("[ERROR] a context block has 1 to 10 elements")
        for e in elements:
            if isinstance(e, dict) and e.get("type") in ("plain_text", "mrkdwn"):
                problems += _text(e, "text", TEXT_OBJECT)
    elif kind == "actions":
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= 25:
            problems.append("[ERROR] an actions block has 1 to 25 elements")
        for e in elements:
            problems += _element(e)
    elif kind == "input":
        problems += _text(block.get("label"), "label", TEXT_LIMITS["label"], plain=True)
        if "hint" in block:
            problems += _text(block["hint"], "hint", TEXT_LIMITS["hint"], plain=True)
        problems += _element(block.get("element"))
    return problems


def _element(e: Any) -> list[str]:
    if not isinstance(e, dict):
        return ["[ERROR] an element must be an object"]
    kind = str(e.get("type"))
    problems = _id(e, "action_id")
    if kind == "button":
        problems += _text(e.get("text"), "button text", TEXT_LIMITS["button"], plain=True)
        if len(str(e.get("value") or "")) > 2000:
            problems.append("[ERROR] a button value is at most 2000 characters")
    if "placeholder" in e:
        problems += _text(e["placeholder"], "placeholder", TEXT_LIMITS["placeholder"], plain=True)
    options = e.get("options")
    if options is not None:
        cap = 5 if kind == "overflow" else OPTIONS
        if not isinstance(options, list) or not 1 <= len(options) <= cap:
            problems.append(f"[ERROR] {kind} has 1 to {cap} options")
        else:
            for o in options:
                problems += _text((o or {}).get("text"), "option", TEXT_LIMITS["option"])
                if len(str((o or {}).get("value") or "")) > 150:
                    problems.append("[ERROR] an option value is at most 150 characters")
    if kind == "plain_text_input":
        if len(str(e.get("initial_value") or "")) > TEXT_OBJECT:
            problems.append("[ERROR] initial_value is at most 3000 characters")
        if int(e.get("max_length") or 0) > TEXT_OBJECT:
            problems.append("[ERROR] max_length is at most 3000")
    return problems


def _text(obj: Any, name: str, cap: int, *, plain: bool = False) -> list[str]:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return [f"[ERROR] {name} must be a text object"]
    if plain and obj.get("type") != "plain_text":
        return [f"[ERROR] {name} must be plain_text"]
    if obj.get("type") not in ("plain_text", "mrkdwn"):
        return [f"[ERROR] {name} has an unknown text type"]
    if not obj["text"]:
        return [f"[ERROR] {name} must not be empty"]
    if len(obj["text"]) > cap:
        return [f"[ERROR] {name} must be at most {cap} characters"]
    return []


def _id(obj: dict[str, Any], key: str) -> list[str]:
    if key in obj and (not isinstance(obj[key], str) or len(obj[key]) > ID_LIMIT):
        return [f"[ERROR] {key} must be a string of at most {ID_LIMIT} characters"]
    return []
