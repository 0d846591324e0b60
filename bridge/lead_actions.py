"""Leads on the desk: ``lead …`` and "Mark as lead" change the ``lead`` row through ``bridge.state`` (audit, card,
thread line) and, with ``[crm]``, queue the hand-off (``CrmPost``, whose ✅ goes on that line)."""

from __future__ import annotations

from sqlmodel import Session

from bridge import state
from bridge.commands import SetLead
from bridge.deliveries import CrmPost
from bridge.leads import format_money, lead_label
from bridge.store import leads as store
from bridge.store import outbox
from bridge.store.tables import Conversation, Lead


def apply(s: Session, actor: str, conv: Conversation, cmd: SetLead, now: float, *, crm: bool) -> tuple[str, bool]:
    """Create or move the conversation's lead; the answer for the agent and whether anything changed."""
    assert conv.id is not None
    lead = store.get(s, conv.id)
    if lead is None:
        lead = Lead(conversation_id=conv.id, stage="new", created_at=now, updated_at=now, updated_by=actor)
        before = None
    else:
        before = (lead.stage, lead.value_minor, lead.currency)
        if cmd.stage is None and cmd.value_minor is None:
            return f"#{conv.id} is already a lead ({lead_label(lead.stage, lead.value_minor, lead.currency)}).", False
    lead.stage = cmd.stage or lead.stage
    if cmd.value_minor is not None:
        lead.value_minor, lead.currency = cmd.value_minor, cmd.currency
    if before == (lead.stage, lead.value_minor, lead.currency):
        return f"#{conv.id} is already {lead_label(lead.stage, lead.value_minor, lead.currency)}.", False
    lead.updated_at, lead.updated_by = now, actor
    s.add(lead)
    label = lead_label(lead.stage, lead.value_minor, lead.currency)
    line = (
        f":star: Marked as a lead by {_mention(actor)}: {label}."
        if before is None
        else f":star: Lead moved to {label} by {_mention(actor)}."
    )
    if crm:
        line += " Handing it to the CRM…"
    money = format_money(lead.value_minor, lead.currency)
    audit_id = state.changed(
        s, conv, actor=actor, action="lead", detail=f"{lead.stage} {money}".strip(), line=line, now=now
    )
    if crm:
        post = CrmPost.after_audit(conv.id, audit_id, lead.stage, lead.value_minor, lead.currency, actor, now)
        outbox.enqueue(s, post, now)
    return f"#{conv.id} is a lead: {label}.", True


def _mention(user: str) -> str:
    return f"<@{user}>" if user.startswith(("U", "W")) else user
