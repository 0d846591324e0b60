"""The authorization policy (bridge/authz.py), pure: who may do what where, for varied memberships."""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge import commands
from bridge.authz import (
    NOT_ADMIN,
    NOT_AGENT,
    NOT_CONVERSATION_AGENT,
    Facts,
    Scope,
    agent_channels,
    decide,
    is_person,
    scope_of,
)
from bridge.config import Settings
from bridge.errors import ConfigError, DeliveryError
from bridge.slack.listeners.interactions import _metadata
from bridge.slack.roster import Roster
from bridge.toml_config import FileConfig

users = st.sampled_from(["U01", "U02", "U03", "W04", "U05"])
channel_ids = st.sampled_from(["C0INBOX", "C0VIP", "C0STRANGER", "C0OTHER"])
members = st.frozensets(users, max_size=5)
facts = st.builds(Facts, agents=st.dictionaries(channel_ids, members, max_size=4), admins=st.none() | members)
desks = st.lists(channel_ids, max_size=3, unique=True).map(tuple)


@given(users, channel_ids, facts)
def test_a_conversation_is_judged_only_in_its_own_channel(user: str, channel: str, f: Facts) -> None:
    decision = decide(user, Scope.CONVERSATION, (channel,), f)
    assert decision.allowed == (user in f.agents.get(channel, frozenset()))
    if not decision.allowed:
        assert decision.reason == NOT_CONVERSATION_AGENT
    # being an agent of any other channel changes nothing
    others = {c: m | {user} for c, m in f.agents.items() if c != channel}
    assert decide(user, Scope.CONVERSATION, (channel,), Facts({**f.agents, **others}, f.admins)) == decision


@given(users, desks, facts)
def test_desk_wide_requests_need_an_agent_of_any_desk_channel(user: str, desk: tuple[str, ...], f: Facts) -> None:
    decision = decide(user, Scope.DESK, desk, f)
    assert decision.allowed == any(user in f.agents.get(c, frozenset()) for c in desk)
    assert decision.allowed or decision.reason == NOT_AGENT


@given(users, desks, facts)
def test_templates_are_changed_by_the_admins_else_the_agents(user: str, desk: tuple[str, ...], f: Facts) -> None:
    decision = decide(user, Scope.ADMIN, desk, f)
    if f.admins is None:
        assert decision == decide(user, Scope.DESK, desk, f)
    else:
        assert decision.allowed == (user in f.admins)
        assert decision.allowed or decision.reason == NOT_ADMIN


@given(users, desks, facts, st.sampled_from(list(Scope)))
def test_nobody_is_allowed_when_slack_could_not_be_asked(
    user: str, desk: tuple[str, ...], f: Facts, scope: Scope
) -> None:
    """A failed look-up gives empty facts (Roster fails closed); then every request is refused."""
    empty = Facts({c: frozenset() for c in f.agents}, None if f.admins is None else frozenset())
    channels = desk[:1] if scope is Scope.CONVERSATION else desk
    assert not decide(user, scope, channels, empty).allowed


@given(st.text(max_size=12), desks, facts, st.sampled_from(list(Scope)))
def test_only_slack_user_ids_are_ever_allowed(user: str, desk: tuple[str, ...], f: Facts, scope: Scope) -> None:
    rigged = Facts({c: m | {user} for c, m in f.agents.items()}, None if f.admins is None else f.admins | {user})
    channels = desk[:1] if scope is Scope.CONVERSATION else desk
    if not is_person(user):
        assert not decide(user, scope, channels, rigged).allowed
        assert agent_channels(user, desk, rigged) == frozenset()


@given(users, facts)
def test_a_conversation_needs_exactly_one_channel(user: str, f: Facts) -> None:
    assert not decide(user, Scope.CONVERSATION, (), f).allowed
    assert not decide(user, Scope.CONVERSATION, tuple(f.agents), f).allowed or len(f.agents) == 1


@given(users, desks, facts)
def test_listed_channels_are_those_where_the_user_is_an_agent(user: str, desk: tuple[str, ...], f: Facts) -> None:
    seen = agent_channels(user, desk, f)
    assert seen <= set(desk)
    assert all(decide(user, Scope.CONVERSATION, (c,), f).allowed == (c in seen) for c in desk)


def _every_channel_command() -> list[type]:
    return [t for t in typing.get_args(commands.ChannelCommand)]


@pytest.mark.parametrize("kind", _every_channel_command(), ids=lambda t: t.__name__)
def test_every_slash_command_has_a_scope(kind: type) -> None:
    samples: dict[type, object] = {
        commands.Help: commands.Help(),
        commands.ListConversations: commands.ListConversations("all"),
        commands.Show: commands.Show(1),
        commands.TemplateAdd: commands.TemplateAdd("a", "b"),
        commands.TemplateList: commands.TemplateList(),
        commands.TemplateShow: commands.TemplateShow("a"),
        commands.TemplateDelete: commands.TemplateDelete("a"),
        commands.SlaPolicies: commands.SlaPolicies(),
        commands.Stats: commands.Stats(7),
        commands.OnConversation: commands.OnConversation(1, commands.Resolve()),
        commands.ListLeads: commands.ListLeads(),
        commands.Export: commands.Export(1),
    }
    assert kind in samples, f"{kind.__name__} needs a sample here and a scope in bridge.authz.scope_of"
    scope = scope_of(samples[kind])  # type: ignore[arg-type]
    expected = {
        commands.Help: None,
        commands.Show: Scope.CONVERSATION,
        commands.OnConversation: Scope.CONVERSATION,
        commands.Export: Scope.CONVERSATION,
        commands.TemplateAdd: Scope.ADMIN,
        commands.TemplateDelete: Scope.ADMIN,
    }.get(kind, Scope.DESK)
    assert scope is expected


@pytest.mark.parametrize(
    "text",
    [
        "show 1",
        "resolve 1",
        "claim #2",
        "snooze 3 2h",
        "assign 1 <@U02>",
        "escalate 1 billing",
        "template add a hi",
        "template delete a",
        "list all",
        "stats",
        "sla",
        "template list",
        "template show a",
        "help",
    ],
)
def test_parsed_slash_commands_all_map_to_a_scope(text: str) -> None:
    scope = scope_of(commands.parse_slash(text))
    assert (scope is None) == (text == "help")


def test_admins_are_validated_when_dmbridge_toml_loads(tmp_path: typing.Any) -> None:
    path = tmp_path / "dmbridge.toml"
    for good, expected in (
        ('admins = "S0ADMINS"', "S0ADMINS"),
        ('admins = ["U0SAM", "W0KIM"]', ["U0SAM", "W0KIM"]),
        ("", None),
    ):
        path.write_text(good, encoding="utf-8")
        assert FileConfig.load(path).admins == expected
    for bad in ('admins = "admins"', 'admins = ["sam"]', "admins = []", "admins = 3", 'agents = "#support"'):
        path.write_text(bad, encoding="utf-8")
        with pytest.raises(ConfigError):
            FileConfig.load(path)


class _Slack:
    """What Roster asks of SlackApi; ``down`` makes every look-up fail as Slack would."""

    def __init__(self) -> None:
        self.down = False
        self.channels = {"C0INBOX": ["U0SAM", "U0KIM"], "C0MINE": ["U0MAL"]}
        self.groups = {"S0ADMINS": ["U0SAM"]}

    def _check(self) -> None:
        if self.down:
            raise DeliveryError("ratelimited")

    def channel_members(self, channel: str) -> list[str]:
        self._check()
        return self.channels[channel]

    def usergroup_members(self, group: str) -> list[str]:
        self._check()
        return self.groups[group]


def test_roster_facts_are_the_slack_memberships_and_fail_closed() -> None:
    slack = _Slack()
    roster = Roster(slack, None, admins="S0ADMINS")  # type: ignore[arg-type]
    f = roster.facts(("C0INBOX", "C0INBOX", ""), admins=True)
    assert f == Facts({"C0INBOX": frozenset({"U0SAM", "U0KIM"})}, frozenset({"U0SAM"}))
    assert roster.facts(("C0INBOX",)).admins is None  # not asked for
    assert Roster(slack, None, admins=["U0KIM"]).facts((), admins=True).admins == {"U0KIM"}  # type: ignore[arg-type]
    assert Roster(slack, None).facts((), admins=True).admins is None  # type: ignore[arg-type]
    slack.down = True
    cold = Roster(slack, None, admins="S0ADMINS")  # type: ignore[arg-type]
    f = cold.facts(("C0INBOX", "C0MINE"), admins=True)
    assert f.agents == {"C0INBOX": frozenset(), "C0MINE": frozenset()} and f.admins == frozenset()
    assert not decide("U0SAM", Scope.ADMIN, ("C0INBOX",), f).allowed


def test_an_agents_group_makes_its_members_agents_of_every_channel_and_nobody_else() -> None:
    slack = _Slack()
    slack.groups["S0AGENTS"] = ["U0KIM"]
    f = Roster(slack, "S0AGENTS").facts(("C0INBOX", "C0MINE"))  # type: ignore[arg-type]
    assert decide("U0KIM", Scope.CONVERSATION, ("C0MINE",), f).allowed
    assert not decide("U0SAM", Scope.CONVERSATION, ("C0INBOX",), f).allowed  # a member, not in the group
    assert not decide("U0MAL", Scope.DESK, ("C0MINE",), f).allowed


def test_an_agents_group_from_the_environment_is_checked_before_serving() -> None:
    base: dict[str, Any] = dict(slack_bot_token="xoxb-1", slack_signing_secret="s", dmbridge_channel="C0INBOX")
    Settings(_env_file=None, dmbridge_agents="S0AGENTS", **base).check_for_serve()  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="DMBRIDGE_AGENTS"):
        Settings(_env_file=None, dmbridge_agents="@support", **base).check_for_serve()  # type: ignore[call-arg]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@given(st.one_of(st.text(max_size=40), json_values.map(lambda v: json.dumps({"conv": v})), json_values.map(json.dumps)))
def test_modal_metadata_never_raises_and_names_a_conversation_or_none(raw: str) -> None:
    meta = _metadata({"private_metadata": raw})
    assert type(meta["conv"]) is int and 0 <= meta["conv"] < 2**31
    assert _metadata({"private_metadata": json.dumps({"conv": 12, "template": "t"})}) == {"conv": 12, "template": "t"}
