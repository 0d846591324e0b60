"""The pure parts of `dmbridge doctor`: scope comparison, Graph version dates, the table, the not_in_channel hint."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bridge import doctor, membership
from bridge.config import Settings
from bridge.deliveries import Card, ChannelNotice
from bridge.doctor_platforms import GRAPH_EXPIRES, WARN_DAYS, graph_version
from bridge.store.tables import Conversation

scope = st.text(alphabet="abcdefghijklmnopqrstuvwxyz:._", min_size=1, max_size=20)


@given(st.sets(scope, max_size=15), st.sets(scope, max_size=15))
def test_scopes_ok_exactly_when_nothing_is_missing(granted: set[str], needed: set[str]) -> None:
    check = doctor.slack_scopes(granted, needed)
    assert check.ok == needed.issubset(granted)
    if not check.ok:
        assert all(s in check.detail for s in needed - granted) and "Reinstall" in check.fix


def test_scopes_unreported_is_a_failure() -> None:
    assert not doctor.slack_scopes(None, {"chat:write"}).ok


def test_manifest_scopes_include_what_channels_need() -> None:
    assert {
        "chat:write",
        "chat:write.public",
        "usergroups:read",
        "channels:read",
        "groups:read",
    } <= doctor.manifest_scopes()


def _settings(url: str) -> Settings:
    return Settings(_env_file=None, meta_graph_url=url)  # type: ignore[call-arg]


@given(st.sampled_from(sorted(GRAPH_EXPIRES)), st.integers(min_value=-400, max_value=400))
def test_graph_version_fails_within_90_days_of_its_end(version: str, days_before_end: int) -> None:
    today = GRAPH_EXPIRES[version] - timedelta(days=days_before_end)
    check = graph_version(_settings(f"https://graph.facebook.com/{version}"), today)
    assert check.ok == (days_before_end >= WARN_DAYS)


def test_graph_version_unknown_newer_is_fine_and_missing_is_not() -> None:
    assert graph_version(_settings("https://graph.facebook.com/v26.0/"), date(2026, 12, 1)).ok
    assert not graph_version(_settings("https://graph.facebook.com"), date(2026, 12, 1)).ok
    expired = graph_version(_settings("https://graph.facebook.com/v21.0"), date(2027, 2, 1))
    assert not expired.ok and "stopped working on 2027-01-21" in expired.detail


@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=30), st.booleans(), st.text(max_size=50), st.text(max_size=50)),
        max_size=12,
    )
)
def test_table_has_a_line_per_check_and_counts_failures(rows: list[tuple[str, bool, str, str]]) -> None:
    checks = [doctor.Check(n, ok, d, f) for n, ok, d, f in rows]
    text = doctor.table(checks)
    failed = sum(not c.ok for c in checks)
    assert text.endswith(f"{len(checks) - failed} passed, {failed} failed")
    assert sum(line.startswith(("✅", "❌")) for line in text.splitlines()) >= len(checks)
    assert doctor.summary_ok(checks) == (failed == 0)


def test_hint_only_for_membership_refusals_and_never_into_the_refusing_channel() -> None:
    settings = Settings(_env_file=None, dmbridge_channel="C0INBOX")  # type: ignore[call-arg]
    conv = Conversation(
        id=7, platform="x", account="acme", channel="C0VIP", customer_id="1", customer_name="Maria", thread_ts="1.2"
    )
    notice = ChannelNotice("k", None, "C0LEGAL", "text")
    assert membership.hint(settings, notice, conv, "Slack chat.postMessage failed: msg_too_long", 0) is None
    assert membership.refused_channel(notice, conv, "Slack chat.postMessage failed: not_in_channel") == "C0LEGAL"
    card = Card.of(7)
    assert membership.refused_channel(card, conv, "Slack chat.postMessage failed: channel_not_found") == "C0VIP"
    inbox = Conversation(id=8, platform="x", account="acme", channel="C0INBOX", customer_id="2", customer_name="J")
    assert membership.hint(settings, card, inbox, "Slack chat.postMessage failed: not_in_channel", 0) is None
