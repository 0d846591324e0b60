"""Type examples and template choices (migration 0010), and the models built from them, cached.

The type model and the template index are rebuilt only when their rows changed (a cheap count-and-newest
query each time), so a message's suggestion costs a look-up, not a training run.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func
from sqlmodel import Session, col, select

from bridge.inquiry import MAX_TEXT, KeywordRules, Model, Rules
from bridge.inquiry import suggest as suggest_type
from bridge.store.tables import InboundEvent, Template, TemplateChoice, TypeExample
from bridge.suggest import MAX_MESSAGE, Suggester

EXAMPLES = 5_000
"""The newest confirmed examples the type model learns from."""
CHOICES = 5_000
"""The newest template choices the suggested replies' prior uses."""

_models: dict[tuple[object, ...], Model] = {}
_suggesters: dict[tuple[object, ...], Suggester] = {}


def first_customer_text(s: Session, conversation_id: int) -> str | None:
    row = s.exec(
        select(InboundEvent.text)
        .where(InboundEvent.conversation_id == conversation_id, col(InboundEvent.from_brand).is_(False))
        .order_by(col(InboundEvent.id))
        .limit(1)
    ).first()
    return row


def last_customer_text(s: Session, conversation_id: int) -> str | None:
    return s.exec(
        select(InboundEvent.text)
        .where(InboundEvent.conversation_id == conversation_id, col(InboundEvent.from_brand).is_(False))
        .order_by(col(InboundEvent.id).desc())
        .limit(1)
    ).first()


def remember_type(s: Session, conversation_id: int, kind: str, by: str, now: float) -> bool:
    """The conversation's first customer message as an example of ``kind`` (replacing an earlier one)."""
    text = first_customer_text(s, conversation_id)
    if not text or not text.strip():
        return False
    row = s.exec(select(TypeExample).where(TypeExample.conversation_id == conversation_id)).first()
    if row is None:
        row = TypeExample(
            conversation_id=conversation_id, text=text[:MAX_TEXT], type=kind, confirmed_by=by, created_at=now
        )
    else:
        row.type, row.confirmed_by, row.created_at = kind, by, now
    s.add(row)
    return True


def remember_choice(s: Session, conversation_id: int, template: str, now: float) -> bool:
    """An agent sent ``template``: paired with the customer's last message, for the suggestions' prior."""
    text = last_customer_text(s, conversation_id)
    if not text or not text.strip():
        return False
    s.add(TemplateChoice(conversation_id=conversation_id, text=text[:MAX_MESSAGE], template=template, created_at=now))
    return True


def type_model(s: Session) -> Model:
    key = tuple(s.exec(select(func.count(), func.max(TypeExample.id), func.max(TypeExample.created_at))).one())
    model = _models.get(key)
    if model is None:
        rows = s.exec(select(TypeExample.text, TypeExample.type).order_by(col(TypeExample.id).desc()).limit(EXAMPLES))
        model = Model.train((text, kind) for text, kind in rows)
        _models.clear()
        _models[key] = model
    return model


def suggest_first_type(s: Session, rules: Rules, text: str) -> str | None:
    """The type a conversation's first message suggests (keywords, then the team's own examples), or None."""
    known = set(rules)
    found = suggest_type(text, KeywordRules.of(rules), type_model(s))
    return found if found in known else None


def suggester(s: Session) -> Suggester | None:
    """The templates and past choices, indexed (rebuilt when either changed); None without templates."""
    templates = tuple(s.exec(select(func.count(), func.max(Template.updated_at), func.max(Template.id))).one())
    if not templates[0]:
        return None
    choices = tuple(s.exec(select(func.count(), func.max(TemplateChoice.id))).one())
    key = (*templates, *choices)
    found = _suggesters.get(key)
    if found is None:
        rows = s.exec(select(Template.name, Template.text).order_by(col(Template.name))).all()
        past = s.exec(
            select(TemplateChoice.text, TemplateChoice.template).order_by(col(TemplateChoice.id).desc()).limit(CHOICES)
        ).all()
        found = Suggester([(n, t) for n, t in rows], [(m, n) for m, n in past])
        _suggesters.clear()
        _suggesters[key] = found
    return found


def suggest_templates(s: Session, text: str, limit: int = 3) -> Sequence[str]:
    found = suggester(s)
    return [] if found is None else [x.name for x in found.rank(text, limit)]
