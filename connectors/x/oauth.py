"""X OAuth 2.0 user context: the authorization-code flow with PKCE, and tokens refreshed before they expire.

From X's documentation (docs.x.com, "OAuth 2.0 Authorization Code Flow with PKCE" and "user access
token"): the user authorizes at ``https://x.com/i/oauth2/authorize`` (``response_type=code``,
``client_id``, ``redirect_uri``, ``scope``, ``state``, ``code_challenge``, ``code_challenge_method=S256``);
the code is exchanged at ``POST https://api.x.com/2/oauth2/token`` (form-encoded ``grant_type=
authorization_code``, ``code``, ``redirect_uri``, ``code_verifier``; ``client_id`` in the body for a
public client, HTTP Basic ``client_id:client_secret`` for a confidential one). Access tokens last two
hours (``expires_in`` 7200); with ``offline.access`` a refresh token comes too, and ``grant_type=
refresh_token`` returns a new pair — the old refresh token stops working, so the new one must be kept.
Errors are ``{"error": "invalid_request", "error_description": "Value passed for the token was
invalid."}`` (400) or ``unauthorized_client`` (401) for a confidential client without Basic auth.

Plain httpx rather than tweepy's ``OAuth2UserHandler``: that handler hard-codes the twitter.com hosts
(no emulator, no ``api.x.com``), refuses ``http://`` through oauthlib, and has no refresh helper of
its own, so wrapping it would take more code than the two form posts below.

The stored, refreshed tokens (table ``x_oauth_token``, shared by every process) are
``bridge.x_tokens.TokenStore``; the connector sees them as ``AccessTokens``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from bridge.errors import AuthFailed, server_error, unreachable

T = TypeVar("T")

log = logging.getLogger(__name__)

AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
TOKEN_URL = "https://api.x.com/2/oauth2/token"
SCOPES = ("dm.read", "dm.write", "tweet.read", "users.read", "media.write", "offline.access")
REFRESH_MARGIN = 300.0  # seconds before expiry at which a token is refreshed


class OAuthError(ValueError):
    """The authorization did not complete (denied, wrong state, no code)."""


class AccessTokens(Protocol):
    """OAuth 2.0 user tokens that stay fresh: what the connector calls X with."""

    def access_token(self) -> str:
        """A token to call X with, refreshed first when it is about to expire."""
        ...

    def refresh(self, *, stale: str) -> str:
        """A replacement for ``stale`` (refused with a 401, or expiring)."""
        ...


def with_fresh_token(tokens: AccessTokens, use: Callable[[str], None], call: Callable[[], T]) -> T:
    """One X call with stored OAuth 2.0 tokens: a fresh token first (``use`` hands it to the client) and, after a
    401, one refresh and one retry (a 401 means X did nothing, so the retry cannot duplicate a send)."""
    used = tokens.access_token()
    use(used)
    try:
        return call()
    except AuthFailed:
        use(tokens.refresh(stale=used))
        return call()


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str | None
    expires_at: float
    scope: str


def pkce_pair() -> tuple[str, str]:
    """``(code_verifier, code_challenge)`` for S256 (RFC 7636: 43–128 characters of the unreserved set)."""
    verifier = secrets.token_urlsafe(64)[:128]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def authorize_url(
    client_id: str,
    redirect_uri: str,
    state: str,
    challenge: str,
    *,
    base: str = AUTHORIZE_URL,
    scopes: tuple[str, ...] = SCOPES,
) -> str:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    return f"{base}?{query}"


def code_from(pasted: str, state: str) -> str:
    """The authorization code in what the operator pasted: the whole redirect URL (its ``state`` must
    match) or the bare code."""
    text = pasted.strip()
    if not text:
        raise OAuthError("nothing was pasted")
    if "?" not in text and "=" not in text:
        return text
    query = parse_qs(urlsplit(text).query if "?" in text else text)
    if "error" in query:
        raise OAuthError(f"X answered {query['error'][0]}: the authorization was not granted")
    if query.get("state", [""])[0] != state:
        raise OAuthError("the redirect's state does not match this authorization (an old or foreign link?)")
    code = query.get("code", [""])[0]
    if not code:
        raise OAuthError("the redirect URL has no code")
    return code


def needs_refresh(expires_at: float, now: float, margin: float = REFRESH_MARGIN) -> bool:
    """Whether a token expiring at ``expires_at`` should be refreshed at ``now``."""
    return now >= expires_at - margin


class TokenEndpoint:
    """``POST /2/oauth2/token`` for one client (confidential when ``client_secret`` is set)."""

    def __init__(
        self,
        url: str,
        client_id: str,
        client_secret: str = "",
        *,
        timeout: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url, self.client_id, self.client_secret = url, client_id, client_secret
        self.timeout, self.clock = timeout, clock

    def exchange(self, code: str, verifier: str, redirect_uri: str) -> Tokens:
        return self._post(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
        )

    def refresh(self, refresh_token: str) -> Tokens:
        return self._post({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def _post(self, form: dict[str, str]) -> Tokens:
        auth = (self.client_id, self.client_secret) if self.client_secret else None
        if auth is None:
            form = form | {"client_id": self.client_id}
        now = self.clock()
        try:
            resp = httpx.post(
                self.url, data=form, auth=auth, timeout=self.timeout, headers={"Accept": "application/json"}
            )
        except httpx.HTTPError as exc:  # a grant may have been used up before the answer was lost
            raise unreachable("X token endpoint", exc) from exc
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code >= 500 or resp.status_code == 429:
            raise server_error(f"X token endpoint answered {resp.status_code}", resp.status_code)
        if resp.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            error = body.get("error", resp.status_code) if isinstance(body, dict) else resp.status_code
            detail = body.get("error_description", "") if isinstance(body, dict) else ""
            raise AuthFailed(f"X refused the OAuth 2.0 {form['grant_type']} grant: {error} {detail}".strip())
        return Tokens(
            access_token=str(body["access_token"]),
            refresh_token=body.get("refresh_token"),
            expires_at=now + float(body.get("expires_in") or 7200),
            scope=str(body.get("scope") or ""),
        )
