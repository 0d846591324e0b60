"""Every Block Kit builder, fed long, Unicode-heavy and &<>-heavy input, gives what Slack accepts."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge import notices
from bridge.slack import answers, blocks, views
from bridge.slack.blocks import CardView, customer_text, customer_username, header_card, notice, notice_parts
from bridge.store.tables import Audit, Conversation, InboundEvent
from bridge.text import ELLIPSIS
from tests.slack_limits import (
    USERNAME,
    check_message,
    check_view,
    foreign_markup,
    problems_of_message,
    problems_of_view,
)

PIECES = [
    "&",
    "<",
    ">",
    "&amp;",
    "<!here>",
    "<!channel>",
    "<@U123>",
    "<https://evil.example|Verify your account>",
    "👩‍👩‍👧‍👦",
    "🇫🇷",
    "👍🏽",
    "e\u0301",
    "a\u0301\u0302\u0303",
    "\u202e",
    "*",
    "_",
    "~",
    "`",
    "|",
    " ",
    "\n",
    "\n\n",
    "> ",
    "word ",
    "Maria López ",
]
_piece = st.sampled_from(PIECES) | st.text(max_size=8)
# up to ~60,000 characters: short strings, and runs that cross every limit many times over
hostile = st.one_of(
    st.lists(_piece, max_size=30).map("".join),
    st.tuples(st.lists(_piece, min_size=1, max_size=6).map("".join), st.integers(1, 12_000)).map(
        lambda t: (t[0] * t[1])[:60_000]
    ),
)
FAST = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def _conv(name: str, team: str | None = None) -> Conversation:
    return Conversation(
        id=7,
        platform="generic",
        account="shop",
        remote_id="r1",
        customer_id="c1",
        customer_name=name,
        channel="C1",
        thread_ts="1.0",
        status="open",
        team=team,
        priority="high",
        created_at=0.0,
        last_inbound_at=1.0,
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(channel: str, ts: str) -> str:
    return f"https://acme.slack.com/archives/{channel}/p{ts.replace('.', '')}"


@FAST
@given(name=hostile, handle=hostile, url=hostile, team=hostile, reason=hostile, sla=hostile)
def test_header_card_is_always_postable(name: str, handle: str, url: str, team: str, reason: str, sla: str) -> None:
    card = header_card(
        CardView(
            12,
            "Webhook",
            name or "x",
            handle or None,
            url or None,
            "open",
            "U1",
            team=team or None,
            escalation_reason=reason or None,
            sla=_escape(sla) or None,
        )
    )  # the SLA line is ours: mrkdwn, names escaped
    check_message(card.text, card.blocks)
    assert not foreign_markup(card.blocks)


def test_card_cuts_a_long_reason_visibly_and_says_where_the_rest_is() -> None:
    card = header_card(
        CardView(12, "X", "Maria", None, None, "open", None, team="billing", escalation_reason="&" * 2990)
    )
    check_message(card.text, card.blocks)
    facts = " ".join(e["text"] for e in card.blocks[1]["elements"])
    assert ELLIPSIS in facts and "/dm show 12" in facts


def test_a_3000_character_name_still_gives_a_card() -> None:
    card = header_card(CardView(3, "Webhook", "Ana " * 750, None, None, "open", None))
    check_message(card.text, card.blocks)
    assert ELLIPSIS in card.blocks[0]["text"]["text"]


@FAST
@given(text=hostile, label=st.none() | hostile)
def test_mirrored_customer_text_is_postable_and_loses_nothing(text: str, label: str | None) -> None:
    messages = customer_text(text, label and _escape(label))  # the label is ours, names escaped
    for m in messages:
        check_message(m.text, m.blocks)
        assert not foreign_markup(m.blocks)


@FAST
@given(text=hostile)
def test_notices_split_into_postable_messages_without_cutting(text: str) -> None:
    escaped = _escape(text)
    parts = notice_parts(escaped)
    for part in parts:
        m = notice(part)
        check_message(m.text, m.blocks)
        assert "_(cut: too long)_" not in str(m.blocks) and len(m.blocks) <= blocks.BLOCKS_PER_MESSAGE * 6
        assert not foreign_markup(m.blocks)
    if escaped.strip():  # (a notice of nothing but blank lines shows as "no text": there is nothing to lose)
        assert "".join(parts).replace("> ", "") == escaped.replace("> ", "")


def test_a_10000_character_template_post_goes_in_postable_parts() -> None:
    text = ("&<>" * 3334)[:10_000]
    parts = notice_parts(notices.template_post("U1", "long", text))
    assert len(parts) > 1
    for part in parts:
        m = notice(part)
        check_message(m.text, m.blocks)


def test_notice_alone_cuts_visibly_past_one_message() -> None:
    m = notice("a" * 100_000)
    check_message(m.text, m.blocks)
    assert "_(cut: too long)_" in m.blocks[-1]["text"]["text"]


@FAST
@given(name=hostile, team=hostile, reason=hostile)
def test_escalation_lines_and_team_notices(name: str, team: str, reason: str) -> None:
    line = notices.escalation_line("<!subteam^S1>", team or "t", "high", "<@U1>", reason)
    for part in notice_parts(line):
        m = notice(part)
        check_message(m.text, m.blocks)
        assert "_(cut: too long)_" not in str(m.blocks) and not foreign_markup(m.blocks)
    team_msg = notice(
        notices.team_notice(
            "<!subteam^S1>", link("C1", "1.0"), 7, "X", name or "n", team or "t", "high", "<@U1>", reason
        )
    )
    check_message(team_msg.text, team_msg.blocks)
    assert "_(cut: too long)_" not in str(team_msg.blocks) and not foreign_markup(team_msg.blocks)
    unknown = notices.unknown_team(team, [team, name])
    assert len(unknown) < 3000 and "<" not in unknown


@FAST
@given(name=hostile)
def test_the_customer_username_is_marked_and_fits(name: str) -> None:
    username = customer_username(name, "Instagram")
    assert username.endswith(" (Instagram)") and len(username) <= USERNAME


@FAST
@given(
    preview=hostile,
    names=st.lists(st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,63}", fullmatch=True), min_size=1, max_size=300, unique=True),
)
def test_template_modal(preview: str, names: list[str]) -> None:
    view = views.template_modal(5, names, names[-1], preview)
    check_view(view)
    meta = json.loads(view["private_metadata"])
    assert meta["template"] == names[-1] and meta.get("whole", False) == (len(preview) > 3000)


def test_more_than_100_templates_are_all_offered() -> None:
    names = [f"t{i:04d}" for i in range(250)]
    pick = views.template_modal(5, names, "t0249", "hi")["blocks"][0]["accessory"]
    assert sum(len(g["options"]) for g in pick["option_groups"]) == 250


@FAST
@given(teams=st.lists(hostile.filter(bool), min_size=1, max_size=150, unique=True))
def test_escalate_modal(teams: list[str]) -> None:
    view = views.escalate_modal(5, teams)
    check_view(view)
    element = view["blocks"][0]["element"]
    assert element["type"] == (
        "static_select" if len(teams) <= 100 and all(len(t) <= 75 for t in teams) else "plain_text_input"
    )


def test_150_teams_are_typed_in() -> None:
    view = views.escalate_modal(5, [f"team{i}" for i in range(150)])
    check_view(view)
    assert view["blocks"][0]["element"]["type"] == "plain_text_input"


def test_other_modals() -> None:
    check_view(views.assign_modal(99999999, "U1"))
    for status in ("open", "snoozed", "resolved"):
        check_view(views.status_modal(99999999, status))


@FAST
@given(names=st.lists(hostile, min_size=0, max_size=40), report=hostile, team=hostile)
def test_app_home(names: list[str], report: str, team: str) -> None:
    convs = [_conv(n or "x", team or None) for n in names]
    view = views.home_view(
        "U1", convs, convs[:3], convs, {"open": len(convs)}, link, 100.0, _escape(report)
    )  # the report is ours: names in it escaped
    check_view(view)
    assert not foreign_markup(view["blocks"])


@FAST
@given(names=st.lists(hostile, max_size=30), details=st.lists(hostile, max_size=30))
def test_list_and_timeline_texts_fit_one_message(names: list[str], details: list[str]) -> None:
    convs = [_conv(n or "x", "billing") for n in names]
    assert len(answers.listing_text("all", convs, link, 100.0)) <= 40_000
    inbound = [
        InboundEvent(
            platform="generic",
            account="shop",
            remote_id=str(i),
            conversation_id=7,
            text=d,
            sent_at=float(i),
            stored_at=float(i),
            from_brand=False,
        )
        for i, d in enumerate(details)
    ]
    actions = [
        Audit(conversation_id=7, actor="U1", action="escalate" if i % 2 else "relay", detail=d, at=float(i))
        for i, d in enumerate(details)
    ]
    text = answers.timeline_text(convs[0] if convs else _conv("x"), inbound, actions, ZoneInfo("UTC"), link)
    assert len(text) <= 40_000
    assert len(answers.template_list_text([(f"t{i}", d) for i, d in enumerate(details)])) <= 40_000
    assert all(len(answers.template_show_text("t", d * 3)) <= 40_000 for d in details)


def test_the_validator_catches_what_slack_refuses() -> None:
    """The checker itself: each known refusal of the old builders is reported."""
    long_section = [{"type": "section", "text": {"type": "mrkdwn", "text": "a" * 10_021}}]
    assert problems_of_message("x", long_section)
    context = [{"type": "context", "elements": [{"type": "mrkdwn", "text": "a" * 3001}]}]
    assert problems_of_message("x", context)
    options = [{"text": {"type": "plain_text", "text": str(i)}, "value": str(i)} for i in range(101)]
    modal = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "t"},
        "blocks": [
            {
                "type": "input",
                "block_id": "b",
                "label": {"type": "plain_text", "text": "l"},
                "element": {"type": "static_select", "action_id": "a", "options": options},
            }
        ],
    }
    assert problems_of_view(modal)
    box = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "t"},
        "blocks": [
            {
                "type": "input",
                "block_id": "b",
                "label": {"type": "plain_text", "text": "l"},
                "element": {"type": "plain_text_input", "action_id": "a", "initial_value": "a" * 3001},
            }
        ],
    }
    assert problems_of_view(box)
    assert foreign_markup([{"type": "section", "text": {"type": "mrkdwn", "text": "<!here> <javascript:x|y>"}}])
