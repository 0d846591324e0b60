"""Saved replies: validation when saved, rendering when used (pure).

A template is plain text with ``{variable}`` fields; ``{{`` and ``}}`` are
literal braces. Only the variables below exist; a template naming another
one is refused when it is saved, so rendering never fails later.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass

VARIABLES = {
    "first_name": "the customer's first name",
    "name": "the customer's display name",
    "handle": "the customer's @handle (or their name where the platform has none)",
    "agent_name": "the sending agent's name",
    "agent_first_name": "the sending agent's first name",
    "platform": "X, Messenger, Instagram …",
    "conversation": "the conversation number",
    "brand": "the brand name from dmbridge.toml",
    "next_open": 'automatic replies: when the team is next open ("Monday at 09:00"); "soon" from an agent',
    "expected_reply": 'automatic replies: when the first response is due ("today at 14:30"); "soon" from an agent',
}
MAX_TEMPLATE_CHARS = 10_000


@dataclass(frozen=True)
class TemplateContext:
    customer_name: str
    customer_handle: str | None
    agent_name: str
    platform: str
    conversation: int
    brand: str
    next_open: str = "soon"
    expected_reply: str = "soon"

    def values(self) -> dict[str, str]:
        return {
            "first_name": first_name(self.customer_name),
            "name": self.customer_name,
            "handle": f"@{self.customer_handle}" if self.customer_handle else self.customer_name,
            "agent_name": self.agent_name,
            "agent_first_name": first_name(self.agent_name),
            "platform": self.platform,
            "conversation": str(self.conversation),
            "brand": self.brand,
            "next_open": self.next_open,
            "expected_reply": self.expected_reply,
        }


def first_name(name: str) -> str:
    words = name.split()
    return words[0] if words else name


def fields_of(text: str) -> list[str]:
    """The variable names ``text`` uses; ValueError when its braces are malformed."""
    names = []
    for _literal, field, spec, conversion in string.Formatter().parse(text):
        if field is None:
            continue
        if spec or conversion or not field.isidentifier():
            raise ValueError(f"`{{{field}}}` is not a variable; write {{{{ and }}}} for literal braces")
        names.append(field)
    return names


def validate(text: str) -> None:
    """Refuse a template that could not render; the message lists the variables that exist."""
    if not text.strip():
        raise ValueError("a template needs some text")
    if len(text) > MAX_TEMPLATE_CHARS:
        raise ValueError(f"a template is at most {MAX_TEMPLATE_CHARS:,} characters")
    try:
        used = fields_of(text)
    except ValueError as exc:
        raise ValueError(f"{exc}. Known variables: {known_list()}") from exc
    unknown = sorted({f for f in used if f not in VARIABLES})
    if unknown:
        names = ", ".join("{" + u + "}" for u in unknown)
        raise ValueError(f"unknown variable {names}. Known variables: {known_list()}")


def known_list() -> str:
    return ", ".join("{" + v + "}" for v in VARIABLES)


def render(text: str, values: Mapping[str, str]) -> str:
    """Fill in a validated template."""
    return text.format_map(dict(values))
