"""What the outbox delivers: a closed set of typed deliveries.

Each delivery is a frozen dataclass that owns its dedupe key (built by its named constructors, the only place
key strings are formatted), its lane (the order it keeps with its neighbours) and its target (the loop that sends
it). ``bridge.store.outbox.enqueue`` stores one; ``outbox.decode`` turns a stored row back into its type, and the
delivery loops ``match`` on it.

A row's columns hold ``kind``, ``dedupe_key``, ``lane``, ``target`` and ``conversation_id``; ``payload`` holds the
remaining fields as JSON, validated on the way in and out (pydantic ``TypeAdapter``). Payloads are the same as
before the types existed, so rows queued by an older release decode.

Lanes: ``s:{conversation}`` the Slack side of a conversation (card, mirrors, uploads, notices, receipts, and the
profile refresh that precedes the card), ``p:{conversation}`` its platform side (replies), ``c:{channel}`` channel
notices, ``e:{user}`` ephemerals, ``h:{user}`` App Home, ``d:{conversation}`` erasure's deletions.
The base classes are in ``bridge.delivery_base``; the DM playbook's in ``bridge.deliveries_playbook`` (lane
``k:{conversation}``: a conversation's CRM hand-offs, in order, never holding up its replies).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from bridge.deliveries_playbook import AutoReplyDue, CrmPost, TranscriptUpload
from bridge.delivery_base import OK as OK
from bridge.delivery_base import WAITING as WAITING
from bridge.delivery_base import WARNING as WARNING
from bridge.delivery_base import Cause as Cause
from bridge.delivery_base import Delivery as Delivery
from bridge.delivery_base import Source as Source
from bridge.delivery_base import Target as Target
from bridge.delivery_base import cause_key as cause_key
from bridge.delivery_base import platform_lane as platform_lane
from bridge.delivery_base import slack_lane as slack_lane
from bridge.domain import AgentFile

# --------------------------------------------------------------------------------------------- conversation threads


@dataclass(frozen=True)
class Card(Delivery):
    """The conversation's header card: the thread's root, posted once."""

    kind: ClassVar[str] = "card"

    @classmethod
    def of(cls, conversation_id: int) -> Card:
        return cls(f"card:{conversation_id}", conversation_id)


@dataclass(frozen=True)
class CardUpdate(Delivery):
    """Redraw the header card (status, assignee, SLA, name changed)."""

    reopened: bool = False
    kind: ClassVar[str] = "card_update"

    @classmethod
    def after(cls, conversation_id: int, cause: Cause, reopened: bool = False) -> CardUpdate:
        """One redraw per ``cause`` (an SLA moment, a profile refresh, a snooze's end)."""
        return cls(f"card_update:{cause_key(cause)}", conversation_id, reopened)

    @classmethod
    def after_audit(cls, conversation_id: int, audit_id: int, reopened: bool = False) -> CardUpdate:
        return cls.after(conversation_id, (conversation_id, audit_id), reopened)


@dataclass(frozen=True)
class AutoAssign(Delivery):
    """Round robin for a conversation: the Slack loop asks the roster, then the desk decides."""

    skip: str = ""
    kind: ClassVar[str] = "autoassign"

    @classmethod
    def first(cls, conversation_id: int) -> AutoAssign:
        return cls(f"autoassign:{conversation_id}", conversation_id)

    @classmethod
    def again(cls, conversation_id: int, skip: str, moment: float) -> AutoAssign:
        """A reassignment (an SLA breach) that passes over ``skip``."""
        return cls(f"reassign:{conversation_id}:{moment:.6f}", conversation_id, skip)


@dataclass(frozen=True)
class Mirror(Delivery):
    """One part of a customer's (or the brand's own) message, posted in the thread."""

    text: str
    blocks: list[dict[str, Any]]
    from_brand: bool = False
    echo_of: Source | None = None
    kind: ClassVar[str] = "mirror"

    @classmethod
    def part(
        cls, conversation_id: int, source: Source, index: int, text: str, blocks: list[dict[str, Any]], from_brand: bool
    ) -> Mirror:
        """Part ``index`` of message ``source``; a brand message carries it as ``echo_of`` so our own sends seen
        again are not mirrored."""
        platform, account, remote_id = source
        echo = source if from_brand else None
        return cls(f"mirror:{platform}:{account}:{remote_id}:{index}", conversation_id, text, blocks, from_brand, echo)

    def payload(self) -> dict[str, Any]:
        data = super().payload()
        if data["echo_of"] is None:
            del data["echo_of"]
        else:
            data["echo_of"] = list(data["echo_of"])
        return data


@dataclass(frozen=True)
class Notice(Delivery):
    """A line from dmbridge in the conversation's thread (one part of it, when long)."""

    text: str
    kind: ClassVar[str] = "notice"

    @classmethod
    def parts(cls, conversation_id: int, cause: Cause, parts: list[str]) -> list[Self]:
        """The parts of one notice, keyed by what caused it (``("line", audit_id)``, ``("wake", id, until)``…):
        the first part by the cause, the others add ``:partN``."""
        key = cause_key(cause)
        return [cls(key if i == 0 else f"{key}:part{i + 1}", conversation_id, part) for i, part in enumerate(parts)]


@dataclass(frozen=True)
class TemplatePost(Notice):
    """A template sent to the customer, shown in the thread; its receipts go on this post."""

    kind: ClassVar[str] = "template_post"


@dataclass(frozen=True)
class Reaction(Delivery):
    """A receipt on the agent's message: ✅ delivered, ⏳ waiting, ⚠️ not delivered."""

    channel: str
    ts: str
    name: str
    kind: ClassVar[str] = "react"

    @classmethod
    def on(cls, conversation_id: int, channel: str, ts: str, name: str) -> Reaction:
        return cls(f"{cls.kind}:{name}:{channel}:{ts}", conversation_id, channel, ts, name)


@dataclass(frozen=True)
class Unreaction(Reaction):
    kind: ClassVar[str] = "unreact"


# ----------------------------------------------------------------------------------------------- outside a thread


@dataclass(frozen=True)
class ChannelNotice(Delivery):
    """A top-level message in a channel (escalations, credential trouble, membership hints)."""

    channel: str
    text: str
    kind: ClassVar[str] = "channel_notice"

    @property
    def lane(self) -> str:
        return f"c:{self.channel}"

    @classmethod
    def escalation(cls, conversation_id: int, audit_id: int, channel: str, text: str) -> ChannelNotice:
        return cls(f"escalation:{audit_id}", conversation_id, channel, text)

    @classmethod
    def credential(cls, about: str, since: float, working: bool, channel: str, text: str) -> ChannelNotice:
        """Once per incident: when ``about``'s credential was refused (since ``since``) or works again."""
        return cls(f"auth:{about}:{int(since)}:{'ok' if working else 'refused'}", None, channel, text)

    @classmethod
    def not_in_channel(cls, missing: str, channel: str, text: str) -> ChannelNotice:
        """Once per channel the bot is missing from, posted in ``channel`` (the inbox)."""
        return cls(f"not_in_channel:{missing}", None, channel, text)


@dataclass(frozen=True)
class Ephemeral(Delivery):
    """An answer only ``user`` sees."""

    channel: str
    user: str
    text: str
    thread_ts: str | None = None
    kind: ClassVar[str] = "ephemeral"

    @property
    def lane(self) -> str:
        return f"e:{self.user}"

    @classmethod
    def to(cls, channel: str, user: str, text: str, thread_ts: str | None = None) -> Ephemeral:
        return cls(f"eph:{uuid.uuid4().hex}", None, channel, user, text, thread_ts)


@dataclass(frozen=True)
class Home(Delivery):
    """Publish ``user``'s App Home."""

    user: str
    kind: ClassVar[str] = "home"

    @property
    def lane(self) -> str:
        return f"h:{self.user}"

    @classmethod
    def refresh(cls, user: str, cause: Cause) -> Home:
        return cls(f"home:{user}:{cause_key(cause)}", None, user)


@dataclass(frozen=True)
class Delete(Delivery):
    """Delete one bot message (erasure, ``dmbridge forget``)."""

    channel: str
    ts: str
    kind: ClassVar[str] = "delete"

    @property
    def lane(self) -> str:
        assert self.conversation_id is not None
        return f"d:{self.conversation_id}"

    @classmethod
    def message(cls, conversation_id: int, channel: str, ts: str) -> Delete:
        return cls(f"delete:{channel}:{ts}", conversation_id, channel, ts)


# --------------------------------------------------------------------------------------------------- platform side


@dataclass(frozen=True)
class DM(Delivery):
    """One part of a reply to the customer; receipts go on the Slack message it came from."""

    text: str
    part: int
    parts: int
    slack_channel: str
    slack_ts: str | None
    author: str
    receipt_key: str | None = None
    """For a template: the key of the :class:`TemplatePost` whose ts carries the receipts."""
    file: AgentFile | None = None
    """A file the agent attached, sent with this part (``text`` may then be "")."""
    options: tuple[tuple[str, str], ...] = ()
    """Quick replies (title, payload) offered with the text: the CSAT survey's 1–5."""
    kind: ClassVar[str] = "dm"
    target: ClassVar[Target] = "platform"

    @property
    def lane(self) -> str:
        assert self.conversation_id is not None
        return platform_lane(self.conversation_id)

    @classmethod
    def relay(
        cls,
        conversation_id: int,
        channel: str,
        ts: str,
        parts: list[str],
        author: str,
        files: tuple[AgentFile, ...] = (),
        with_text: bool = False,
    ) -> list[DM]:
        """The parts of an agent's thread reply: the text's, then one per file; ``with_text`` puts the first
        file on the last text part (a platform whose message carries text and one file)."""
        plan: list[tuple[str, AgentFile | None]] = [(text, None) for text in parts]
        rest = list(files)
        if with_text and plan and rest:
            plan[-1] = (plan[-1][0], rest.pop(0))
        plan += [("", file) for file in rest]
        return [
            cls(cls._relay_key(channel, ts, i), conversation_id, text, i, len(plan), channel, ts, author, file=file)
            for i, (text, file) in enumerate(plan)
        ]

    @classmethod
    def template(cls, conversation_id: int, post: TemplatePost, text: str, author: str, channel: str) -> DM:
        return cls(f"{post.key}:0", conversation_id, text, 0, 1, channel, None, author, post.key)

    @staticmethod
    def _relay_key(channel: str, ts: str, part: int) -> str:
        return f"relay:{channel}:{ts}:{part}"

    @classmethod
    def first_relay_key(cls, channel: str, ts: str) -> str:
        """The key of the first part relayed from Slack message ``ts`` (whether it was relayed at all)."""
        return cls._relay_key(channel, ts, 0)

    @property
    def relayed_message(self) -> tuple[str, str] | None:
        """The Slack message (channel, ts) this reply was relayed from; None for a template."""
        return None if self.receipt_key is not None or self.slack_ts is None else (self.slack_channel, self.slack_ts)

    def later_parts(self) -> list[str]:
        """The keys of the parts after this one (they must not arrive without it)."""
        if self.relayed_message is None:
            return []
        channel, ts = self.relayed_message
        return [self._relay_key(channel, ts, i) for i in range(self.part + 1, self.parts)]

    def receipt(self, ts: str | None, name: str) -> Reaction | None:
        """The receipt ``name`` on the Slack message this reply came from (None when there is none)."""
        if ts is None:
            return None
        assert self.conversation_id is not None
        return Reaction.on(self.conversation_id, self.slack_channel, ts, name)


@dataclass(frozen=True)
class Upload(Delivery):
    """A customer's photo, video or file copied into the thread (``bridge.slack.files``), after the message's text."""

    url: str
    name: str
    file_kind: str
    from_brand: bool = False
    size: int | None = None
    private: bool = False
    """Read through the platform's connector (``InboundFile.private``), not fetched from ``url`` directly."""
    kind: ClassVar[str] = "upload"

    @classmethod
    def of(cls, conversation_id: int, source: Source, file_id: str, url: str, name: str, **more: Any) -> Upload:
        """Keyed by the platform's media id (``InboundFile.id``): a redelivered message uploads nothing twice."""
        return cls(f"upload:{source[0]}:{source[1]}:{file_id}", conversation_id, url, name, **more)


@dataclass(frozen=True)
class Profile(Delivery):
    """Refresh the customer's name and avatar from the platform, at most daily, before the card is drawn."""

    customer_id: str
    kind: ClassVar[str] = "profile"
    target: ClassVar[Target] = "platform"

    @classmethod
    def daily(cls, conversation_id: int, customer_id: str, now: float) -> Profile:
        return cls(f"profile:{conversation_id}:{int(now // 86400)}", conversation_id, customer_id)


UNTHREADED: tuple[type[Delivery], ...] = (ChannelNotice, Ephemeral, Home, Delete)
"""Deliveries that need no conversation row to be sent."""
_THREADED = (Card, CardUpdate, AutoAssign, Mirror, Notice, TemplatePost, Reaction, Unreaction, Upload)
KINDS: dict[str, type[Delivery]] = {
    cls.kind: cls for cls in _THREADED + UNTHREADED + (DM, Profile, CrmPost, TranscriptUpload, AutoReplyDue)
}
POSTS: tuple[type[Card | Mirror | Notice | ChannelNotice], ...] = (Card, Mirror, Notice, ChannelNotice)
"""Deliveries that post a message (TemplatePost is a Notice): a lost answer is looked for before resending."""
