"""``dmbridge x-auth``: authorize the X account once (OAuth 2.0 authorization code with PKCE).

Interactive: the authorize URL is printed, the operator opens it, approves, and pastes back the URL X
redirected to (or only its ``code``). In two steps (no terminal): ``--print-url`` prints the URL and
keeps the PKCE verifier and state in a 0600 file; ``--redirect-url URL`` completes from that file.
The tokens go to the database, where ``serve`` refreshes them.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bridge.config import Settings
from bridge.errors import AuthFailed, ConfigError
from bridge.store import migrate
from bridge.store.db import Database
from bridge.x_tokens import TokenStore
from connectors.x import oauth

PENDING_SECONDS = 600.0


def _pending_write(path: Path, data: dict[str, str | float]) -> None:
    path.unlink(missing_ok=True)  # an existing file would keep its mode
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)


def _pending_read(path: Path, client_id: str, now: float) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"no pending authorization in {path}: run `dmbridge x-auth --print-url` first") from exc
    if data.get("client_id") != client_id or now - float(data.get("at", 0)) > PENDING_SECONDS:
        raise ConfigError(f"the pending authorization in {path} is for another client or too old: start again")
    return {k: str(v) for k, v in data.items()}


def begin(settings: Settings, now: float) -> tuple[str, dict[str, str | float]]:
    """The authorize URL and what completing it needs (state, verifier, redirect URI)."""
    if not settings.x_client_id:
        raise ConfigError("X_CLIENT_ID is not set (the OAuth 2.0 Client ID from the X developer portal)")
    verifier, challenge = oauth.pkce_pair()
    state = secrets.token_urlsafe(24)
    url = oauth.authorize_url(
        settings.x_client_id, settings.x_redirect_uri, state, challenge, base=settings.x_oauth_authorize_url
    )
    return url, {
        "client_id": settings.x_client_id,
        "state": state,
        "verifier": verifier,
        "redirect_uri": settings.x_redirect_uri,
        "at": now,
    }


def complete(settings: Settings, pending: dict[str, str], pasted: str, clock: Callable[[], float]) -> str:
    """Exchange the code, check whose account it is, store the tokens; the account's @username."""
    code = oauth.code_from(pasted, pending["state"])
    endpoint = oauth.TokenEndpoint(
        settings.x_token_url,
        settings.x_client_id,
        settings.x_client_secret,
        timeout=settings.dmbridge_http_timeout,
        clock=clock,
    )
    tokens = endpoint.exchange(code, pending["verifier"], pending["redirect_uri"])
    missing = set(oauth.SCOPES) - set(tokens.scope.split())
    if missing:
        raise AuthFailed(f"X granted fewer scopes than needed (missing: {', '.join(sorted(missing))})")
    me = httpx.get(
        settings.x_api_url.rstrip("/") + "/2/users/me",
        timeout=settings.dmbridge_http_timeout,
        headers={"Authorization": f"Bearer {tokens.access_token}"},
    )
    if me.status_code != 200:
        raise AuthFailed(f"X refused the new token on /2/users/me ({me.status_code})")
    db = Database(settings.database_url)
    try:
        migrate.upgrade(db)
        store = TokenStore(db, endpoint, clock=clock)
        store.save(tokens)
    finally:
        db.dispose()
    return str(me.json()["data"]["username"])


def run(
    settings: Settings,
    *,
    print_url: bool,
    redirect_url: str | None,
    pending_file: Path,
    read_line: Callable[[], str],
    echo: Callable[[str], None],
    clock: Callable[[], float] = time.time,
) -> None:
    """The command; raises ConfigError / AuthFailed / RetryLater / OAuthError with the reason."""
    if redirect_url is not None:
        pending = _pending_read(pending_file, settings.x_client_id, clock())
        username = complete(settings, pending, redirect_url, clock)
        pending_file.unlink(missing_ok=True)
    else:
        url, data = begin(settings, clock())
        if print_url:
            _pending_write(pending_file, data)
            echo(url)
            echo(
                f"Open it, approve, then run: dmbridge x-auth --redirect-url '<the URL X sent you to>' "
                f"(within {int(PENDING_SECONDS // 60)} minutes)"
            )
            return
        echo("Open this URL as the brand's X account and approve dmbridge:\n")
        echo(url)
        echo("\nThen paste the URL X redirected you to (or its code=… value):")
        username = complete(settings, {k: str(v) for k, v in data.items()}, read_line(), clock)
    echo(
        f"dmbridge: X OAuth 2.0 tokens for @{username} stored; `dmbridge serve` refreshes them "
        "(with X_CLIENT_ID set they replace X_USER_BEARER_TOKEN; the OAuth 1.0a keys, if all set, still win)"
    )
