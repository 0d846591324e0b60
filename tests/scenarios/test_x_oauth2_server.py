"""The emulator's X OAuth 2.0 server against the product's token endpoint client: PKCE, one-time codes,
rotation, confidential clients, expired tokens answered with X's 401 body."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bridge.errors import AuthFailed
from bridge.sandbox.server import OffsetClock
from bridge.sandbox.x import XEmulator
from bridge.sandbox.x_oauth import ACCESS_SECONDS
from connectors.x import oauth

REDIRECT = "https://dm.example.com/x/callback"


@pytest.fixture
def x(clock: OffsetClock) -> Iterator[XEmulator]:
    emulator = XEmulator(clock=clock)
    emulator.start()
    emulator.oauth.add_client("public-id", REDIRECT)
    emulator.oauth.add_client("secret-id", REDIRECT, secret="s3cret")
    try:
        yield emulator
    finally:
        emulator.stop()


def authorize(x: XEmulator, client_id: str, verifier_challenge: tuple[str, str] | None = None) -> tuple[str, str]:
    verifier, challenge = verifier_challenge or oauth.pkce_pair()
    url = oauth.authorize_url(client_id, REDIRECT, "st", challenge, base=x.api_url + "/i/oauth2/authorize")
    location = httpx.get(url, follow_redirects=False).headers["location"]
    return oauth.code_from(location, "st"), verifier


def test_public_client_code_works_once_and_needs_the_verifier(x: XEmulator, clock: OffsetClock) -> None:
    endpoint = oauth.TokenEndpoint(x.api_url + "/2/oauth2/token", "public-id", clock=clock)
    code, verifier = authorize(x, "public-id")
    with pytest.raises(AuthFailed, match="authorization code was invalid"):
        endpoint.exchange(code, verifier + "x", REDIRECT)  # wrong verifier: and the code is spent
    code, verifier = authorize(x, "public-id")
    tokens = endpoint.exchange(code, verifier, REDIRECT)
    assert tokens.refresh_token and tokens.expires_at == pytest.approx(clock() + ACCESS_SECONDS, abs=5)
    with pytest.raises(AuthFailed, match="invalid_request"):
        endpoint.exchange(code, verifier, REDIRECT)  # a code works once

    me = x.api_url + "/2/users/me"
    assert httpx.get(me, headers={"Authorization": f"Bearer {tokens.access_token}"}).status_code == 200
    clock.offset += ACCESS_SECONDS
    expired = httpx.get(me, headers={"Authorization": f"Bearer {tokens.access_token}"})
    assert expired.status_code == 401
    assert expired.json() == {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}

    assert tokens.refresh_token is not None
    fresh = endpoint.refresh(tokens.refresh_token)
    assert fresh.refresh_token != tokens.refresh_token
    with pytest.raises(AuthFailed, match="Value passed for the token was invalid"):
        endpoint.refresh(tokens.refresh_token)  # rotated away
    assert httpx.get(me, headers={"Authorization": f"Bearer {fresh.access_token}"}).status_code == 200


def test_confidential_client_must_use_basic_auth(x: XEmulator, clock: OffsetClock) -> None:
    code, verifier = authorize(x, "secret-id")
    without = oauth.TokenEndpoint(x.api_url + "/2/oauth2/token", "secret-id", clock=clock)
    with pytest.raises(AuthFailed, match="unauthorized_client"):
        without.exchange(code, verifier, REDIRECT)
    code, verifier = authorize(x, "secret-id")
    wrong = oauth.TokenEndpoint(x.api_url + "/2/oauth2/token", "secret-id", "nope", clock=clock)
    with pytest.raises(AuthFailed, match="unauthorized_client"):
        wrong.exchange(code, verifier, REDIRECT)
    code, verifier = authorize(x, "secret-id")
    right = oauth.TokenEndpoint(x.api_url + "/2/oauth2/token", "secret-id", "s3cret", clock=clock)
    assert right.exchange(code, verifier, REDIRECT).refresh_token


def test_the_authorize_endpoint_refuses_what_x_refuses(x: XEmulator) -> None:
    base = x.api_url + "/i/oauth2/authorize"
    _, challenge = oauth.pkce_pair()
    good = {
        "response_type": "code",
        "client_id": "public-id",
        "redirect_uri": REDIRECT,
        "scope": "dm.read",
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    assert httpx.get(base, params=good, follow_redirects=False).status_code == 302
    for change in (
        {"redirect_uri": "https://evil.example/cb"},
        {"code_challenge_method": "plain"},
        {"scope": "dm.read dm.everything"},
        {"client_id": "who"},
        {"state": ""},
    ):
        assert httpx.get(base, params=good | change, follow_redirects=False).status_code == 400, change
