"""Setting and suggesting a conversation's inquiry type (docs/design.md, "The DM playbook"), in the caller's
transaction: the row, the type's priority, the example the suggestion learns from, and ``state.changed``
(audit, card, thread line, and the SLA evaluated again at the next sweep: ``[[sla]] types``)."""

from __future__ import annotations

from sqlmodel import Session

from bridge import state
from bridge.playbook_config import InquiryType
from bridge.store import playbook_types as store
from bridge.store.tables import Conversation
from bridge.text import clip, slack_escape


def unknown_type(name: str, types: list[InquiryType]) -> str:
    shown = clip(slack_escape(name.replace("`", "'")), 40)
    valid = ", ".join(f"`{t.name}`" for t in types) or "(none configured)"
    return f"There is no type `{shown}`. The types are: {valid}. Nothing was changed."


def set_type(
    s: Session, types: list[InquiryType], conv: Conversation, name: str, actor: str, now: float
) -> tuple[bool, str]:
    """Set ``conv``'s type to ``name`` for ``actor`` (an agent, already checked); (done, what to tell them)."""
    assert conv.id is not None
    kind = next((t for t in types if t.name == name), None)
    if kind is None:
        return False, unknown_type(name, types)
    if conv.inquiry_type == name:
        return False, f"#{conv.id} is already of type {name}."
    confirmed = conv.suggested_type == name and conv.inquiry_type is None
    conv.inquiry_type = name
    line = f"Type {'confirmed' if confirmed else 'set'}: {kind.emoji} *{name}* by <@{actor}>."
    if kind.priority and kind.priority != conv.priority:
        conv.priority = kind.priority
        line += f" Priority: {kind.priority}."
    store.remember_type(s, conv.id, name, actor, now)
    detail = f"{name} (suggested {conv.suggested_type})" if conv.suggested_type else name
    state.changed(s, conv, actor=actor, action="type", detail=detail, line=line, now=now)
    return True, f"#{conv.id} is now of type {name}."


def suggest_first(s: Session, types: list[InquiryType], conv: Conversation, text: str, now: float) -> str | None:
    """The customer's first message: the suggested type on the row (the card drawn after shows it)."""
    if not types or conv.inquiry_type or conv.suggested_type or conv.id is None:
        return None
    found = store.suggest_first_type(s, {t.name: t.keywords for t in types}, text)
    if found is not None:
        state.type_suggested(s, conv, found, now)
    return found
