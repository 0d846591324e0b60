"""tweepy, pointed at the configured X API base URL, with its exceptions translated.

tweepy hard-codes ``https://api.twitter.com``; we give the client a
``requests.Session`` that rewrites that prefix (the documented ``session``
attribute), so OAuth 1.0a signatures cover the URL actually requested.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
import tweepy

from bridge.errors import AuthFailed, Rejected, RetryLater, changes_state, server_error, unreachable

TWEEPY_HOST = "https://api.twitter.com"
T = TypeVar("T")


class RedirectingSession(requests.Session):
    """A requests session that sends tweepy's fixed host to ``base_url``."""

    def __init__(self, base_url: str, timeout: float = 15.0) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if url.startswith(TWEEPY_HOST):
            url = self.base_url + url[len(TWEEPY_HOST) :]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


def make_client(
    *,
    base_url: str,
    consumer_key: str = "",
    consumer_secret: str = "",
    access_token: str = "",
    access_token_secret: str = "",
    user_bearer_token: str = "",
    timeout: float = 15.0,
) -> tuple[tweepy.Client, bool]:
    """A tweepy client returning raw responses; second value: whether calls use OAuth 1.0a (``user_auth``)."""
    oauth1 = bool(consumer_key and consumer_secret and access_token and access_token_secret)
    client = tweepy.Client(
        bearer_token=None if oauth1 else user_bearer_token,
        consumer_key=consumer_key or None,
        consumer_secret=consumer_secret or None,
        access_token=access_token or None,
        access_token_secret=access_token_secret or None,
        return_type=requests.Response,
        wait_on_rate_limit=False,
    )
    client.session = RedirectingSession(base_url, timeout)
    return client, oauth1


def reset_of(response: requests.Response | None, now: Callable[[], float] = time.time) -> float | None:
    """When a rate limit lifts: the 24-hour limit when that is exhausted, else the 15-minute window."""
    if response is None:
        return None
    headers = response.headers
    if headers.get("x-user-limit-24hour-remaining") == "0" and headers.get("x-user-limit-24hour-reset"):
        return float(headers["x-user-limit-24hour-reset"])
    if headers.get("x-app-limit-24hour-remaining") == "0" and headers.get("x-app-limit-24hour-reset"):
        return float(headers["x-app-limit-24hour-reset"])
    if headers.get("x-rate-limit-reset"):
        return float(headers["x-rate-limit-reset"])
    return None


def _detail(exc: tweepy.HTTPException) -> str:
    messages = [m for m in getattr(exc, "api_messages", []) if m]
    if messages:
        return "; ".join(messages)
    try:
        body = exc.response.json()
        return str(body.get("detail") or body.get("title") or exc.response.reason)
    except ValueError:
        return str(exc.response.reason)


def call(fn: Callable[[], T]) -> T:
    """Run one tweepy call, translating its failures into dmbridge's error tree."""
    try:
        return fn()
    except tweepy.TooManyRequests as exc:
        retry = reset_of(exc.response)
        daily = exc.response.headers.get("x-user-limit-24hour-remaining") == "0"
        reason = "X daily sending limit reached" if daily else "X rate limit reached"
        raise RetryLater(reason, retry_at=retry, rate_limited=True) from exc
    except tweepy.Unauthorized as exc:
        raise AuthFailed(f"X refused the credential: {_detail(exc)}") from exc
    except tweepy.Forbidden as exc:
        detail = _detail(exc)
        if "not permitted to send" in detail or "does not accept" in detail.lower():
            raise Rejected("X refused: this user does not accept your DMs") from exc
        raise Rejected(f"X refused: {detail}") from exc
    except (tweepy.BadRequest, tweepy.NotFound) as exc:
        raise Rejected(f"X refused the message: {_detail(exc)}") from exc
    except tweepy.TwitterServerError as exc:  # a send may have gone out before X failed
        status = exc.response.status_code
        raise server_error(f"X server error {status}", status, changes=_changes(exc.response.request)) from exc
    except tweepy.HTTPException as exc:
        raise RetryLater(f"X answered {exc.response.status_code}") from exc
    except requests.RequestException as exc:  # a timeout or reset may come after X acted; a refused connect cannot
        raise unreachable("X", exc, changes=_changes(exc.request)) from exc


def _changes(request: requests.PreparedRequest | requests.Request | None) -> bool:
    """Whether the failed request was a send (a POST) rather than a read; unknown counts as a send."""
    return changes_state(request.method if request is not None else None)
