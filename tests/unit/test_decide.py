"""The one decision on a failed attempt, for Slack and platform deliveries alike (``bridge.decide``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.decide import NOT_STARTED_SECONDS, RATE_LIMIT_DEFAULT, Failed, Paused, Policy, Retry, decide
from bridge.errors import AuthFailed, NotStarted, Rejected, RetryLater

POLICY = Policy(max_attempts=5, http_timeout=10.0)
NOW = 1_000.0


def run(error: Exception, attempts: int = 1, checked: bool = True) -> object:
    return decide(error, attempts=attempts, checked=checked, now=NOW, policy=POLICY, jitter=1.0)


def test_a_rate_limit_waits_for_the_reset_and_never_gives_up() -> None:
    assert run(RetryLater("slow", retry_at=NOW + 30, rate_limited=True), attempts=99) == Retry(
        NOW + 30, "slow", uncertain=False, rate_limited=True, counted=False
    )
    assert run(RetryLater("slow", rate_limited=True)) == Retry(NOW + RATE_LIMIT_DEFAULT, "slow", False, True, False)
    assert run(RetryLater("slow", retry_at=NOW - 5, rate_limited=True)) == Retry(NOW + 1, "slow", False, True, False)


def test_a_transient_error_backs_off_and_an_uncertain_one_waits_a_client_timeout() -> None:
    assert run(RetryLater("503"), attempts=1) == Retry(NOW + 2, "503", uncertain=False)
    assert run(RetryLater("reset", uncertain=True), attempts=1) == Retry(NOW + 10, "reset", uncertain=True)
    assert run(RetryLater("reset", uncertain=True), attempts=4) == Retry(NOW + 16, "reset", uncertain=True)
    assert run(RetryLater("later", retry_at=NOW + 42)) == Retry(NOW + 42, "later", uncertain=False)


def test_a_connector_not_started_is_waited_for_and_never_gives_up() -> None:
    waiting = Retry(NOW + NOT_STARTED_SECONDS, "X connector not started", False, counted=False)
    assert run(NotStarted("X connector not started"), attempts=1) == waiting
    assert run(NotStarted("X connector not started"), attempts=99) == waiting  # an hour of a refused start
    assert run(NotStarted("X connector not started"), attempts=3, checked=False).uncertain  # type: ignore[attr-defined]
    assert run(RetryLater("503"), attempts=1).counted  # type: ignore[attr-defined]  # a transient failure counts


def test_transient_errors_stop_at_the_attempt_cap() -> None:
    assert run(RetryLater("503"), attempts=5) == Failed("503 (gave up after 5 attempts)", gave_up=True)
    assert run(KeyError("bug"), attempts=5) == Failed("unexpected KeyError (gave up after 5 attempts)", gave_up=True)


def test_refusals_fail_at_once_and_a_refused_credential_pauses() -> None:
    assert run(Rejected("X refused: this user does not accept your DMs")) == Failed(
        "X refused: this user does not accept your DMs"
    )
    assert run(AuthFailed("invalid_auth"), checked=False) == Paused("invalid_auth", uncertain=True)
    assert run(AuthFailed("invalid_auth")) == Paused("invalid_auth", uncertain=False)


def test_an_unforeseen_exception_is_uncertain_it_may_have_come_after_the_request() -> None:
    assert run(KeyError("bug"), attempts=2) == Retry(NOW + 4, "unexpected KeyError", uncertain=True)


@given(attempts=st.integers(0, 40), checked=st.booleans(), uncertain=st.booleans(), limited=st.booleans())
def test_an_unchecked_row_stays_uncertain_and_retries_are_never_in_the_past(
    attempts: int, checked: bool, uncertain: bool, limited: bool
) -> None:
    verdict = decide(
        RetryLater("x", uncertain=uncertain, rate_limited=limited),
        attempts=attempts,
        checked=checked,
        now=NOW,
        policy=POLICY,
    )
    if isinstance(verdict, Retry):
        assert verdict.at > NOW and verdict.at <= NOW + max(RATE_LIMIT_DEFAULT, 300 * 1.25, POLICY.http_timeout)
        assert verdict.uncertain == (uncertain or not checked)
    else:
        assert isinstance(verdict, Failed) and not limited and attempts >= POLICY.max_attempts


@pytest.mark.parametrize("error", [RetryLater("x"), Rejected("x"), AuthFailed("x"), ValueError("x")])
def test_every_error_gets_a_verdict(error: Exception) -> None:
    assert isinstance(run(error), Retry | Failed | Paused)


def test_a_5xx_is_uncertain_but_has_answered_so_there_is_no_late_answer_to_wait_for() -> None:
    assert run(RetryLater("X server error 503", uncertain=True, answered=True), attempts=1) == Retry(
        NOW + 2, "X server error 503", uncertain=True
    )
