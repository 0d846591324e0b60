"""What people type to the bot, parsed into commands (pure).

In a thread (``@dmbridge …``) the conversation is the thread's; in the
channel (``/dm …``) conversation commands name it by number (``12`` or
``#12``). Both produce the same command values, which ``bridge.desk`` runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bridge.leads import LeadError, parse_change

PRIORITIES = ("low", "normal", "high", "urgent")
LIST_SCOPES = ("mine", "unassigned", "all", "escalated")
_USER = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_DIGITS = re.compile(r"^[0-9]{1,9}$")


@dataclass(frozen=True)
class Assign:
    user: str


@dataclass(frozen=True)
class Claim:
    pass


@dataclass(frozen=True)
class Unassign:
    pass


@dataclass(frozen=True)
class UseTemplate:
    name: str


@dataclass(frozen=True)
class Escalate:
    team: str
    priority: str = "high"
    reason: str = ""


@dataclass(frozen=True)
class Deescalate:
    pass


@dataclass(frozen=True)
class Resolve:
    pass


@dataclass(frozen=True)
class Reopen:
    pass


@dataclass(frozen=True)
class Snooze:
    when: str
    """As typed (``2h``, ``tomorrow 9:00``); resolved against ``now`` by ``bridge.when.parse_when``."""


@dataclass(frozen=True)
class SetType:
    """``type sales``: the conversation's inquiry type (checked against ``[[types]]`` by the desk)."""

    name: str


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class ListConversations:
    scope: str = "mine"


@dataclass(frozen=True)
class Show:
    number: int


@dataclass(frozen=True)
class TemplateAdd:
    name: str
    text: str


@dataclass(frozen=True)
class TemplateList:
    pass


@dataclass(frozen=True)
class TemplateShow:
    name: str


@dataclass(frozen=True)
class TemplateDelete:
    name: str


@dataclass(frozen=True)
class SlaPolicies:
    pass


@dataclass(frozen=True)
class Stats:
    days: int = 7


@dataclass(frozen=True)
class SetLead:
    """``lead [stage] [value currency]``: mark as a lead, or move it (``bridge.leads``)."""

    stage: str | None = None
    value_minor: int | None = None
    currency: str | None = None


@dataclass(frozen=True)
class ListLeads:
    pass


@dataclass(frozen=True)
class Export:
    """``/dm export 12``: the HTML transcript uploaded into the conversation's thread."""

    number: int


ConversationCommand = (
    Assign | Claim | Unassign | UseTemplate | Escalate | Deescalate | Resolve | Reopen | Snooze | SetType | SetLead
)


@dataclass(frozen=True)
class OnConversation:
    """A conversation command typed in the channel, naming the conversation by number."""

    number: int
    command: ConversationCommand


ChannelCommand = (
    Help
    | ListConversations
    | Show
    | TemplateAdd
    | TemplateList
    | TemplateShow
    | TemplateDelete
    | SlaPolicies
    | Stats
    | OnConversation
    | ListLeads
    | Export
)


class ParseError(ValueError):
    """Not a command; ``str(error)`` is the answer to show, with the usage."""


THREAD_USAGE = (
    "In a conversation thread: `@dmbridge claim`, `assign @user`, `unassign`, `template NAME`, "
    "`escalate TEAM [low|normal|high|urgent] [reason]`, `deescalate`, `resolve`, `reopen`, "
    "`snooze 2h` or `snooze tomorrow 9:00`, `type NAME`, `lead [stage] [1200 EUR]`, `help`."
)
CHANNEL_USAGE = (
    "In the channel: `/dm list [mine|unassigned|escalated|all]`, `/dm show 12`, "
    "`/dm assign 12 @user`, `/dm claim 12`, `/dm resolve 12`, `/dm escalate 12 billing [reason]`, "
    "`/dm snooze 12 2h`, `/dm type 12 sales`, `/dm template add NAME text…`, `/dm template list`, "
    "`/dm template show NAME`, `/dm template delete NAME`, `/dm sla`, `/dm stats [7d|30d]`, "
    "`/dm list leads`, `/dm lead 12 won 1500 EUR`, `/dm export 12`, `/dm help`."
)


def parse_thread(text: str, bot_user_id: str) -> ConversationCommand | Help:
    """``<@BOT> assign <@U2>`` → ``Assign("U2")``; the bot's own mention(s) are dropped wherever they are."""
    stripped = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text) if bot_user_id else text
    words = stripped.split()
    if not words or words[0].lower() in ("help", "?"):
        return Help()
    return _conversation_command(words[0].lower(), words[1:], stripped)


def parse_slash(text: str) -> ChannelCommand:
    """The text after ``/dm``."""
    words = text.split()
    if not words or words[0].lower() in ("help", "?"):
        return Help()
    verb, args = words[0].lower(), words[1:]
    if verb == "list" and [a.lower() for a in args] == ["leads"]:
        return ListLeads()
    if verb == "export":
        if len(args) != 1:
            raise ParseError("Usage: `/dm export 12` (the transcript, uploaded into the thread)")
        return Export(_number(args[0]))
    if verb == "list":
        scope = args[0].lower() if args else "mine"
        if scope not in LIST_SCOPES or len(args) > 1:
            raise ParseError("Usage: `/dm list [mine|unassigned|escalated|all|leads]`")
        return ListConversations(scope)
    if verb == "show":
        if len(args) != 1:
            raise ParseError("Usage: `/dm show 12`")
        return Show(_number(args[0]))
    if verb in ("template", "templates"):
        return _template_admin(args, text)
    if verb == "sla" and not args:
        return SlaPolicies()
    if verb == "stats":
        period = args[0].lower() if args else "7d"
        if (
            len(args) > 1
            or not period.endswith("d")
            or not _DIGITS.match(period[:-1])
            or not 0 < int(period[:-1]) <= 365
        ):
            raise ParseError("Usage: `/dm stats [7d|30d]`")
        return Stats(int(period[:-1]))
    if not args:
        raise ParseError(f"Which conversation? e.g. `/dm {verb} 12 …`. " + CHANNEL_USAGE)
    number = _number(args[0])
    rest = text.split(None, 2)[2] if len(words) > 2 else ""
    return OnConversation(number, _conversation_command(verb, args[1:], f"{verb} {rest}"))


def _conversation_command(verb: str, args: list[str], raw: str) -> ConversationCommand:
    match verb:
        case "assign":
            if len(args) != 1:
                raise ParseError("Usage: `assign @user` (or `assign me`)")
            if args[0].lower() == "me":
                return Claim()
            return Assign(_user(args[0]))
        case "claim" | "take":
            return Claim()
        case "unassign":
            return Unassign()
        case "template" | "reply":
            if len(args) != 1:
                raise ParseError("Usage: `template NAME`")
            return UseTemplate(template_name(args[0]))
        case "escalate":
            if not args:
                raise ParseError("Usage: `escalate TEAM [low|normal|high|urgent] [reason]`")
            team, rest = args[0].lower(), args[1:]
            priority = "high"
            if rest and rest[0].lower() in PRIORITIES:
                priority, rest = rest[0].lower(), rest[1:]
            reason = _tail(raw, len(args) - len(rest) + 1) if rest else ""
            return Escalate(team, priority, reason)
        case "deescalate" | "de-escalate":
            return Deescalate()
        case "resolve" | "close" | "done":
            return Resolve()
        case "reopen" | "open":
            return Reopen()
        case "type":
            if len(args) != 1:
                raise ParseError("Usage: `type NAME` (e.g. `type sales`)")
            return SetType(args[0].lower()[:100])
        case "lead":
            try:
                change = parse_change(args)
            except LeadError as exc:
                raise ParseError(str(exc)) from exc
            return SetLead(change.stage, change.value_minor, change.currency)
        case "snooze":
            if not args:
                raise ParseError("Usage: `snooze 2h` or `snooze tomorrow 9:00`")
            return Snooze(" ".join(args))
    raise ParseError(f"I don't know `{verb}`. " + THREAD_USAGE)


def _template_admin(args: list[str], raw: str) -> ChannelCommand:
    if not args or args[0].lower() == "list":
        return TemplateList()
    action = args[0].lower()
    if action == "add":
        if len(args) < 3:
            raise ParseError("Usage: `/dm template add NAME text…` (variables: {first_name}, {agent_name} …)")
        return TemplateAdd(template_name(args[1]), _tail(raw, 3))
    if action in ("show", "delete", "remove") and len(args) == 2:
        name = template_name(args[1])
        return TemplateShow(name) if action == "show" else TemplateDelete(name)
    raise ParseError(
        "Usage: `/dm template add NAME text…`, `/dm template list`, `/dm template show NAME`, "
        "`/dm template delete NAME`"
    )


def _tail(raw: str, skip_words: int) -> str:
    """``raw`` after its first ``skip_words`` words, with its own spacing and line breaks kept."""
    parts = raw.lstrip().split(None, skip_words)
    return parts[skip_words].strip() if len(parts) > skip_words else ""


def _number(word: str) -> int:
    digits = word.removeprefix("#")
    if not _DIGITS.match(digits) or int(digits) <= 0:
        raise ParseError(f"`{word}` is not a conversation number (like 12 or #12)")
    return int(digits)


def _user(word: str) -> str:
    m = _USER.match(word)
    if not m:
        raise ParseError(f"`{word}` is not a person: mention them, e.g. `assign @kim`")
    return m.group(1)


def template_name(word: str) -> str:
    name = word.lower()
    if not _NAME.match(name):
        raise ParseError(f"`{word}` is not a template name (letters, digits, - _ . ; up to 64)")
    return name
