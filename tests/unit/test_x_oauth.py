"""X OAuth 2.0 pieces, pure or on a scratch SQLite: the refresh decision, PKCE, the pasted redirect, the store."""

from __future__ import annotations

import base64
import contextlib
import hashlib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.errors import AuthFailed
from bridge.store.db import Database
from bridge.store.migrate import upgrade
from bridge.store.tables import XOAuthToken
from bridge.x_tokens import TokenStore, token_status
from connectors.x import oauth
from connectors.x.oauth import OAuthError, Tokens, code_from, needs_refresh


@given(
    st.floats(min_value=0, max_value=1e10),
    st.floats(min_value=-1e6, max_value=1e6),
    st.floats(min_value=0, max_value=3600),
)
def test_refresh_is_due_exactly_within_the_margin_before_expiry(expires_at: float, delta: float, margin: float) -> None:
    now = expires_at + delta
    assert needs_refresh(expires_at, now, margin) == (now >= expires_at - margin)


def test_refresh_decision_around_a_two_hour_token() -> None:
    issued = 1_000_000.0
    expires = issued + 7200
    assert not needs_refresh(expires, issued)
    assert not needs_refresh(expires, expires - oauth.REFRESH_MARGIN - 1)
    assert needs_refresh(expires, expires - oauth.REFRESH_MARGIN)
    assert needs_refresh(expires, expires + 1)


def test_pkce_pair_is_s256() -> None:
    verifier, challenge = oauth.pkce_pair()
    assert 43 <= len(verifier) <= 128
    assert challenge == base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def test_authorize_url_asks_for_the_scopes_we_need() -> None:
    url = oauth.authorize_url("cid", "https://dm.example.com/cb", "st", "ch")
    assert url.startswith("https://x.com/i/oauth2/authorize?")
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert q["scope"].split() == ["dm.read", "dm.write", "tweet.read", "users.read", "media.write", "offline.access"]
    assert q | {"scope": ""} == {
        "response_type": "code",
        "client_id": "cid",
        "redirect_uri": "https://dm.example.com/cb",
        "scope": "",
        "state": "st",
        "code_challenge": "ch",
        "code_challenge_method": "S256",
    }


def test_the_pasted_redirect() -> None:
    assert code_from("https://dm.example.com/cb?state=s1&code=abc\n", "s1") == "abc"
    assert code_from("  abc  ", "s1") == "abc"
    assert code_from("state=s1&code=abc", "s1") == "abc"
    for bad in (
        "https://dm.example.com/cb?state=other&code=abc",
        "https://dm.example.com/cb?state=s1",
        "https://dm.example.com/cb?error=access_denied&state=s1",
        "",
    ):
        with pytest.raises(OAuthError):
            code_from(bad, "s1")


@given(st.text(max_size=80))
def test_code_from_never_crashes(pasted: str) -> None:
    with contextlib.suppress(OAuthError):
        assert code_from(pasted, "state")


def row(expires_at: float, refresh: str | None = "r") -> XOAuthToken:
    return XOAuthToken(client_id="c", access_token="a", refresh_token=refresh, expires_at=expires_at, updated_at=0.0)


def test_token_status_for_doctor() -> None:
    assert token_status(None, 0.0)[0] is False
    assert token_status(row(100.0), 200.0)[0] is True  # expired but refreshable
    assert token_status(row(1000.0, None), 200.0)[0] is True
    ok, detail = token_status(row(100.0, None), 200.0)
    assert not ok and "x-auth" in detail


class FakeEndpoint(oauth.TokenEndpoint):
    def __init__(self, clock: list[float]) -> None:
        super().__init__("http://unused", "c")
        self.now = clock
        self.calls: list[str] = []

    def refresh(self, refresh_token: str) -> Tokens:
        self.calls.append(refresh_token)
        n = len(self.calls)
        return Tokens(f"a{n}", f"r{n}", self.now[0] + 7200, "dm.read")


def test_store_refreshes_when_due_and_keeps_the_rotated_refresh_token(tmp_path: Path) -> None:
    now = [1000.0]
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(db)
    endpoint = FakeEndpoint(now)
    store = TokenStore(db, endpoint, clock=lambda: now[0])
    store.save(Tokens("a0", "r0", now[0] + 7200, "dm.read offline.access"))
    assert store.access_token() == "a0" and endpoint.calls == []
    now[0] += 7200 - oauth.REFRESH_MARGIN
    assert store.access_token() == "a1" and endpoint.calls == ["r0"]
    other = TokenStore(db, endpoint, clock=lambda: now[0])  # another process with its own cache
    assert other.refresh(stale="a0") == "a1" and endpoint.calls == ["r0"]  # reloaded, not refreshed again
    assert store.refresh(stale="a1") == "a2" and endpoint.calls == ["r0", "r1"]  # a 401 on the current token
    with db.read() as s:
        saved = s.get(XOAuthToken, "c")
    assert saved is not None and (saved.refresh_token, saved.generation) == ("r2", 2)
    db.dispose()


def test_store_without_tokens_or_refresh_token_says_what_to_do(tmp_path: Path) -> None:
    now = [0.0]
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(db)
    store = TokenStore(db, FakeEndpoint(now), clock=lambda: now[0])
    with pytest.raises(AuthFailed, match="x-auth"):
        store.access_token()
    store.save(Tokens("a0", None, 100.0, "dm.read"))
    now[0] = 200.0
    with pytest.raises(AuthFailed, match=r"offline\.access"):
        store.access_token()
    assert store.token_status(now[0])[0] is False
    db.dispose()


def test_settings_choose_the_x_auth_mode() -> None:
    from bridge.config import Settings

    def settings(**values: str) -> Settings:
        return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]

    oauth1 = {"x_consumer_key": "k", "x_consumer_secret": "s", "x_access_token": "t", "x_access_token_secret": "ts"}
    assert settings(x_client_id="c").x_enabled and settings(x_client_id="c").x_oauth2_refreshing
    assert not settings(x_client_id="c", **oauth1).x_oauth2_refreshing  # OAuth 1.0a keys, all four, win
    assert settings(x_client_id="c", x_user_bearer_token="b").x_oauth2_refreshing  # the static token is replaced
    assert not settings(x_user_bearer_token="b").x_oauth2_refreshing
    assert settings().x_token_url == "https://api.x.com/2/oauth2/token"
    assert settings(x_api_url="http://127.0.0.1:9/").x_token_url == "http://127.0.0.1:9/2/oauth2/token"
    assert settings(x_oauth_token_url="https://t.example/tok").x_token_url == "https://t.example/tok"
