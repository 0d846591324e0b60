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

Several processes share the tokens through the ``x_oauth_token`` table: a refresh takes the
``x-oauth-refresh`` transaction lock (``bridge.store.locks.xact_serialize``; SQLite's write lock does
the same), re-reads the row, and refreshes only if the token is still the stale one; the new pair is
written in that transaction. Everyone else waits on the lock and then reloads what was written.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from bridge.errors import AuthFailed, server_error, unreachable
from bridge.store.db import Database
from bridge.store.locks import xact_serialize
from bridge.store.tables import XOAuthToken

log = logging.getLogger(__name__)

AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
TOKEN_URL = "https://api.x.com/2/oauth2/token"
SCOPES = ("dm.read", "dm.write", "tweet.read", "users.read", "offline.access")
REFRESH_MARGIN = 300.0  # seconds before expiry at which a token is refreshed
REFRESH_LOCK = "x-oauth-refresh"


class OAuthError(ValueError):
    """The authorization did not complete (denied, wrong state, no code)."""


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


def authorize_url(client_id: str, redirect_uri: str, state: str, challenge: str, *,
                  base: str = AUTHORIZE_URL, scopes: tuple[str, ...] = SCOPES) -> str:
    query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
                       "scope": " ".join(scopes), "state": state, "code_challenge": challenge,
                       "code_challenge_method": "S256"})
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


def token_status(row: XOAuthToken | None, now: float) -> tuple[bool, str]:
    """OAuth 2.0 token freshness for ``dmbridge doctor``: ok, and a line saying why."""
    if row is None:
        return False, "no X OAuth 2.0 tokens stored: run `dmbridge x-auth`"
    left = row.expires_at - now
    if row.refresh_token:
        when = f"expires in {int(left // 60)} min" if left > 0 else f"expired {int(-left // 60)} min ago"
        return True, f"access token {when}; refreshed automatically ({row.generation} refreshes so far)"
    if left > 0:
        return True, f"access token expires in {int(left // 60)} min and cannot be refreshed (no offline.access)"
    return False, "access token expired and there is no refresh token: run `dmbridge x-auth` again"


class TokenEndpoint:
    """``POST /2/oauth2/token`` for one client (confidential when ``client_secret`` is set)."""

    def __init__(self, url: str, client_id: str, client_secret: str = "", *, timeout: float = 15.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.url, self.client_id, self.client_secret = url, client_id, client_secret
        self.timeout, self.clock = timeout, clock

    def exchange(self, code: str, verifier: str, redirect_uri: str) -> Tokens:
        return self._post({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                           "code_verifier": verifier})

    def refresh(self, refresh_token: str) -> Tokens:
        return self._post({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def _post(self, form: dict[str, str]) -> Tokens:
        auth = (self.client_id, self.client_secret) if self.client_secret else None
        if auth is None:
            form = form | {"client_id": self.client_id}
        now = self.clock()
        try:
            resp = httpx.post(self.url, data=form, auth=auth, timeout=self.timeout,
                              headers={"Accept": "application/json"})
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
        return Tokens(access_token=str(body["access_token"]), refresh_token=body.get("refresh_token"),
                      expires_at=now + float(body.get("expires_in") or 7200), scope=str(body.get("scope") or ""))


class TokenStore:
    """The stored tokens of one X app, refreshed when due (one process at a time)."""

    def __init__(self, db: Database, endpoint: TokenEndpoint, *, clock: Callable[[], float] = time.time,
                 margin: float = REFRESH_MARGIN) -> None:
        self.db, self.endpoint, self.clock, self.margin = db, endpoint, clock, margin
        self._row: XOAuthToken | None = None
        self._lock = threading.Lock()

    @property
    def client_id(self) -> str:
        return self.endpoint.client_id

    def load(self) -> XOAuthToken | None:
        with self.db.read() as s:
            self._row = s.get(XOAuthToken, self.client_id)
        return self._row

    def save(self, tokens: Tokens) -> XOAuthToken:
        """Store a new authorization (``dmbridge x-auth``), replacing any earlier one."""
        with self.db.session() as s:
            xact_serialize(s, REFRESH_LOCK)
            row = s.get(XOAuthToken, self.client_id) or XOAuthToken(
                client_id=self.client_id, access_token="", expires_at=0.0, updated_at=0.0)
            row.access_token, row.refresh_token = tokens.access_token, tokens.refresh_token
            row.expires_at, row.scope, row.updated_at = tokens.expires_at, tokens.scope, self.clock()
            row.generation = 0
            s.add(row)
        self._row = row
        return row

    def token_status(self, now: float) -> tuple[bool, str]:
        """For ``dmbridge doctor``: whether the stored tokens keep working, and why."""
        return token_status(self.load(), now)

    def access_token(self) -> str:
        """A token to call X with, refreshed first when it is about to expire."""
        row = self._row or self.load()
        if row is None:
            raise AuthFailed("no X OAuth 2.0 tokens are stored: run `dmbridge x-auth`")
        if needs_refresh(row.expires_at, self.clock(), self.margin):
            return self.refresh(stale=row.access_token)
        return row.access_token

    def refresh(self, *, stale: str) -> str:
        """Replace ``stale`` (expiring, or refused with a 401). When another thread or process has
        already replaced it, the newer token is read back instead of refreshing again."""
        with self._lock, self.db.session() as s:
            xact_serialize(s, REFRESH_LOCK)
            row = s.get(XOAuthToken, self.client_id)
            if row is None:
                raise AuthFailed("no X OAuth 2.0 tokens are stored: run `dmbridge x-auth`")
            if row.access_token != stale and not needs_refresh(row.expires_at, self.clock(), self.margin):
                self._row = row  # someone else refreshed: use theirs
                return row.access_token
            if not row.refresh_token:
                raise AuthFailed("the X OAuth 2.0 token expired and there is no refresh token "
                                 "(offline.access): run `dmbridge x-auth` again")
            fresh = self.endpoint.refresh(row.refresh_token)
            row.access_token, row.expires_at, row.updated_at = fresh.access_token, fresh.expires_at, self.clock()
            row.refresh_token = fresh.refresh_token or row.refresh_token
            row.scope = fresh.scope or row.scope
            row.generation += 1
            s.add(row)
            log.info("X OAuth 2.0 token refreshed (refresh %d)", row.generation)
        self._row = row
        return row.access_token
