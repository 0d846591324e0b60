"""The stored X OAuth 2.0 tokens of one X app (``dmbridge x-auth`` writes them), refreshed before they expire.

Several processes share the tokens through the ``x_oauth_token`` table: a refresh takes the
``x-oauth-refresh`` transaction lock (``bridge.store.locks.xact_serialize``; SQLite's write lock does
the same), re-reads the row, and refreshes only if the token is still the stale one; the new pair is
written in that transaction. Everyone else waits on the lock and then reloads what was written.
The X connector sees a ``TokenStore`` as its ``connectors.x.oauth.AccessTokens``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bridge.errors import AuthFailed
from bridge.store.db import Database
from bridge.store.locks import xact_serialize
from bridge.store.tables import XOAuthToken
from connectors.x.oauth import REFRESH_MARGIN, TokenEndpoint, Tokens, needs_refresh

log = logging.getLogger(__name__)

REFRESH_LOCK = "x-oauth-refresh"


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


class TokenStore:
    """The stored tokens of one X app, refreshed when due (one process at a time)."""

    def __init__(
        self,
        db: Database,
        endpoint: TokenEndpoint,
        *,
        clock: Callable[[], float] = time.time,
        margin: float = REFRESH_MARGIN,
    ) -> None:
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
                client_id=self.client_id, access_token="", expires_at=0.0, updated_at=0.0
            )
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
                raise AuthFailed(
                    "the X OAuth 2.0 token expired and there is no refresh token "
                    "(offline.access): run `dmbridge x-auth` again"
                )
            fresh = self.endpoint.refresh(row.refresh_token)
            row.access_token, row.expires_at, row.updated_at = fresh.access_token, fresh.expires_at, self.clock()
            row.refresh_token = fresh.refresh_token or row.refresh_token
            row.scope = fresh.scope or row.scope
            row.generation += 1
            s.add(row)
            log.info("X OAuth 2.0 token refreshed (refresh %d)", row.generation)
        self._row = row
        return row.access_token
