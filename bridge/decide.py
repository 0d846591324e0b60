"""What becomes of a delivery attempt that raised: one pure decision for every target.

``decide`` maps the error of one attempt to what the runner records:

- ``Retry(at, uncertain)``: back to ``pending`` until ``at``. A rate limit
  waits for the platform's reset (at least a second; a minute when it gives
  none) and never gives up, nor does a connector not started yet (every 15
  s: its start is retried by the poller or starter). Neither is ``counted``:
  the row's attempts, which the cap counts, stay as they were. Other
  transient errors back off exponentially and, when the call may have reached
  the other side without answering (a timeout, a reset), wait at least one
  client timeout so a late answer lands before the row is looked for.
- ``Failed(reason, gave_up)``: for good: the platform refused, or a
  transient error outlasted ``max_attempts``.
- ``Paused(reason)``: the credential was refused; the runner pauses that
  side and retries the row when the pause ends (not counted either).

``uncertain`` is the error's own (``RetryLater.uncertain``, one definition in
``bridge.errors``) or the row's: an attempt that had not yet checked whether
an earlier, unanswered attempt went through stays uncertain. An unforeseen
exception is uncertain: it may have come after the request went out.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.errors import AuthFailed, DeliveryError, NotStarted, RetryLater
from bridge.loops import backoff

RATE_LIMIT_DEFAULT = 60.0  # seconds to wait on a rate limit that names no reset time
NOT_STARTED_SECONDS = 15.0  # between looks at a connector that has not started (its start is retried on its own)


@dataclass(frozen=True)
class Policy:
    max_attempts: int
    http_timeout: float


@dataclass(frozen=True)
class Retry:
    at: float
    reason: str
    uncertain: bool
    rate_limited: bool = False
    counted: bool = True  # False: not the delivery's failure (a rate limit, a connector not started), see below


@dataclass(frozen=True)
class Failed:
    reason: str
    gave_up: bool = False  # transient errors outlasted the attempts (else: refused outright)


@dataclass(frozen=True)
class Paused:
    reason: str
    uncertain: bool


Verdict = Retry | Failed | Paused


def decide(
    error: Exception, *, attempts: int, checked: bool, now: float, policy: Policy, jitter: float | None = None
) -> Verdict:
    """The outcome of an attempt (the row's ``attempts``-th) that raised ``error``.

    ``checked``: the attempt got past verifying an earlier uncertain attempt
    (or there was none to verify). ``jitter`` fixes the backoff's random
    factor (tests); None draws it.
    """

    def exhausted(reason: str) -> Failed | None:
        if attempts >= policy.max_attempts:
            return Failed(f"{reason} (gave up after {attempts} attempts)", gave_up=True)
        return None

    match error:
        case RetryLater(rate_limited=True):
            at = error.retry_at if error.retry_at is not None else now + RATE_LIMIT_DEFAULT
            return Retry(
                max(at, now + 1.0), error.reason, error.uncertain or not checked, rate_limited=True, counted=False
            )
        case NotStarted():  # nothing was sent, and waiting for a start is no attempt: never gives up
            return Retry(now + NOT_STARTED_SECONDS, error.reason, error.uncertain or not checked, counted=False)
        case RetryLater():
            if gave_up := exhausted(error.reason):
                return gave_up
            at = error.retry_at if error.retry_at is not None else now + backoff(attempts, jitter)
            if error.uncertain and not error.answered:  # let a late answer land before we look for it
                at = max(at, now + policy.http_timeout)
            return Retry(at, error.reason, error.uncertain or not checked)
        case AuthFailed():
            return Paused(error.reason, not checked)
        case DeliveryError():
            return Failed(error.reason)
    reason = f"unexpected {type(error).__name__}"
    return exhausted(reason) or Retry(now + backoff(attempts, jitter), reason, uncertain=True)
