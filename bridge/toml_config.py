"""``dmbridge.toml``: the policy file's tables (routes, assignment, teams, SLAs, Meta pages, generic sources,
retention) and FileConfig, which loads and validates them. No secrets live there."""

from __future__ import annotations

import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator

from bridge.config_keys import TomlTable, explain
from bridge.errors import ConfigError
from bridge.playbook_config import DEFAULT_TYPES, AutoReply, Crm, Csat, Digest, InquiryType, OptOut
from bridge.sla import WEEKDAYS, BusinessHours, Kind, Policy, Target
from bridge.when import parse_duration

USERGROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


class Route(TomlTable):
    """Which Slack channel receives one connector account's DMs."""

    connector: str
    account: str | None = None
    channel: str


class Assignment(TomlTable):
    """``[assignment]``: manual (default) or round robin over a user group."""

    mode: Literal["manual", "round_robin"] = "manual"
    usergroup: str | None = None
    capacity: int = Field(default=8, ge=1)

    @model_validator(mode="after")
    def _needs_group(self) -> Assignment:
        if self.mode == "round_robin" and not self.usergroup:
            raise ValueError('[assignment] mode = "round_robin" needs usergroup = "S…"')
        return self


class Team(TomlTable):
    """A specialist group to escalate to: a Slack user group, or named users; optionally its own channel."""

    usergroup: str | None = None
    users: list[str] = Field(default_factory=list)
    channel: str | None = None

    @model_validator(mode="after")
    def _has_people(self) -> Team:
        if not self.usergroup and not self.users:
            raise ValueError("a team needs a usergroup or users")
        return self

    def mention(self) -> str:
        if self.usergroup:
            return f"<!subteam^{self.usergroup}>"
        return " ".join(f"<@{u}>" for u in self.users)


def _team(value: Any) -> Any:
    if isinstance(value, str):
        return {"usergroup": value} if value.startswith("S") else {"users": [value]}
    return value


class BusinessHoursConfig(TomlTable):
    """``[sla.business_hours]``: windows per weekday (``"09:00-17:30"``) in ``timezone``; holidays are closed."""

    timezone: str = "UTC"
    mon: list[str] = Field(default_factory=list)
    tue: list[str] = Field(default_factory=list)
    wed: list[str] = Field(default_factory=list)
    thu: list[str] = Field(default_factory=list)
    fri: list[str] = Field(default_factory=list)
    sat: list[str] = Field(default_factory=list)
    sun: list[str] = Field(default_factory=list)
    holidays: list[str | date] = Field(default_factory=list)  # "2026-12-25", or a TOML date

    def hours(self) -> BusinessHours | None:
        """The schedule; None (24/7) for an empty table."""
        week = {day: getattr(self, day) for day in WEEKDAYS if getattr(self, day)}
        return BusinessHours.parse(self.timezone, week, map(str, self.holidays)) if self.model_fields_set else None


class SlaConfig(TomlTable):
    """One ``[[sla]]`` policy as written in dmbridge.toml."""

    name: str
    platforms: list[str] = Field(default_factory=list)
    accounts: list[str] = Field(default_factory=list)
    priorities: list[str] = Field(default_factory=list)
    types: list[str] = Field(default_factory=list)
    """Inquiry types (``[[types]]``) this policy is for; empty: any."""
    first_response: str | None = None
    next_response: str | None = None
    resolution: str | None = None
    warn_before: str | None = None  # "15m" or "25%"
    business_hours: BusinessHoursConfig | None = None
    on_breach: list[str] = Field(default_factory=lambda: ["remind"])

    def policy(self, teams: dict[str, Team]) -> Policy:
        targets = tuple(
            Target(Kind(kind), parse_duration(value))
            for kind, value in (
                ("first_response", self.first_response),
                ("next_response", self.next_response),
                ("resolution", self.resolution),
            )
            if value
        )
        if not targets:
            raise ValueError(f"SLA {self.name!r} sets none of first_response, next_response, resolution")
        warn_before = warn_fraction = None
        if self.warn_before:
            text = self.warn_before.strip()
            if text.endswith("%"):
                warn_fraction = float(text[:-1]) / 100
                if not 0 < warn_fraction < 1:
                    raise ValueError(f"SLA {self.name!r}: warn_before must be between 0% and 100%")
            else:
                warn_before = parse_duration(text)
        for action in self.on_breach:
            verb, _, team = action.partition(":")
            if verb not in ("remind", "escalate", "reassign") or (verb == "escalate") != bool(team):
                raise ValueError(
                    f"SLA {self.name!r}: unknown on_breach action {action!r} (use remind, escalate:TEAM, reassign)"
                )
            if team and team.lower() not in teams:
                raise ValueError(f"SLA {self.name!r}: on_breach names team {team!r}, which [teams] does not define")
        hours = self.business_hours.hours() if self.business_hours else None
        return Policy(
            name=self.name,
            targets=targets,
            warn_before=warn_before,
            warn_fraction=warn_fraction,
            hours=hours,
            on_breach=tuple(a.lower() for a in self.on_breach),
            platforms=frozenset(p.lower() for p in self.platforms),
            accounts=frozenset(self.accounts),
            priorities=frozenset(p.lower() for p in self.priorities),
            types=frozenset(t.lower() for t in self.types),
        )


class MetaPage(TomlTable):
    """One Facebook Page or Instagram professional account, when there are several or it needs its own policy."""

    id: str
    token_env: str | None = None
    """Environment variable holding this account's page access token (default: META_PAGE_ACCESS_TOKEN)."""
    human_agent_days: float | None = None


class MetaFile(TomlTable):
    pages: list[MetaPage] = Field(default_factory=list)


class GenericSource(TomlTable):
    """A source posting to ``/webhooks/generic/{name}`` and receiving replies at ``callback_url``."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    secret_env: str
    callback_url: str
    # opt-in replay protection: the source signs "{X-Dmbridge-Timestamp}.{body}"; older than 5 min is refused
    signed_timestamp: bool = False


class GenericFile(TomlTable):
    sources: list[GenericSource] = Field(default_factory=list)


class Retention(TomlTable):
    """``[retention]``: how long content is kept (durations; ``"forever"`` keeps it). Rows and their dedupe
    keys stay, so a replayed event or message still stores nothing; only the content goes."""

    events: str = "7d"  # processed Slack events' payloads
    outbox: str = "30d"  # sent deliveries' payloads (message texts, names)
    messages: str = "90d"  # customers' message texts (inbound_event) and the bodies in the audit trail
    every: str = "1h"  # how often the job runs
    batch: int = Field(default=500, ge=1, le=10_000)  # rows per transaction

    @field_validator("events", "outbox", "messages", "every")
    @classmethod
    def _duration(cls, value: str) -> str:
        if value.strip().lower() != "forever":
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _every_is_finite(self) -> Retention:
        if self.every.strip().lower() == "forever":
            raise ValueError("[retention] every must be a duration such as 1h")
        return self

    def seconds(self, name: Literal["events", "outbox", "messages", "every"]) -> float | None:
        """The duration in seconds; None for forever."""
        value: str = getattr(self, name)
        return None if value.strip().lower() == "forever" else parse_duration(value)


class FileConfig(TomlTable):
    """The parts of ``dmbridge.toml`` the core reads (no secrets live there)."""

    brand: str = "our team"
    agents: str | None = None
    admins: str | list[str] | None = None
    """Who may add, change and delete templates: a user group id or a list of user ids; default: the agents."""
    timezone: str = "UTC"
    assignment: Assignment = Field(default_factory=Assignment)
    teams: dict[str, Team] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)
    sla: list[SlaConfig] = Field(default_factory=list)
    meta: MetaFile = Field(default_factory=MetaFile)
    generic: GenericFile = Field(default_factory=GenericFile)
    retention: Retention = Field(default_factory=Retention)
    types: list[InquiryType] = Field(default_factory=lambda: list(DEFAULT_TYPES))
    auto_replies: list[AutoReply] = Field(default_factory=list)
    csat: Csat = Field(default_factory=Csat)
    crm: Crm | None = None
    opt_out: OptOut = Field(default_factory=OptOut)
    digest: Digest | None = None

    @model_validator(mode="after")
    def _policies_are_valid(self) -> FileConfig:
        self.policies()
        names = [t.name for t in self.types]
        if len(set(names)) != len(names):
            raise ValueError(f"[[types]] names must be unique: {names}")
        for where, wanted in [(f"sla {c.name!r}", c.types) for c in self.sla] + [
            (f"auto_replies[{i}]", a.types) for i, a in enumerate(self.auto_replies)
        ]:
            unknown = sorted({t.lower() for t in wanted} - set(names))
            if unknown:
                raise ValueError(f"{where} names types {unknown} that [[types]] does not define ({', '.join(names)})")
        return self

    def inquiry_type(self, name: str | None) -> InquiryType | None:
        return next((t for t in self.types if t.name == name), None)

    def policies(self) -> list[Policy]:
        """The SLA policies, in order; the first that applies to a conversation is its policy."""
        return [c.policy(self.teams) for c in self.sla]

    @field_validator("teams", mode="before")
    @classmethod
    def _teams(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k).lower(): _team(v) for k, v in value.items()}
        return value

    @field_validator("agents")
    @classmethod
    def _agents(cls, value: str | None) -> str | None:
        if value is not None and not USERGROUP_ID.match(value):
            raise ValueError(f"agents = {value!r} is not a Slack user group id (S…)")
        return value

    @field_validator("admins")
    @classmethod
    def _admins(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, str) and not USERGROUP_ID.match(value):
            raise ValueError(f"admins = {value!r} is not a Slack user group id (S…) or a list of user ids (U…)")
        if isinstance(value, list):
            bad = [u for u in value if not USER_ID.match(u)]
            if bad or not value:
                raise ValueError(f"admins: {bad or 'an empty list'} is not a list of Slack user ids (U… or W…)")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r} (use an IANA name like Europe/Berlin)") from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def load(cls, path: Path | None) -> FileConfig:
        candidate = path or Path("dmbridge.toml")
        if not candidate.exists():
            if path is not None:
                raise ConfigError(f"config file {path} does not exist")
            return cls()
        try:
            data = tomllib.loads(candidate.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{candidate}: {exc}") from exc
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(explain(exc, cls, str(candidate))) from exc
