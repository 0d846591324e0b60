from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bridge.reports import ConversationFacts, build_report, render
from bridge.sla import Event, Kind, Mark, Policy, Target

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
POLICY = Policy(
    "standard", (Target(Kind.FIRST_RESPONSE, 3600), Target(Kind.NEXT_RESPONSE, 3600), Target(Kind.RESOLUTION, 86400))
)


def ev(minutes: float, mark: Mark) -> Event:
    return Event(T0 + timedelta(minutes=minutes), mark)


def test_a_worked_week() -> None:
    fast = ConversationFacts(
        1,
        "U0SAM",
        POLICY,
        [ev(0, Mark.CUSTOMER), ev(20, Mark.AGENT), ev(30, Mark.CUSTOMER), ev(100, Mark.AGENT), ev(120, Mark.RESOLVE)],
    )
    slow = ConversationFacts(2, "U0KIM", POLICY, [ev(60, Mark.CUSTOMER), ev(60 + 150, Mark.AGENT)])
    waiting = ConversationFacts(3, None, POLICY, [ev(300, Mark.CUSTOMER)])
    before = ConversationFacts(4, "U0SAM", POLICY, [ev(-10 * 1440, Mark.CUSTOMER), ev(-10 * 1440 + 5, Mark.AGENT)])
    report = build_report([fast, slow, waiting, before], T0, T0 + timedelta(days=7), ZoneInfo("Europe/Berlin"))
    assert (report.messages_in, report.messages_out, report.conversations) == (4, 3, 3)
    assert sorted(report.first_response) == [20 * 60, 150 * 60]
    assert report.next_response == [70 * 60]
    assert report.resolution == [120 * 60]
    # met: #1 first response (20m) and resolution (90m open); missed: #1 next response (70m), #2 first (150m)
    assert sorted(report.attainment["standard"]) == [False, False, True, True]
    assert report.by_agent["U0KIM"] == [False]
    assert report.hours[10] == 2 and report.hours[11] == 1  # 09:00 UTC is 10:00 in Berlin
    text = render(report, "Last 7 days")
    assert "Messages in: *4*" in text and "First response: median 1h 25m, p90 2h 30m (2)" in text
    assert "standard 50% of 4" in text and "<@U0KIM> 0% of 1" in text and "Busiest hours: 10:00 (2)" in text


def test_an_empty_period() -> None:
    text = render(build_report([], T0, T0 + timedelta(days=1), ZoneInfo("UTC")), "Last 1 days")
    assert "Messages in: *0*" in text and "First response: —" in text
