"""Automatic messages, wired in: welcome/away/acknowledgement (``bridge.autoreply``), the CSAT survey and its
answer (``bridge.csat``), and the opt-out (``bridge.optout``).

Called in the transaction that stores a customer's message (``bridge.inbound``) and the one that resolves a
conversation (``bridge.desk``). What dmbridge sends goes out like an agent's template: a post in the thread
("dmbridge sent …", where the receipts go) and a ``DM`` through the outbox with ``author="dmbridge"``, whose
platform id is recorded in ``auto_reply`` so the SLA timeline does not take it for an agent's answer.
"""

from __future__ import annotations

from dataclasses import replace

from sqlmodel import Session

from bridge import autoreply, csat, optout, state, templates
from bridge.deliveries import DM, AutoReplyDue
from bridge.domain import InboundMessage, Platform
from bridge.sla import Kind
from bridge.store import desk as desk_store
from bridge.store import outbox, replies
from bridge.store.tables import AutoReplySent, Conversation, CsatSurvey
from bridge.text import slack_escape
from bridge.toml_config import FileConfig
from bridge.when import parse_duration

AUTHOR = "dmbridge"
QUICK_REPLIES = (Platform.MESSENGER, Platform.INSTAGRAM)
"""Platforms whose survey offers 1–5 as quick replies, and X conversations held in X Chat (``via``); the others
(legacy X DMs, generic sources) send the question's text alone."""

Answered = tuple[CsatSurvey, csat.Answer]


def survey_answer(s: Session, file: FileConfig, conv: Conversation, msg: InboundMessage, now: float) -> Answered | None:
    """The customer's message answers the conversation's open survey within ``[csat] window``: it must not reopen."""
    if msg.from_brand or msg.unverified or conv.id is None or not file.csat.accounts:
        return None  # (without [csat] no survey is ever sent: no query per message)
    survey = replies.open_survey(s, conv.id)
    if survey is None or survey.id is None or now - survey.asked_at > parse_duration(file.csat.window):
        return None
    answer = csat.parse(msg.text, msg.quick_reply, survey.id)
    return None if answer is None else (survey, answer)


def after_message(
    s: Session,
    file: FileConfig,
    conv: Conversation,
    msg: InboundMessage,
    *,
    created: bool,
    previous_inbound: float | None,
    answered: Answered | None,
    now: float,
) -> None:
    """After a customer's message is stored and mirrored: record a survey's score, an opt-out, or answer it."""
    if msg.from_brand or msg.unverified or conv.id is None:
        return
    if answered is not None:
        _record_score(s, conv, msg, *answered, now)
        return
    if conv.opted_out_at is None and optout.is_opt_out(msg.text, file.opt_out.words):
        state.opted_out(s, conv, now)
        return
    if not file.auto_replies:
        return
    policy = next(
        (p for p in file.policies() if p.applies(conv.platform, conv.account, conv.priority, conv.inquiry_type)), None
    )
    hours = policy.hours if policy is not None else None
    facts = autoreply.Facts(
        platform=conv.platform,
        account=conv.account,
        inquiry_type=conv.inquiry_type,
        now=now,
        new=created,
        previous_inbound=previous_inbound,
        agent_answered=conv.last_outbound_at,
        opted_out=conv.opted_out_at is not None,
        last_sent=replies.last_sent(s, conv.id),
    )
    rule = autoreply.decide(file.auto_replies, facts, hours)
    if rule is None:
        return
    first = next((t.seconds for t in policy.targets if t.kind is Kind.FIRST_RESPONSE), None) if policy else None
    extra = autoreply.values(hours, first, now, file.timezone)
    later = f"{msg.platform.value}:{msg.remote_id}" if msg.needs_profile else None
    _send(s, file, conv, rule.kind, rule.template, now, extra, wait_for_profile=later)


def send_due(s: Session, file: FileConfig, conv: Conversation, due: AutoReplyDue, now: float) -> None:
    """An automatic reply whose turn has come in the conversation's Slack lane (the profile lookup queued ahead
    of it has settled): sent with the name now known, unless an agent answered or the customer opted out since."""
    record = replies.pending(s, due.key)
    if record is None:  # sent by an earlier attempt of this row
        return
    if conv.opted_out_at is not None or (conv.last_outbound_at or 0.0) > due.decided_at:
        replies.settle(s, record, None)
        return
    _send(s, file, conv, due.reply, due.template, now, dict(due.values), pending=record)


def on_resolved(s: Session, file: FileConfig, conv: Conversation, audit_id: int, now: float) -> None:
    """The survey for this resolution, once, where ``[csat] accounts`` lists the account and the customer has not
    opted out."""
    if conv.id is None or conv.account not in file.csat.accounts or conv.opted_out_at is not None:
        return
    survey = replies.add_survey(s, conv.id, audit_id, now)
    if survey is None or survey.id is None:
        return
    options = csat.quick_replies(survey.id) if conv.platform in QUICK_REPLIES or conv.via == "xchat" else ()
    _deliver(s, conv, "csat", "the satisfaction survey", file.csat.question, now, options)


def _record_score(
    s: Session, conv: Conversation, msg: InboundMessage, survey: CsatSurvey, answer: csat.Answer, now: float
) -> None:
    survey.score, survey.comment, survey.answered_at = answer.score, answer.comment or None, now
    survey.answer_id = msg.remote_id
    s.add(survey)
    comment = f": “{slack_escape(answer.comment)}”" if answer.comment else ""
    state.changed(
        s,
        conv,
        actor="customer",
        action="csat",
        detail=f"{answer.score} {answer.comment}".strip(),
        now=now,
        line=f"The customer rated this conversation {csat.stars(answer.score)}{comment}",
    )


def _send(
    s: Session,
    file: FileConfig,
    conv: Conversation,
    kind: str,
    name: str,
    now: float,
    extra: dict[str, str],
    *,
    wait_for_profile: str | None = None,
    pending: AutoReplySent | None = None,
) -> None:
    """Render and send the template ``name``; with ``wait_for_profile`` (the message's source) and the customer's
    name not known yet, queue it as an ``AutoReplyDue`` behind the profile lookup instead; ``pending``: the
    record of such a reply, now sent."""
    assert conv.id is not None
    row = desk_store.get_template(s, name)
    if row is None:
        if pending is not None:
            replies.settle(s, pending, None)
        state.say(
            s,
            conv,
            ("autoreply_missing", conv.id, kind),
            f":warning: The automatic *{kind}* reply was not sent: there is no template `{slack_escape(name)}` "
            f"(dmbridge.toml `[[auto_replies]]`). Save it with `/dm template add {slack_escape(name)} …`.",
            now,
        )
        return
    # a platform that sends only the customer's id (Meta) names them through the profile lookup queued with
    # the message: wait for it; if it found nothing, "Hi there"
    known = conv.customer_name and conv.customer_name != conv.customer_id
    if not known and wait_for_profile is not None:
        due = AutoReplyDue.after_profile(conv.id, wait_for_profile, kind, name, extra, now)
        outbox.enqueue(s, due, now)
        replies.record(s, conv.id, kind, due.key, now)
        return
    values = templates.TemplateContext(
        customer_name=conv.customer_name if known else "there",
        customer_handle=conv.customer_handle,
        agent_name=file.brand,
        platform=Platform(conv.platform).label,
        conversation=conv.id,
        brand=file.brand,
        **extra,
    ).values()
    _deliver(
        s,
        conv,
        kind,
        f"the automatic *{kind}* reply (template *{slack_escape(name)}*)",
        templates.render(row.text, values),
        now,
        pending=pending,
    )


def _deliver(
    s: Session,
    conv: Conversation,
    kind: str,
    what: str,
    text: str,
    now: float,
    options: tuple[tuple[str, str], ...] = (),
    pending: AutoReplySent | None = None,
) -> None:
    """A post in the thread and the DM to the customer, as a template goes (receipts on the post)."""
    assert conv.id is not None
    # audited as a template by dmbridge: retention prunes its text like any template's
    audit_id = desk_store.audit(s, conversation_id=conv.id, actor=AUTHOR, action="template", detail=text, now=now)
    quoted = "\n".join("> " + line for line in slack_escape(text).splitlines()) or ">"
    buttons = f"\n_Buttons: {' · '.join(slack_escape(t) for t, _ in options)}_" if options else ""
    posts = state.template_posts(conv.id, audit_id, f":robot_face: dmbridge sent {what}:\n{quoted}{buttons}")
    for post in posts:
        outbox.enqueue(s, post, now)
    dm = replace(DM.template(conv.id, posts[0], text, AUTHOR, conv.channel), options=options)
    outbox.enqueue(s, dm, now)
    if pending is not None:
        replies.settle(s, pending, dm.key)
    else:
        replies.record(s, conv.id, kind, dm.key, now)
