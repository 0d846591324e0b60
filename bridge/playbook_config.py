"""``dmbridge.toml``'s playbook tables: inquiry types, automatic replies, CSAT, the CRM hand-off, opt-out words
and the weekly digest (README, "The DM playbook"). Checked at load like the rest of the file; no secrets here
(the CRM's signing secret is named by the environment variable that holds it)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from bridge.config_keys import TomlTable
from bridge.when import parse_duration

TYPE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,23}$")
EMOJI = re.compile(r"^:[a-z0-9_+-]{1,40}:$")
PRIORITIES = ("low", "normal", "high", "urgent")
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# "STOP" and its kin in the languages our customers write most; matched as the whole message, any case.
DEFAULT_OPT_OUT = (
    "stop", "unsubscribe", "stop all", "opt out", "optout", "cancel", "end", "quit",  # en
    "baja", "darme de baja", "no más", "no mas",  # es
    "arrêt", "arret", "désabonner", "desabonner", "stop pub",  # fr
    "abmelden", "abbestellen", "stopp",  # de
    "parar", "sair", "cancelar",  # pt
    "basta", "disiscrivimi",  # it
    "afmelden",  # nl
    "停止", "配信停止", "取消订阅", "退订",  # ja, zh
)  # fmt: skip


class InquiryType(TomlTable):
    """One ``[[types]]`` entry: a kind of inquiry, with its own SLA (``[[sla]] types``) and suggestion rules."""

    name: str
    emoji: str = ":speech_balloon:"
    priority: Literal["low", "normal", "high", "urgent"] | None = None
    """Set on the conversation when the type is confirmed (a complaint is high priority, say)."""
    keywords: list[str] = Field(default_factory=list)
    """Words or phrases that suggest this type on a first message (any case, whole words)."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not TYPE_NAME.match(value):
            raise ValueError(f"type name {value!r}: lower-case letters, digits, - and _, at most 24")
        return value

    @field_validator("emoji")
    @classmethod
    def _emoji(cls, value: str) -> str:
        if not EMOJI.match(value):
            raise ValueError(f"emoji {value!r}: a Slack emoji code like :moneybag:")
        return value


DEFAULT_TYPES = (
    InquiryType(name="service", emoji=":wrench:", keywords=["order", "delivery", "refund", "broken", "help"]),
    InquiryType(name="sales", emoji=":moneybag:", keywords=["price", "buy", "discount", "available", "stock"]),
    InquiryType(name="complaint", emoji=":rage:", priority="high", keywords=["complaint", "terrible", "angry"]),
    InquiryType(name="general", emoji=":speech_balloon:"),
)


class AutoReply(TomlTable):
    """One ``[[auto_replies]]`` entry: a saved template sent by dmbridge on its own, where the filters match."""

    kind: Literal["welcome", "away", "acknowledgement"]
    template: str
    platforms: list[str] = Field(default_factory=list)
    accounts: list[str] = Field(default_factory=list)
    types: list[str] = Field(default_factory=list)
    cooldown: str = "24h"
    """At most one of this kind per conversation within this time."""
    after_silence: str | None = None
    """welcome only: greet again when the customer writes after this long without a message."""

    @field_validator("cooldown", "after_silence")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _silence_is_for_welcomes(self) -> AutoReply:
        if self.after_silence is not None and self.kind != "welcome":
            raise ValueError('after_silence applies to kind = "welcome" only')
        return self

    def seconds(self, name: Literal["cooldown", "after_silence"]) -> float | None:
        value = getattr(self, name)
        return None if value is None else parse_duration(value)


class Csat(TomlTable):
    """``[csat]``: a short survey after a conversation is resolved, for the listed accounts."""

    accounts: list[str] = Field(default_factory=list)
    """Account ids or handles whose customers are asked; empty: nobody (the survey is off)."""
    question: str = "How did we do? Reply with a number from 1 (poor) to 5 (great)."
    window: str = "3d"
    """An answer within this time after the survey counts as a score."""

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        parse_duration(value)
        return value


class Crm(TomlTable):
    """``[crm]``: where leads are handed off, as a signed JSON POST."""

    url: str
    secret_env: str = "DMBRIDGE_CRM_SECRET"
    """The environment variable holding the signing secret (HMAC-SHA256 of the body, like the generic source)."""

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError(f"[crm] url {value!r} must be https")
        return value


class OptOut(TomlTable):
    """``[opt_out]``: the messages that opt a customer out of automatic messages (welcome, away, CSAT)."""

    words: list[str] = Field(default_factory=lambda: list(DEFAULT_OPT_OUT))


class Digest(TomlTable):
    """``[digest]``: a weekly summary posted to a channel (the inbox when none is given)."""

    channel: str | None = None
    weekday: str = "monday"
    time: str = "09:00"

    @field_validator("weekday")
    @classmethod
    def _weekday(cls, value: str) -> str:
        if value.lower() not in WEEKDAY_NAMES:
            raise ValueError(f"[digest] weekday {value!r}: one of {', '.join(WEEKDAY_NAMES)}")
        return value.lower()

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"[digest] time {value!r}: HH:MM, 24-hour")
        return value
