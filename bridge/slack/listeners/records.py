"""``/dm list leads`` and ``/dm export 12`` (the leads and records half of the DM playbook)."""

from __future__ import annotations

from sqlmodel import Session

from bridge.deliveries import TranscriptUpload
from bridge.domain import Platform
from bridge.leads import lead_label
from bridge.slack.listeners.deps import ListenerDeps
from bridge.store import desk as store
from bridge.store import leads as lead_store
from bridge.store import outbox
from bridge.store.tables import Conversation
from bridge.text import clip_escaped


def leads_text(deps: ListenerDeps, user: str) -> str:
    """The leads of the conversations ``user`` may see, newest change first."""
    with deps.db.read() as s:
        found = lead_store.listing(s)
    seen = deps.desk.visible_channels(user, tuple(c.channel for _, c in found))
    lines = []
    for lead, conv in found:
        if conv.channel not in seen:
            continue
        where = f"<{deps.desk.link(conv.channel, conv.thread_ts)}|#{conv.id}>" if conv.thread_ts else f"#{conv.id}"
        name = clip_escaped(conv.customer_name, 80)
        label = lead_label(lead.stage, lead.value_minor, lead.currency)
        lines.append(f"• {where} {Platform(conv.platform).label} · {name} · {label}")
    return "*Leads*\n" + "\n".join(lines) if lines else "No leads yet. Mark one from its card or `@dmbridge lead`."


def export_asked(s: Session, user: str, conv: Conversation, now: float) -> str:
    """Queue the transcript's upload into the thread (audited: an export is a record leaving the desk)."""
    assert conv.id is not None
    audit_id = store.audit(s, conversation_id=conv.id, actor=user, action="export", detail="html transcript", now=now)
    outbox.enqueue(s, TranscriptUpload.asked(conv.id, audit_id, user), now)
    return f"The transcript of #{conv.id} is on its way into its thread."
