"""The tables. Every idempotency rule of dmbridge is a unique key here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

# What the retention job (bridge/store/retention.py) still has to prune: partial indexes, so each run reads
# only rows that still hold content, however much pruned history lies behind them.
UNPRUNED = {
    "slack_event": "payload <> '{}'",
    "outbox": "state = 'sent' AND payload <> '{}'",
    "inbound_event": "text <> ''",
    "audit": "action IN ('relay', 'template') AND detail <> ''",
}


def unpruned_index(table: str, *columns: str) -> Any:
    where = text(UNPRUNED[table])
    return Index(f"ix_{table}_unpruned", *columns, sqlite_where=where, postgresql_where=where)


class Conversation(SQLModel, table=True):
    """One customer conversation = one Slack thread. ``id`` is the short number shown as ``#id``."""

    __tablename__ = "conversation"
    __table_args__ = (
        UniqueConstraint("platform", "account", "remote_id", name="uq_conversation_remote"),
        UniqueConstraint("channel", "thread_ts", name="uq_conversation_thread"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str
    account: str
    remote_id: str
    customer_id: str
    customer_name: str
    customer_handle: str | None = None
    customer_avatar: str | None = None
    customer_profile_url: str | None = None
    channel: str
    thread_ts: str | None = None
    status: str = Field(default="open", index=True)  # open | snoozed | resolved
    assignee: str | None = None
    created_at: float
    last_inbound_at: float | None = None
    last_outbound_at: float | None = None
    assigned_at: float | None = None
    priority: str = "normal"  # low | normal | high | urgent
    team: str | None = None  # the team it is escalated to
    escalation_reason: str | None = None
    snoozed_until: float | None = Field(default=None, index=True)
    resolved_at: float | None = None
    sla_policy: str | None = None  # the policy that applied when last evaluated
    sla_kind: str | None = None  # the most urgent running clock
    sla_state: str | None = None  # on_track | warning | breached | paused
    sla_due_at: float | None = None
    sla_next_at: float | None = Field(default=None, index=True)  # when to evaluate again (the sweep's key)
    via: str | None = None  # how the customer last wrote where a platform has two ways: X "dm" | "xchat"
    inquiry_type: str | None = None  # a [[types]] name, set by an agent (or confirmed from the suggestion)
    suggested_type: str | None = None  # what the first message suggested, until confirmed or changed
    opted_out_at: float | None = None  # the customer asked for no automatic messages (welcome, away, CSAT)


class InboundEvent(SQLModel, table=True):
    """A platform message we have stored (customer's, or the brand's sent outside Slack)."""

    __tablename__ = "inbound_event"
    __table_args__ = (
        UniqueConstraint("platform", "account", "remote_id", name="uq_inbound_remote"),
        unpruned_index("inbound_event", "stored_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str
    account: str
    remote_id: str
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    from_brand: bool = False
    text: str = Field(sa_column=Column(Text, nullable=False))
    sent_at: float
    stored_at: float


class SlackEvent(SQLModel, table=True):
    """A Slack request we acknowledged. ``dedupe_key`` is ``msg:{channel}:{ts}`` for messages, else the event id."""

    __tablename__ = "slack_event"
    __table_args__ = (unpruned_index("slack_event", "processed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(unique=True)
    event_id: str | None = None
    kind: str
    payload: str = Field(sa_column=Column(Text, nullable=False))
    received_at: float
    processed_at: float | None = Field(default=None, index=True)
    outcome: str | None = None
    # set when processing raised something unforeseen: the event is then processed as ``failed`` (and skipped)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class Outbox(SQLModel, table=True):
    """One delivery to Slack or to a platform.

    ``lane`` orders deliveries: a row is sent only when no older row of its
    lane is still pending or sending. ``dedupe_key`` makes every enqueue
    idempotent. ``state``: pending → sending → sent | failed. ``claimed_by``
    names the process holding a ``sending`` row; ``uncertain`` marks a row
    whose last attempt ended without an answer (crash, timeout, reset).
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "target", "state", "next_attempt_at"),
        Index("ix_outbox_lane", "lane", "state", "id"),
        Index("ix_outbox_kind_state", "kind", "state"),  # the event processor's "is a card unsettled?"
        Index("ix_outbox_conversation", "conversation_id", "target", "state"),  # attempted_with_text
        Index("ix_outbox_claims", "state", "claimed_by", "claimed_at"),  # recovery's claim owners
        unpruned_index("outbox", "state", "created_at"),  # state: preferred to ix_outbox_claims,
    )

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(unique=True)
    target: str  # "slack" | "platform"
    lane: str
    kind: str
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id")
    payload: str = Field(sa_column=Column(Text, nullable=False))
    state: str = "pending"
    attempts: int = 0
    next_attempt_at: float = 0.0
    claimed_at: float | None = None
    claimed_by: str | None = None  # the instance id of the process that claimed it (see store/locks.py)
    uncertain: bool = False  # the last attempt may have reached the other side: verify before resending
    last_error: str | None = None
    result: str | None = None
    waiting_shown: bool = False
    created_at: float


class SentMessage(SQLModel, table=True):
    """A message dmbridge delivered to a platform; its id tells our echoes apart."""

    __tablename__ = "sent_message"
    __table_args__ = (UniqueConstraint("platform", "account", "remote_id", name="uq_sent_remote"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str
    account: str
    remote_id: str
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    slack_channel: str | None = None
    slack_ts: str | None = None
    sent_at: float


class Cursor(SQLModel, table=True):
    """Where a connector's poll left off, per account."""

    __tablename__ = "cursor"

    connector: str = Field(primary_key=True)
    account: str = Field(primary_key=True)
    value: str
    updated_at: float


class Template(SQLModel, table=True):
    """A saved reply; ``text`` uses the variables of ``bridge.templates``."""

    __tablename__ = "template"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    updated_by: str
    updated_at: float


class Audit(SQLModel, table=True):
    """Who did what to which conversation, and when."""

    __tablename__ = "audit"
    __table_args__ = (Index("ix_audit_conversation", "conversation_id", "at"), unpruned_index("audit", "at"))

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id")
    actor: str
    action: str  # assign | unassign | autoassign | template | escalate | deescalate | resolve | reopen | snooze | relay
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    at: float


class XOAuthToken(SQLModel, table=True):
    """X OAuth 2.0 user tokens of one app (``client_id``), written by ``dmbridge x-auth`` and each refresh.

    X rotates the refresh token on every refresh (the old one stops working), so a refresh writes the
    new pair in the transaction that holds the refresh lock; ``generation`` counts the refreshes."""

    __tablename__ = "x_oauth_token"

    client_id: str = Field(primary_key=True)
    access_token: str = Field(sa_column=Column(Text, nullable=False))
    refresh_token: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    expires_at: float
    scope: str = ""
    generation: int = 0
    updated_at: float


class XChatIdentity(SQLModel, table=True):
    """The brand account's X Chat identity: the private key blob sealed under ``DMBRIDGE_SECRET_KEY``
    (``bridge.x_chat_keys``); never stored in the clear."""

    __tablename__ = "x_chat_identity"

    user_id: str = Field(primary_key=True)
    key_version: str
    sealed: str = Field(sa_column=Column(Text, nullable=False))
    created_at: float


class XChatEvent(SQLModel, table=True):
    """An X Chat event stored sealed (webhook or reconciliation) until the opener decrypts it."""

    __tablename__ = "x_chat_event"
    __table_args__ = (
        UniqueConstraint("account", "event_id", name="uq_x_chat_event"),
        Index("ix_x_chat_event_due", "state", "next_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account: str
    event_id: str
    conversation: str
    encoded_event: str = Field(sa_column=Column(Text, nullable=False))
    state: str = "pending"  # pending | opened | failed
    attempts: int = 0
    next_at: float = 0.0
    error: str | None = None
    received_at: float


class XUsage(SQLModel, table=True):
    """What dmbridge asked of X's pay-per-use API in one UTC day, by kind (``bridge.x_costs``)."""

    __tablename__ = "x_usage"

    day: str = Field(primary_key=True)  # YYYY-MM-DD, UTC
    kind: str = Field(primary_key=True)  # events_read | read | send | chat_event
    count: int = 0


class TypeExample(SQLModel, table=True):
    """A conversation's first customer message and the inquiry type an agent confirmed for it: what the type
    suggestion (``bridge.inquiry``) learns from. One per conversation (a changed type replaces it)."""

    __tablename__ = "type_example"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(unique=True)  # no foreign key: erasing a conversation deletes its example
    text: str = Field(sa_column=Column(Text, nullable=False))  # capped (bridge.inquiry.MAX_TEXT)
    type: str
    confirmed_by: str
    created_at: float


class TemplateChoice(SQLModel, table=True):
    """An agent sent template ``template`` after the customer's message ``text``: the suggested replies'
    prior (``bridge.suggest``)."""

    __tablename__ = "template_choice"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))  # capped (bridge.suggest.MAX_MESSAGE)
    template: str
    created_at: float


class AutoReplySent(SQLModel, table=True):
    """An automatic message dmbridge sent on its own (welcome, away, acknowledgement, csat): the cooldown's record,
    and once delivered its platform id, which the SLA timeline leaves out (not an agent's answer)."""

    __tablename__ = "auto_reply"
    __table_args__ = (Index("ix_auto_reply_conversation", "conversation_id", "kind", "sent_at"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id")
    kind: str  # welcome | away | acknowledgement | csat
    key: str = Field(unique=True)  # the DM delivery's dedupe key
    sent_at: float
    remote_id: str | None = None


class CsatSurvey(SQLModel, table=True):
    """One satisfaction survey per resolution (``audit_id`` of the resolve) and the customer's answer."""

    __tablename__ = "csat"
    __table_args__ = (Index("ix_csat_conversation", "conversation_id", "asked_at"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id")
    audit_id: int = Field(unique=True)
    asked_at: float
    score: int | None = None
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    answered_at: float | None = None
    answer_id: str | None = None  # the answer's platform message id: left out of the SLA timeline


class Lead(SQLModel, table=True):
    """A conversation that is a sales lead (``bridge.leads``): its stage and value. ``value_minor`` is in the
    currency's minor units (cents; yen have none), an integer so sums are exact."""

    __tablename__ = "lead"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", unique=True)
    stage: str = "new"  # new | qualified | meeting | won | lost
    value_minor: int | None = Field(default=None, sa_type=BigInteger)
    currency: str | None = None  # ISO 4217, three capital letters
    created_at: float
    updated_at: float
    updated_by: str
