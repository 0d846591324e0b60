"""The one exception tree of dmbridge.

::

    DmbridgeError
     ├── ConfigError            settings missing or inconsistent; raised at start-up
     ├── BadPayload             an inbound request we refuse (4xx); nothing is stored
     └── DeliveryError          a platform call did not deliver
          ├── RetryLater        transient: 5xx, timeout, 429 (``retry_at`` epoch seconds or None)
          ├── Rejected          permanent: the platform refused this message (``reason`` is for people)
          └── AuthFailed        the credential no longer works; retried slowly until it does

Connectors translate their SDK's exceptions into these at the edge; the core
never sees a tweepy, requests or slack_sdk exception.
"""

from __future__ import annotations


class DmbridgeError(Exception):
    """Base of every error dmbridge raises on purpose."""


class ConfigError(DmbridgeError):
    """The settings cannot work."""


class BadPayload(DmbridgeError):
    """An inbound payload is malformed or unsigned; answer 4xx and store nothing."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class DeliveryError(DmbridgeError):
    """A delivery to Slack or a platform did not happen."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryLater(DeliveryError):
    """Try again at ``retry_at`` (epoch seconds), or after backoff when None.

    ``uncertain``: the call may have taken effect (timeout, reset, 5xx after
    the request went out); the next attempt verifies before sending again.
    """

    def __init__(self, reason: str, retry_at: float | None = None, rate_limited: bool = False,
                 uncertain: bool = False) -> None:
        super().__init__(reason)
        self.retry_at = retry_at
        self.rate_limited = rate_limited
        self.uncertain = uncertain


class Rejected(DeliveryError):
    """The platform refused this message for good; ``reason`` is shown to the team."""


class AuthFailed(DeliveryError):
    """The credential was refused (revoked, expired)."""
