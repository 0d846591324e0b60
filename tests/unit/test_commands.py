import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.commands import (
    Assign,
    Claim,
    Deescalate,
    Escalate,
    Help,
    ListConversations,
    OnConversation,
    ParseError,
    Reopen,
    Resolve,
    Show,
    Snooze,
    TemplateAdd,
    TemplateDelete,
    TemplateList,
    TemplateShow,
    Unassign,
    UseTemplate,
    parse_slash,
    parse_thread,
)

BOT = "U0BOT"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<@U0BOT> claim", Claim()),
        ("<@U0BOT> assign me", Claim()),
        ("<@U0BOT> assign <@U0KIM>", Assign("U0KIM")),
        ("<@U0BOT|dmbridge> ASSIGN <@U0KIM|kim>", Assign("U0KIM")),
        ("please <@U0BOT> unassign", None),
        ("<@U0BOT> unassign", Unassign()),
        ("<@U0BOT> template Greet-1", UseTemplate("greet-1")),
        ("<@U0BOT> escalate Billing", Escalate("billing", "high", "")),
        (
            "<@U0BOT> escalate billing urgent card was\n charged twice",
            Escalate("billing", "urgent", "card was\n charged twice"),
        ),
        ("<@U0BOT> escalate legal they mention a lawyer", Escalate("legal", "high", "they mention a lawyer")),
        ("<@U0BOT> deescalate", Deescalate()),
        ("<@U0BOT> resolve", Resolve()),
        ("<@U0BOT> done", Resolve()),
        ("<@U0BOT> reopen", Reopen()),
        ("<@U0BOT> snooze tomorrow 9:00", Snooze("tomorrow 9:00")),
        ("<@U0BOT>", Help()),
        ("<@U0BOT> help", Help()),
    ],
)
def test_thread_commands(text: str, expected: object) -> None:
    if expected is None:
        with pytest.raises(ParseError):
            parse_thread(text, BOT)
    else:
        assert parse_thread(text, BOT) == expected


@pytest.mark.parametrize(
    "text",
    [
        "<@U0BOT> assign kim",
        "<@U0BOT> assign",
        "<@U0BOT> template",
        "<@U0BOT> template a b",
        "<@U0BOT> escalate",
        "<@U0BOT> snooze",
        "<@U0BOT> template ../etc",
    ],
)
def test_thread_command_errors_say_how(text: str) -> None:
    with pytest.raises(ParseError, match=r"Usage|not a"):
        parse_thread(text, BOT)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Help()),
        ("list", ListConversations("mine")),
        ("list unassigned", ListConversations("unassigned")),
        ("show #12", Show(12)),
        ("assign 12 <@U0KIM|kim>", OnConversation(12, Assign("U0KIM"))),
        ("claim #3", OnConversation(3, Claim())),
        ("escalate 4 billing low slow refund", OnConversation(4, Escalate("billing", "low", "slow refund"))),
        ("snooze 5 2h", OnConversation(5, Snooze("2h"))),
        ("resolve 6", OnConversation(6, Resolve())),
        ("template", TemplateList()),
        ("template list", TemplateList()),
        ("template add thanks Thanks {first_name}!\nBye", TemplateAdd("thanks", "Thanks {first_name}!\nBye")),
        ("template show thanks", TemplateShow("thanks")),
        ("template delete thanks", TemplateDelete("thanks")),
    ],
)
def test_slash_commands(text: str, expected: object) -> None:
    assert parse_slash(text) == expected


@pytest.mark.parametrize(
    "text", ["assign", "assign twelve <@U1>", "show", "show 0", "list everyone", "template add x", "frobnicate 3"]
)
def test_slash_errors(text: str) -> None:
    with pytest.raises(ParseError):
        parse_slash(text)


@given(st.text(max_size=200))
def test_parsing_never_fails_other_than_with_a_parse_error(text: str) -> None:
    for parse in (lambda t: parse_thread(t, BOT), parse_slash):
        try:
            parse(text)
        except ParseError as exc:
            assert str(exc)
