"""The DM playbook's deliveries (leads, records); ``bridge.deliveries.KINDS`` lists them with the rest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bridge.delivery_base import Delivery, Target


@dataclass(frozen=True)
class CrmPost(Delivery):
    """A lead's stage change handed to the CRM (``[crm]``): a signed JSON POST, retried; its receipt goes on the
    thread line (``receipt_key``, a ``Notice``) that announced the change. The transcript is read when sent."""

    stage: str
    value_minor: int | None
    currency: str | None
    by: str
    at: float
    receipt_key: str
    kind: ClassVar[str] = "crm_post"
    target: ClassVar[Target] = "platform"

    @property
    def lane(self) -> str:
        assert self.conversation_id is not None
        return f"k:{self.conversation_id}"  # its own lane: a slow CRM never holds up replies to the customer

    @classmethod
    def after_audit(
        cls,
        conversation_id: int,
        audit_id: int,
        stage: str,
        value: int | None,
        currency: str | None,
        by: str,
        at: float,
    ) -> CrmPost:
        return cls(
            f"crm:{conversation_id}:{audit_id}", conversation_id, stage, value, currency, by, at, f"line:{audit_id}"
        )


@dataclass(frozen=True)
class TranscriptUpload(Delivery):
    """``/dm export 12``: the conversation's HTML transcript (as stored then) uploaded into its thread."""

    requested_by: str
    name: str
    kind: ClassVar[str] = "transcript_upload"

    @classmethod
    def asked(cls, conversation_id: int, audit_id: int, requested_by: str) -> TranscriptUpload:
        return cls(
            f"transcript:{conversation_id}:{audit_id}",
            conversation_id,
            requested_by,
            f"conversation-{conversation_id}-transcript.html",
        )


@dataclass(frozen=True)
class AutoReplyDue(Delivery):
    """An automatic reply decided when a customer's message arrived from a platform that names them only later
    (Meta sends ids; the ``Profile`` lookup is queued ahead of this in the conversation's Slack lane). Sent when
    its turn comes, so ``{first_name}`` is the customer's name rather than "there"; the cooldown was recorded
    when it was decided (``auto_reply`` under this key until the DM takes it over)."""

    reply: str  # welcome | away | acknowledgement
    template: str
    values: dict[str, str]
    decided_at: float
    kind: ClassVar[str] = "auto_reply_due"

    @classmethod
    def after_profile(
        cls, conversation_id: int, source: str, reply: str, template: str, values: dict[str, str], now: float
    ) -> AutoReplyDue:
        return cls(f"autoreply:{conversation_id}:{source}", conversation_id, reply, template, values, now)
