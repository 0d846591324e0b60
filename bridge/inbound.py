"""Platform messages → stored events, conversations and Slack outbox rows (one transaction per batch)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlmodel import Session

from bridge import automatic, state, types_desk
from bridge.deliveries import AutoAssign, Card, Mirror, Profile, Upload
from bridge.domain import Batch, InboundMessage
from bridge.slack.blocks import SlackMessage, customer_text, slack_date
from bridge.slack.type_blocks import suggestion_actions
from bridge.store import conversations, events, outbox, playbook_types, x_chat
from bridge.store.db import Database
from bridge.store.tables import Conversation
from bridge.suggest import Suggester
from bridge.text import slack_escape
from bridge.toml_config import FileConfig

# A webhook echo of our own send can arrive before the send's result is recorded:
# a brand message's mirror waits this long and checks sent_message again when due.
ECHO_GRACE_SECONDS = 2.0
# a customer's message older than their newest one by more than this arrived out of order, and says so
LATE_SECONDS = 0.0
# shown instead of an X Chat message whose signature does not verify: never mirrored as the customer's words
UNVERIFIED = (
    ":warning: An X Chat message arrived in this conversation whose signature does not verify, so it may not "
    "be the customer's: it is not shown. Ask the customer to send it again if it matters."
)


def ingest(
    session: Session,
    connector: str,
    account: str,
    batch: Batch,
    channel_for: Callable[[str], str],
    now: float,
    auto_assign: bool = False,
    toml: FileConfig | None = None,
) -> int:
    """Store a poll's or webhook's messages, then its cursor. Returns how many were new.

    Our own sends coming back are recognised by their stored remote id, or
    while a send's outcome is not yet recorded by a matching attempted delivery,
    and dropped; anything else the brand sent (from the platform's own app) is
    mirrored with a label. A message seen before inserts nothing.
    """
    new = 0
    # the batch's existing conversations first, by id (bridge.store.conversations.lock): the messages below
    # come in the platform's order, and the event processor, deliveries and the SLA sweep write them too
    reads = BatchReads.of(session, batch.messages)
    for msg in batch.messages:
        if msg.from_brand and (str(msg.platform), msg.account, msg.remote_id) in reads.ours:
            continue
        if msg.from_brand and outbox.attempted_with_text(
            session, platform=msg.platform, account=msg.account, remote_conversation=msg.conversation, text=msg.text
        ):
            continue  # our own send whose outcome is not written yet (in flight, or cut short by a crash)
        if msg.from_brand and events.sent_by_us(session, msg.platform, msg.account, msg.remote_id):
            continue  # its outcome was written (by another process) since the batch was read
        if ingest_message(session, msg, channel_for(msg.account), now, auto_assign, toml, reads):
            new += 1
    for sealed in batch.sealed:  # X Chat: stored as received, opened later (bridge.pollers.Opener)
        if x_chat.store_sealed(session, sealed, now):
            new += 1
    if batch.cursor is not None:
        events.set_cursor(session, connector, account, batch.cursor, now)
    return new


def store_batch(
    db: Database,
    connector: str,
    batch: Batch,
    channel_for: Callable[[str], str],
    now: float,
    auto_assign: bool = False,
    toml: FileConfig | None = None,
) -> int:
    """Store a webhook delivery's messages in one transaction (before the 200 goes out)."""
    with db.session() as s:
        return ingest(s, connector, "", batch, channel_for, now, auto_assign, toml)


@dataclass
class BatchReads:
    """What a batch's ingest reads once for all its messages, where each message used to read it again (six
    statements a message, most of a poll's time on PostgreSQL): the messages stored already, the brand's
    messages that are our own sends, the batch's conversations (read and, on PostgreSQL, locked by id before
    anything is written), the template index."""

    known: set[tuple[str, str, str]]
    conversations: dict[conversations.RemoteKey, Conversation]
    ours: set[tuple[str, str, str]]
    """The brand's messages in the batch that we sent (our own sends coming back: not mirrored)."""
    _suggester: Suggester | None = None
    _suggester_read: bool = False

    @classmethod
    def of(cls, session: Session, messages: Sequence[InboundMessage]) -> BatchReads:
        known = _per_account(session, messages, events.inbound_known_among)
        ours = _per_account(session, [m for m in messages if m.from_brand], events.sent_among)
        loaded = conversations.load_remote(session, {(str(m.platform), m.account, m.conversation) for m in messages})
        return cls(known, loaded, ours)

    def suggest_templates(self, session: Session, text: str) -> Sequence[str]:
        """``playbook_types.suggest_templates``, the index read once per batch (the batch writes no template)."""
        if not self._suggester_read:
            self._suggester, self._suggester_read = playbook_types.suggester(session), True
        return [] if self._suggester is None else [x.name for x in self._suggester.rank(text, 3)]


def _per_account(
    session: Session,
    messages: Sequence[InboundMessage],
    among: Callable[[Session, str, str, list[str]], set[str]],
) -> set[tuple[str, str, str]]:
    """(platform, account, remote id) of the ``messages`` that ``among`` finds, asked once per account."""
    by_account: dict[tuple[str, str], list[str]] = {}
    for m in messages:
        by_account.setdefault((str(m.platform), m.account), []).append(m.remote_id)
    return {
        (platform, account, remote_id)
        for (platform, account), ids in by_account.items()
        for remote_id in among(session, platform, account, ids)
    }


def ingest_message(
    session: Session,
    msg: InboundMessage,
    channel: str,
    now: float,
    auto_assign: bool = False,
    toml: FileConfig | None = None,
    reads: BatchReads | None = None,
) -> bool:
    """Store one message; with ``toml`` (dmbridge.toml) a customer's may be a CSAT answer or an opt-out, or get
    an automatic reply (``bridge.automatic``). ``reads``: the batch's (``ingest``), else read here."""
    key = (str(msg.platform), msg.account, msg.remote_id)
    if key in reads.known if reads is not None else events.inbound_known(session, *key):
        return False
    conv, created = conversations.get_or_create(
        session,
        platform=msg.platform,
        account=msg.account,
        remote_id=msg.conversation,
        customer=msg.customer,
        channel=channel,
        now=now,
        loaded=reads.conversations if reads is not None else None,
    )
    assert conv.id is not None
    if not events.store_inbound(
        session,
        platform=msg.platform,
        account=msg.account,
        remote_id=msg.remote_id,
        conversation_id=conv.id,
        from_brand=msg.from_brand,
        text=msg.text,
        sent_at=msg.sent_at.timestamp(),
        now=now,
    ):
        return False
    if reads is not None:
        reads.known.add(key)
    if msg.needs_profile and not msg.from_brand:
        # before the card in the lane, so the card is drawn with the customer's real name
        outbox.enqueue(session, Profile.daily(conv.id, conv.customer_id, now), now)
    if created:
        outbox.enqueue(session, Card.of(conv.id), now)
    if created and auto_assign:
        outbox.enqueue(session, AutoAssign.first(conv.id), now)
    sent_at = msg.sent_at.timestamp()
    # a message that arrives after newer ones of the customer (its delivery was lost, reconciliation found it)
    # cannot be put back in its place in a thread: it says when it was sent instead
    late = not created and not msg.from_brand and sent_at < (conv.last_inbound_at or 0.0) - LATE_SECONDS
    if toml is not None and toml.types and not msg.from_brand and conv.last_inbound_at is None and msg.text.strip():
        types_desk.suggest_first(session, list(toml.types), conv, msg.text, now)  # the customer's first message
    previous_inbound = None if created else conv.last_inbound_at
    answered = automatic.survey_answer(session, toml, conv, msg, now) if toml is not None else None
    state.message_arrived(
        session,
        conv,
        from_brand=msg.from_brand,
        sent_at=sent_at,
        now=now,
        via=msg.via,
        source=msg.remote_id,
        reopen=answered is None,
    )
    label = (
        f"Sent by @{slack_escape(msg.account)} from the {msg.platform.label} app, outside Slack"
        if msg.from_brand
        else f"Sent {slack_date(sent_at, 'earlier')}: it reached dmbridge after the messages above"
        if late
        else None
    )
    if msg.unverified:  # a notice of the bot's own, never a post under the customer's name
        state.say(session, conv, ("unverified", msg.platform.value, msg.remote_id), UNVERIFIED, now)
        return True
    text = msg.text
    if msg.attachments:
        text += (
            "\n" if text else ""
        ) + f"[{len(msg.attachments)} attachment(s) — open the conversation on {msg.platform.label} to view]"
    source = (msg.platform.value, msg.account, msg.remote_id)
    parts = customer_text(text, label) if text.strip() or not msg.files else []  # files alone: no empty post
    if parts and not msg.from_brand and msg.text.strip():  # suggested replies under the (last part of the) message
        suggested = (
            reads.suggest_templates(session, msg.text)
            if reads is not None
            else playbook_types.suggest_templates(session, msg.text)
        )
        buttons = suggestion_actions(suggested)
        if buttons:
            parts[-1] = SlackMessage(parts[-1].text, [*parts[-1].blocks, buttons])
    for i, part in enumerate(parts):
        outbox.enqueue(
            session,
            Mirror.part(conv.id, source, i, part.text, part.blocks, msg.from_brand),
            now,
            not_before=now + ECHO_GRACE_SECONDS if msg.from_brand else 0.0,
        )
    for file in msg.files:  # copied into the thread after the text, in the conversation's Slack lane
        upload = Upload.of(
            conv.id,
            source,
            file.id,
            file.url,
            file.name,
            file_kind=file.kind,
            from_brand=msg.from_brand,
            size=file.size,
            private=file.private,
        )
        outbox.enqueue(session, upload, now, not_before=now + ECHO_GRACE_SECONDS if msg.from_brand else 0.0)
    if toml is not None:
        automatic.after_message(
            session, toml, conv, msg, created=created, previous_inbound=previous_inbound, answered=answered, now=now
        )
    return True
