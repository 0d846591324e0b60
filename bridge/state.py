"""The one writer of conversation state.

Every change to a ``conversation`` row is made here, in the caller's
transaction; nothing here calls Slack or a platform. A change the team should
see (``changed``) writes, once and together: the SLA touch, the audit row,
the header card's redraw, the line in the thread and the App Home refreshes
of the people concerned. The callers:

- ``inbound`` — ``message_arrived`` (the customer or the brand wrote; a
  resolved or snoozed conversation reopens);
- ``thread_messages`` and the desk's templates — ``reply_queued``;
- the platform runner — ``reply_delivered``; the Slack runner — ``card_posted``;
- profile refreshes — ``profile_changed``; the SLA runner — ``sla_evaluated``
  and ``unassigned_after_breach``;
- the desk — ``changed`` for every action, ``snooze_over``;
- the type suggestion on a first message (``bridge.types_desk``) — ``type_suggested``.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session

from bridge.deliveries import AutoAssign, CardUpdate, Cause, Home, Notice, TemplatePost
from bridge.domain import Customer
from bridge.slack.blocks import notice_parts
from bridge.store import desk as store
from bridge.store import outbox
from bridge.store.tables import Conversation


def changed(
    s: Session,
    conv: Conversation,
    *,
    actor: str,
    action: str,
    detail: str,
    line: str,
    now: float,
    homes: Iterable[str] = (),
    reopened: bool = False,
) -> int:
    """Record an action on ``conv`` (already applied to the row): audit, card redraw, thread line, App Homes.
    Returns the audit id."""
    assert conv.id is not None
    store.sla_touch(conv, now)
    s.add(conv)
    audit_id = store.audit(s, conversation_id=conv.id, actor=actor, action=action, detail=detail, now=now)
    outbox.enqueue(s, CardUpdate.after_audit(conv.id, audit_id, reopened=reopened), now)
    say(s, conv, ("line", audit_id), line, now)
    for user in dict.fromkeys([actor, *homes, *([conv.assignee] if conv.assignee else [])]):
        if user.startswith(("U", "W")):  # people, not "customer" or "dmbridge"
            refresh_home(s, user, (audit_id,), now)
    return audit_id


def say(s: Session, conv: Conversation, cause: Cause, text: str, now: float) -> None:
    """A line in the conversation's thread; a long one goes as several messages, in order, nothing cut."""
    assert conv.id is not None
    for part in Notice.parts(conv.id, cause, notice_parts(text)):
        outbox.enqueue(s, part, now)


def template_posts(conversation_id: int, audit_id: int, text: str) -> list[TemplatePost]:
    """How a template sent to the customer shows in the thread: one post, or several when long (the receipts
    go on the first)."""
    return TemplatePost.parts(conversation_id, ("tpl", audit_id), notice_parts(text))


def refresh_home(s: Session, user: str, cause: Cause, now: float) -> None:
    outbox.enqueue(s, Home.refresh(user, cause), now)


def message_arrived(
    s: Session,
    conv: Conversation,
    *,
    from_brand: bool,
    sent_at: float,
    now: float,
    via: str = "",
    source: str = "",
    reopen: bool = True,
) -> None:
    """A message in the conversation on the platform: the SLA clocks change; the customer's reopens it. ``via``:
    the way the customer wrote (X: ``dm`` or ``xchat``; replies go back that way), ``source`` its remote id;
    ``reopen=False``: an answer to a CSAT survey, which leaves a resolved conversation resolved."""
    store.sla_touch(conv, now)
    s.add(conv)
    if from_brand:
        return
    if via and via != conv.via:
        conv.via = via
        if conv.thread_ts and conv.id is not None:  # the card shows the way: redrawn (a card to come is drawn so)
            outbox.enqueue(s, CardUpdate.after(conv.id, ("via", conv.id, via, source)), now)
    # the platform's time of the message: messaging windows count from it, not from our receipt
    conv.last_inbound_at = max(conv.last_inbound_at or 0.0, min(sent_at, now))
    if conv.status != "open" and reopen:  # resolved or snoozed: the customer wrote again
        was = conv.status
        conv.status, conv.snoozed_until, conv.resolved_at = "open", None, None
        changed(
            s,
            conv,
            actor="customer",
            action="reopen",
            detail=f"was {was}",
            now=now,
            reopened=True,
            line=f"The customer wrote again: this conversation was {was} and is open again."
            + (f" <@{conv.assignee}>" if conv.assignee else ""),
        )


def type_suggested(s: Session, conv: Conversation, kind: str, now: float) -> None:
    """The first customer message suggests an inquiry type (``bridge.types_desk``): on the row and the card
    (a card still to be posted is drawn with it)."""
    conv.suggested_type = kind
    s.add(conv)
    if conv.thread_ts and conv.id is not None:
        outbox.enqueue(s, CardUpdate.after(conv.id, ("type", conv.id, kind)), now)


def opted_out(s: Session, conv: Conversation, now: float) -> None:
    """The customer asked for no automatic messages (``[opt_out] words``): audited, on the card, said."""
    conv.opted_out_at = now
    changed(
        s,
        conv,
        actor="customer",
        action="opt_out",
        detail="",
        now=now,
        line="The customer opted out of automatic messages (welcome, away, CSAT). Agents can still answer.",
    )


def reply_queued(s: Session, conv: Conversation, now: float, author: str | None = None, text: str = "") -> None:
    """An agent's reply (``author`` wrote ``text``, audited) or a template is on its way to the customer."""
    conv.last_outbound_at = now
    s.add(conv)
    if author is not None:
        store.audit(s, conversation_id=conv.id, actor=author, action="relay", detail=text, now=now)


def reply_delivered(s: Session, conversation_id: int, now: float) -> None:
    """The platform took an agent's reply: the SLA clocks change."""
    conv = s.get(Conversation, conversation_id)
    if conv is not None:
        store.sla_touch(conv, now)
        s.add(conv)


def card_posted(s: Session, conversation_id: int, ts: str) -> None:
    """The header card is in Slack: its ts is the thread (set once; a later answer for the same card changes
    nothing)."""
    conv = s.get(Conversation, conversation_id)
    if conv is not None and conv.thread_ts is None:
        conv.thread_ts = ts
        s.add(conv)


def profile_changed(s: Session, conversation_id: int, customer: Customer, cause: Cause, now: float) -> bool | None:
    """The platform's profile of the customer: True when what the card shows changed (redrawn), None when the
    conversation is gone."""
    conv = s.get(Conversation, conversation_id)
    if conv is None or conv.id is None:
        return None
    shown = (conv.customer_name, conv.customer_handle, conv.customer_avatar, conv.customer_profile_url)
    conv.customer_name = customer.name or conv.customer_name
    conv.customer_handle = customer.handle or conv.customer_handle
    conv.customer_avatar = customer.avatar_url or conv.customer_avatar
    conv.customer_profile_url = customer.profile_url or conv.customer_profile_url
    s.add(conv)
    different = shown != (conv.customer_name, conv.customer_handle, conv.customer_avatar, conv.customer_profile_url)
    if different and conv.thread_ts:
        outbox.enqueue(s, CardUpdate.after(conv.id, cause), now)
    return different


def sla_evaluated(
    s: Session,
    conv: Conversation,
    *,
    policy: str | None,
    state: str | None,
    kind: str | None,
    due: float | None,
    next_at: float | None,
    now: float,
) -> None:
    """The SLA runner's evaluation; the card is redrawn when what it shows changed."""
    different = (conv.sla_policy, conv.sla_state, conv.sla_kind, conv.sla_due_at) != (policy, state, kind, due)
    conv.sla_policy, conv.sla_state, conv.sla_kind, conv.sla_due_at = policy, state, kind, due
    conv.sla_next_at = next_at
    s.add(conv)
    if different and conv.thread_ts:
        assert conv.id is not None
        outbox.enqueue(s, CardUpdate.after(conv.id, (conv.id, "sla", f"{now:.6f}")), now)


def unassigned_after_breach(s: Session, conv: Conversation, policy: str, what: str, now: float) -> None:
    """An SLA breach whose policy reassigns: unassign, say so, and let round robin pick someone else."""
    assert conv.id is not None
    previous = conv.assignee
    conv.assignee, conv.assigned_at = None, None
    changed(
        s,
        conv,
        actor="dmbridge",
        action="unassign",
        detail=f"SLA {policy}: {what} breached",
        now=now,
        homes=[previous] if previous else [],
        line="Reassigning: the SLA was breached." + (f" (was <@{previous}>)" if previous else ""),
    )
    outbox.enqueue(s, AutoAssign.again(conv.id, previous or "", now), now)


def snooze_over(s: Session, conv: Conversation, now: float) -> bool:
    """snoozed → open once its time is up, whichever process gets there first; the assignee is reminded."""
    assert conv.id is not None and conv.snoozed_until is not None
    if not store.wake(s, conv.id, conv.snoozed_until):
        return False
    s.refresh(conv)
    who = f"<@{conv.assignee}>" if conv.assignee else "Unassigned —"
    changed(
        s,
        conv,
        actor="dmbridge",
        action="reopen",
        detail="snooze over",
        now=now,
        line=f"{who} the snooze is over: this conversation is open again.",
    )
    return True
