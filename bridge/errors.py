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
never sees a tweepy, requests or slack_sdk exception. Whether a failed call may
have reached the other side (``RetryLater.uncertain``) is decided once, here:
:func:`may_have_arrived`, :func:`unreachable` and :func:`server_error`, used by
every connector and by the Slack client alike.
"""

from __future__ import annotations

import errno
import socket


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
    ``answered``: the other side did answer (a 5xx), so no late answer is on
    its way: there is nothing to wait for before verifying.
    """

    def __init__(
        self,
        reason: str,
        retry_at: float | None = None,
        rate_limited: bool = False,
        uncertain: bool = False,
        answered: bool = False,
    ) -> None:
        super().__init__(reason)
        self.retry_at = retry_at
        self.rate_limited = rate_limited
        self.uncertain = uncertain
        self.answered = answered


class NotStarted(RetryLater):
    """The connector has not learned who it is yet (its first call to the platform has not succeeded):
    nothing was sent, try again shortly. Not a refused credential, so no pause and no notice."""


class Rejected(DeliveryError):
    """The platform refused this message for good; ``reason`` is shown to the team."""


class AuthFailed(DeliveryError):
    """The credential was refused (revoked, expired)."""


# ---------------------------------------------------------------- did a failed call reach the other side?
# By class name along each exception's MRO, so this module imports no HTTP library: httpx, requests,
# urllib3 and the standard library's urllib (slack_sdk's) each wrap the socket error their own way.

NEVER_SENT = frozenset(
    {
        "httpx.ConnectError",
        "httpx.ConnectTimeout",
        "httpx.PoolTimeout",  # no connection (or none free)
        "httpx.UnsupportedProtocol",
        "requests.exceptions.ConnectTimeout",
        "requests.exceptions.InvalidURL",
        "urllib3.exceptions.ConnectTimeoutError",  # NewConnectionError and NameResolutionError too
        "urllib3.exceptions.EmptyPoolError",
        "urllib3.exceptions.LocationParseError",
    }
)
"""Failures before any byte of the request went out: the call cannot have taken effect."""

AFTER_SENDING = frozenset(
    {
        "httpx.ReadTimeout",
        "httpx.WriteTimeout",
        "httpx.ReadError",
        "httpx.WriteError",
        "httpx.CloseError",
        "httpx.RemoteProtocolError",
        "httpx.DecodingError",
        "requests.exceptions.ReadTimeout",
        "requests.exceptions.ChunkedEncodingError",
        "requests.exceptions.ContentDecodingError",
        "urllib3.exceptions.ReadTimeoutError",
        "urllib3.exceptions.ProtocolError",
        "http.client.HTTPException",  # RemoteDisconnected, IncompleteRead, BadStatusLine
        "builtins.ConnectionResetError",
        "builtins.ConnectionAbortedError",
        "builtins.BrokenPipeError",
        "builtins.TimeoutError",  # socket.timeout: sending or waiting for the answer
    }
)
"""Failures once the connection was made: the request may have been acted on before the answer was lost."""

NO_CONNECTION_ERRNOS = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def changes_state(method: str | None) -> bool:
    """Whether an HTTP request may change something on the other side (anything but a read; unknown: yes)."""
    return method is None or method.upper() not in SAFE_METHODS


def _verdict(exc: BaseException) -> bool | None:
    """True: sent; False: never sent; None: this exception alone does not say."""
    if isinstance(exc, (ConnectionRefusedError, socket.gaierror)):
        return False
    names = [f"{k.__module__}.{k.__qualname__}" for k in type(exc).__mro__]
    if any(n in NEVER_SENT for n in names):
        return False
    if any(n in AFTER_SENDING for n in names):
        return True
    if type(exc) is OSError and exc.errno in NO_CONNECTION_ERRNOS:
        return False
    return None


def _causes(exc: BaseException) -> list[BaseException]:
    """What ``exc`` wraps, nearest first: urllib's and urllib3's ``reason``, requests' first argument
    (the urllib3 error it wraps), then ``raise … from`` and the exception being handled."""
    reason = getattr(exc, "reason", None)
    wrapped = [reason] if isinstance(reason, BaseException) else []
    wrapped += [a for a in exc.args if isinstance(a, BaseException)]
    return wrapped + [e for e in (exc.__cause__, exc.__context__) if e is not None]


def may_have_arrived(exc: BaseException) -> bool:
    """Whether a call that failed with ``exc`` may have reached the other side and taken effect.

    No: a connection never made (refused, DNS failure, no route, connect timeout, no free pooled
    connection). Yes: a timeout, reset or cut answer after the connection was made, and any failure
    this cannot place (a resend must then check first). The outermost exception that says wins;
    the ones it wraps are looked at only when it does not.
    """
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen or len(seen) > 32:
            continue
        seen.add(id(current))
        verdict = _verdict(current)
        if verdict is not None:
            return verdict
        todo.extend(_causes(current))
    return True


def unreachable(service: str, exc: BaseException, *, changes: bool = True, reason: str | None = None) -> RetryLater:
    """The :class:`RetryLater` for a call to ``service`` that got no answer because of ``exc``.

    ``uncertain`` when the call may have arrived and would have changed something there (``changes``:
    False for reads). Raise it ``from exc``. ``reason`` replaces "{service} unreachable: {exception}".
    """
    return RetryLater(
        reason or f"{service} unreachable: {type(exc).__name__}", uncertain=changes and may_have_arrived(exc)
    )


def server_error(reason: str, status: int, *, changes: bool = True) -> RetryLater:
    """The :class:`RetryLater` for a 5xx answer: a call that changes state may have been acted on first
    (a gateway's 502/504 says nothing of what the service behind it did), so it is ``uncertain``; it is
    ``answered``: no later answer will come to wait for."""
    return RetryLater(reason, uncertain=changes and status >= 500, answered=True)
