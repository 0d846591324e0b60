"""The pure parts of automatic replies, CSAT and opt-out: the decision, opening-time text, scores, words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge import autoreply, csat, optout
from bridge.playbook_config import DEFAULT_OPT_OUT, AutoReply
from bridge.sla import BusinessHours

BERLIN = BusinessHours.parse("Europe/Berlin", {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")})
FRIDAY_NIGHT = datetime(2026, 12, 4, 20, 0, tzinfo=UTC).timestamp()
WEDNESDAY = datetime(2026, 12, 2, 10, 0, tzinfo=UTC).timestamp()  # 11:00 in Berlin
RULES = [
    AutoReply(kind="welcome", template="hello", after_silence="7d"),
    AutoReply(kind="away", template="away"),
    AutoReply(kind="acknowledgement", template="ack", cooldown="1h"),
]


def facts(now: float = WEDNESDAY, **more: object) -> autoreply.Facts:
    base: dict[str, object] = dict(platform="messenger", account="p1", inquiry_type=None, now=now, new=True)
    return autoreply.Facts(**(base | more))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ the decision


def test_a_new_conversation_in_hours_is_welcomed() -> None:
    assert autoreply.decide(RULES, facts(), BERLIN) is RULES[0]


def test_outside_hours_the_away_message_wins() -> None:
    assert autoreply.decide(RULES, facts(FRIDAY_NIGHT), BERLIN) is RULES[1]


def test_no_away_message_during_business_hours() -> None:
    rules = [r for r in RULES if r.kind == "away"]
    assert autoreply.decide(rules, facts(), BERLIN) is None
    assert autoreply.decide(rules, facts(FRIDAY_NIGHT), None) is None  # no business hours: never away


def test_later_messages_are_acknowledged_once_per_cooldown() -> None:
    later = facts(new=False, previous_inbound=WEDNESDAY - 60)
    assert autoreply.decide(RULES, later, BERLIN) is RULES[2]
    sent = facts(new=False, previous_inbound=WEDNESDAY - 60, last_sent={"acknowledgement": WEDNESDAY - 600})
    assert autoreply.decide(RULES, sent, BERLIN) is None
    assert autoreply.decide(RULES, facts(WEDNESDAY + 3600, new=False, last_sent=sent.last_sent), BERLIN) is RULES[2]


def test_never_after_an_agent_answered_nor_to_an_opted_out_customer() -> None:
    assert autoreply.decide(RULES, facts(new=False, agent_answered=WEDNESDAY - 5), BERLIN) is None
    assert autoreply.decide(RULES, facts(FRIDAY_NIGHT, agent_answered=FRIDAY_NIGHT - 5), BERLIN) is None
    assert autoreply.decide(RULES, facts(opted_out=True), BERLIN) is None


def test_a_welcome_after_a_long_silence_starts_afresh() -> None:
    week = 7 * 86400
    back = facts(new=False, previous_inbound=WEDNESDAY - week - 600, agent_answered=WEDNESDAY - week - 60)
    assert autoreply.decide(RULES, back, BERLIN) is RULES[0]
    soon = facts(new=False, previous_inbound=WEDNESDAY - 3600, agent_answered=WEDNESDAY - 60)
    assert autoreply.decide(RULES, soon, BERLIN) is None


def test_filters() -> None:
    rules = [AutoReply(kind="welcome", template="x", platforms=["instagram"], accounts=["p1"], types=["sales"])]
    assert autoreply.decide(rules, facts(), None) is None
    assert autoreply.decide(rules, facts(platform="instagram", inquiry_type="sales"), None) is rules[0]
    assert autoreply.decide(rules, facts(platform="instagram", account="p2", inquiry_type="sales"), None) is None


# ------------------------------------------------------------------------------------------- opening-time text


def test_opening_times_read_like_a_person_wrote_them() -> None:
    assert autoreply.values(BERLIN, 4 * 3600, FRIDAY_NIGHT, "UTC") == {
        "next_open": "Monday at 09:00",
        "expected_reply": "Monday at 13:00",
    }
    assert autoreply.values(BERLIN, 4 * 3600, WEDNESDAY, "UTC")["expected_reply"] == "today at 15:00"
    assert autoreply.values(None, None, WEDNESDAY, "UTC") == {"next_open": "as soon as we can",
                                                              "expected_reply": "as soon as we can"}  # fmt: skip


@given(
    now=st.floats(min_value=1.7e9, max_value=2.0e9),
    days=st.integers(min_value=0, max_value=30),
    minutes=st.integers(min_value=0, max_value=1439),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Lord_Howe"]),
)
def test_opening_text_names_the_local_day_and_time(now: float, days: int, minutes: int, zone: str) -> None:
    tz = ZoneInfo(zone)
    today = datetime.fromtimestamp(now, tz).date()
    local = datetime.combine(today + timedelta(days=days), datetime.min.time(), tz) + timedelta(minutes=minutes)
    at = local.astimezone(UTC)
    text = autoreply.when_text(at, now, zone)
    shown = at.astimezone(tz)
    assert text.endswith(f" at {shown:%H:%M}")
    gap = (shown.date() - today).days
    if gap <= 0:
        assert text.startswith("today")
    elif gap == 1:
        assert text.startswith("tomorrow")
    else:
        assert text.startswith(f"{shown:%A}")
        assert text == (
            f"{shown:%A} {shown.day} {shown:%B} at {shown:%H:%M}" if gap >= 7 else f"{shown:%A} at {shown:%H:%M}"
        )


@given(now=st.floats(min_value=1.7e9, max_value=2.0e9))
def test_next_open_is_inside_business_hours_and_not_before_now(now: float) -> None:
    opening = autoreply.next_open(BERLIN, now)
    assert opening is not None and opening.timestamp() >= now - 1e-3
    assert autoreply.is_open(BERLIN, opening.timestamp())
    assert autoreply.is_open(BERLIN, now) == (opening.timestamp() <= now + 1e-3)


# ---------------------------------------------------------------------------------------------------- scores


@pytest.mark.parametrize(
    ("text", "score", "comment"),
    [
        ("4", 4, ""),
        (" 5 ", 5, ""),
        ("4/5", 4, ""),
        ("4 out of 5", 4, ""),
        ("4. Thanks, quick and kind!", 4, "Thanks, quick and kind!"),
        ("1 - my parcel never came", 1, "my parcel never came"),
        ("3\nok I guess", 3, "ok I guess"),
        ("5 stars", 5, ""),
        ("⭐⭐⭐⭐", 4, ""),
        ("⭐⭐⭐⭐ great", 4, "great"),
        ("★★", 2, ""),
        ("4️⃣", 4, ""),
        ("2⃣ slow", 2, "slow"),
        ("3 ⭐⭐⭐", 3, ""),
    ],
)
def test_scores(text: str, score: int, comment: str) -> None:
    assert csat.parse(text) == csat.Answer(score, comment)


@pytest.mark.parametrize(
    "text", ["999", "0", "6", "45", "4.5", "2 items are missing", "hello", "", "⭐⭐⭐⭐⭐⭐", "5" + "!" * 3000]
)
def test_not_scores(text: str) -> None:
    assert csat.parse(text) is None


def test_quick_reply_payloads_belong_to_their_survey() -> None:
    assert csat.parse("5 ⭐⭐⭐⭐⭐", csat.payload(7, 5), 7) == csat.Answer(5)
    assert csat.parse("hello", "CSAT:7:999", 7) is None  # forged: not one of ours
    assert csat.parse("hello", csat.payload(8, 5), 7) is None  # another survey's
    assert all(len(title) <= 20 and len(p) <= 1000 for title, p in csat.quick_replies(10**17))


@given(st.text(max_size=50))
def test_a_score_is_always_1_to_5(text: str) -> None:
    answer = csat.parse(text)
    assert answer is None or 1 <= answer.score <= 5


@given(st.integers(min_value=6, max_value=10**9))
def test_numbers_above_five_are_not_scores(n: int) -> None:
    assert csat.parse(str(n)) is None


# ------------------------------------------------------------------------------------------------- opt-out


@pytest.mark.parametrize("text", ["STOP", " stop ", "Stop!", "stop.", "Opt-out", "UNSUBSCRIBE", "停止。", "No más"])
def test_opt_out_words(text: str) -> None:
    assert optout.is_opt_out(text, DEFAULT_OPT_OUT)


@pytest.mark.parametrize("text", ["stop sending me the wrong size", "stopp it", "", "!!!", "stop" * 2500])
def test_not_opt_out(text: str) -> None:
    assert not optout.is_opt_out(text, DEFAULT_OPT_OUT)


@given(
    word=st.sampled_from(DEFAULT_OPT_OUT), pad=st.sampled_from(["", " ", "!", "...", "\n", " ?"]), upper=st.booleans()
)
def test_any_case_and_punctuation(word: str, pad: str, upper: bool) -> None:
    assert optout.is_opt_out(pad + (word.upper() if upper else word) + pad, DEFAULT_OPT_OUT)
