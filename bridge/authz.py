"""Who may do what where: the one policy every entry point asks (pure).

An entry point (``/dm``, a card button, a shortcut, a modal, a thread mention
or reply, the App Home) names the *scope* of what is asked and the channels
that scope is judged in; ``bridge.slack.roster.Roster`` gathers the facts
(channel members, user groups; empty when Slack could not be asked, so every
check fails closed); ``decide`` answers. The channel a command was *typed*
in never counts: a stranger's own channel makes nobody an agent.

* ``CONVERSATION``: see or change one conversation (``/dm show N``, ``/dm
  claim N`` …, card buttons, shortcuts and their modals, thread mentions,
  thread replies). Judged in the conversation's own channel (its row in the
  database), whatever channel the request came from.
* ``DESK``: desk-wide reading (``/dm list``, ``/dm stats``, ``/dm sla``,
  ``/dm template list|show``, the App Home). Judged in the configured desk
  channels (``DMBRIDGE_CHANNEL`` and every ``[[routes]]`` channel): an agent
  of any of them.
* ``ADMIN``: change the desk's saved replies (``/dm template add|delete``).
  The ``admins`` of ``dmbridge.toml`` when set, else as ``DESK``.

An agent of a channel is a member of the agents user group when one is
configured, else a member of that channel.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from bridge.commands import (
    ChannelCommand,
    Export,
    Help,
    ListConversations,
    ListLeads,
    OnConversation,
    Show,
    SlaPolicies,
    Stats,
    TemplateAdd,
    TemplateDelete,
    TemplateList,
    TemplateShow,
)


class Scope(StrEnum):
    CONVERSATION = "conversation"
    DESK = "desk"
    ADMIN = "admin"


NOT_AGENT = "Only agents of this desk can do that; nothing was changed."
NOT_CONVERSATION_AGENT = (
    "Only agents of the channel this conversation lives in can see or change it; nothing was changed."
)
NOT_ADMIN = "Only the desk's admins can change templates; nothing was changed."


@dataclass(frozen=True)
class Facts:
    """What Slack says, as far as a decision needs it.

    ``agents`` maps a channel to the people who are agents there (the agents group's members when one is
    configured, else the channel's members); a channel missing from it has no agents. ``admins`` is the
    admins group's members, or None when no admins are configured (then the agents are the admins).
    """

    agents: Mapping[str, frozenset[str]] = field(default_factory=dict)
    admins: frozenset[str] | None = None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""
    """Why not, in words for the person asking (empty when allowed)."""


ALLOWED = Decision(True)


def is_person(user: str) -> bool:
    """A Slack user id (``U…``/``W…``): nothing else is ever an agent or an admin."""
    return len(user) > 1 and user[0] in "UW" and user[1:].isalnum() and user.isascii() and user.isupper()


def agent_channels(user: str, channels: Iterable[str], facts: Facts) -> frozenset[str]:
    """The channels among ``channels`` where ``user`` is an agent (what lists and the App Home may show)."""
    if not is_person(user):
        return frozenset()
    return frozenset(c for c in channels if user in facts.agents.get(c, frozenset()))


def decide(user: str, scope: Scope, channels: tuple[str, ...], facts: Facts) -> Decision:
    """May ``user`` do something of ``scope``, judged in ``channels``?

    ``channels`` is the conversation's channel for ``CONVERSATION`` (exactly one), the desk channels otherwise.
    """
    if scope is Scope.CONVERSATION:
        if len(channels) != 1 or not agent_channels(user, channels, facts):
            return Decision(False, NOT_CONVERSATION_AGENT)
        return ALLOWED
    if scope is Scope.ADMIN and facts.admins is not None:
        return ALLOWED if is_person(user) and user in facts.admins else Decision(False, NOT_ADMIN)
    if not agent_channels(user, channels, facts):
        return Decision(False, NOT_AGENT)
    return ALLOWED


def scope_of(cmd: ChannelCommand) -> Scope | None:
    """The scope of a ``/dm`` command; None for help, which anyone may read."""
    match cmd:
        case Help():
            return None
        case Show() | OnConversation() | Export():
            return Scope.CONVERSATION
        case TemplateAdd() | TemplateDelete():
            return Scope.ADMIN
        case ListConversations() | Stats() | SlaPolicies() | TemplateList() | TemplateShow() | ListLeads():
            return Scope.DESK
    raise TypeError(f"no authorization scope for {type(cmd).__name__}")  # a new command must be given one
