"""X through OAuth 2.0 user tokens that expire after 2 hours: refreshed, rotated, stored (issue 10 item 4)."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from sqlmodel import select

from bridge.sandbox.demo import MARIA, SAM
from bridge.sandbox.harness import CHANNEL, Sandbox, start_sandbox, wait_for
from bridge.sandbox.server import OffsetClock
from bridge.sandbox.x_oauth import ACCESS_SECONDS
from bridge.store.tables import XOAuthToken
from tests.scenarios.helpers import BoxFactory

pytestmark = pytest.mark.sandbox(x_oauth2=True)


def token_row(box: Sandbox) -> XOAuthToken:
    with box.bridge.ctx.db.read() as s:
        row = s.exec(select(XOAuthToken)).one()
    return row


def test_two_hours_later_dms_still_flow_and_the_refresh_token_rotated(box: Sandbox, clock: OffsetClock) -> None:
    first = token_row(box)
    assert first.refresh_token and first.generation == 0
    box.x.customer_sends(MARIA, "before the token expires")
    ts = box.thread_with("before the token expires")

    clock.offset += ACCESS_SECONDS + 60  # the bridge's clock and the emulator's token clock move together
    assert not box.x.oauth.valid(first.access_token)  # X would refuse it now
    box.x.customer_sends(MARIA, "two hours later")
    box.thread_with("two hours later")
    box.slack.post_as_user(SAM, CHANNEL, "Still here after two hours", thread_ts=ts)
    wait_for(lambda: "Still here after two hours" in box.x.received_by(MARIA), what="the reply on X")

    second = token_row(box)
    assert second.generation == 1 and box.x.oauth.refresh_grants() == 1
    assert second.access_token != first.access_token and second.refresh_token != first.refresh_token
    assert second.expires_at > clock()
    # the rotated-away refresh token is dead, with X's error body
    dead = httpx.post(
        box.x.api_url + "/2/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first.refresh_token,
            "client_id": box.settings.x_client_id,
        },
    )
    assert dead.status_code == 400
    assert dead.json() == {"error": "invalid_request", "error_description": "Value passed for the token was invalid."}


def test_a_401_refreshes_once_and_retries(box: Sandbox) -> None:
    """A token X stopped accepting before its expiry (revoked at X's side): one refresh, and the call succeeds."""
    first = token_row(box)
    box.x.oauth.access.pop(first.access_token)
    box.x.customer_sends(MARIA, "after a 401")
    box.thread_with("after a 401")
    assert box.x.oauth.refresh_grants() == 1 and token_row(box).generation == 1


def test_x_user_bearer_token_still_works_as_a_static_token(make_box: BoxFactory) -> None:
    sandbox = make_box(x_access_token="", x_access_token_secret="", x_user_bearer_token="sandbox-user-bearer")
    sandbox.x.customer_sends(MARIA, "static bearer")
    sandbox.thread_with("static bearer")
    assert sandbox.x.oauth.grants == []


def test_x_auth_end_to_end_through_the_cli(tmp_path: object, clock: OffsetClock, make_box: BoxFactory) -> None:
    """``dmbridge x-auth`` as an operator runs it: the URL printed, the redirect pasted on stdin, and the
    two-step form with --print-url / --redirect-url."""
    sandbox = make_box(x_oauth2=True, clock=clock)
    settings = sandbox.settings
    env = os.environ | {
        "X_CLIENT_ID": settings.x_client_id,
        "X_REDIRECT_URI": settings.x_redirect_uri,
        "X_OAUTH_AUTHORIZE_URL": settings.x_oauth_authorize_url,
        "X_API_URL": settings.x_api_url,
        "DATABASE_URL": settings.database_url,
        "PYTHONPATH": os.getcwd(),
    }
    cmd = [sys.executable, "-m", "bridge", "x-auth"]
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(sandbox.workdir),
    )
    assert proc.stdout is not None and proc.stdin is not None
    url = next(line.strip() for line in proc.stdout if line.startswith("http"))
    assert "code_challenge_method=S256" in url and "offline.access" in url.replace("+", " ")
    redirect = httpx.get(url, follow_redirects=False)
    out, err = proc.communicate(redirect.headers["location"] + "\n", timeout=60)
    assert proc.returncode == 0, err
    assert "@acme_help" in out
    assert sandbox.x.oauth.grants[-1] == ("authorization_code", 200)

    printed = subprocess.run(
        [*cmd, "--print-url"], env=env, capture_output=True, text=True, timeout=60, cwd=str(sandbox.workdir)
    )
    assert printed.returncode == 0, printed.stderr
    assert (sandbox.workdir / ".dmbridge-x-auth.json").stat().st_mode & 0o777 == 0o600
    url = printed.stdout.splitlines()[0]
    location = httpx.get(url, follow_redirects=False).headers["location"]
    done = subprocess.run(
        [*cmd, "--redirect-url", location],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(sandbox.workdir),
    )
    assert done.returncode == 0, done.stderr
    assert not (sandbox.workdir / ".dmbridge-x-auth.json").exists()
    # a redirect replayed (the code works once) is refused with X's reason
    again = subprocess.run(
        [*cmd, "--print-url"], env=env, capture_output=True, text=True, timeout=60, cwd=str(sandbox.workdir)
    )
    assert again.returncode == 0
    replay = subprocess.run(
        [*cmd, "--redirect-url", location],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(sandbox.workdir),
    )
    assert replay.returncode == 2 and "state does not match" in replay.stderr


def test_two_bridges_on_one_database_refresh_once(db_url: str, clock: OffsetClock) -> None:
    """Both bridges find the token expired at the same moment: one refresh grant; the other reloads its result
    (on PostgreSQL the advisory transaction lock, on SQLite the write lock)."""
    import threading

    from bridge.sandbox.harness import _start_bridge
    from connectors.x.connector import XConnector

    first = start_sandbox(db_url, x_oauth2=True, clock=clock)
    second, second_http = _start_bridge(first.settings, first.file, first.environ, clock)
    try:
        connectors = [b.ctx.connectors["x"] for b in (first.bridge, second)]
        assert all(isinstance(c, XConnector) for c in connectors)
        clock.offset += ACCESS_SECONDS + 60
        barrier = threading.Barrier(len(connectors))
        errors: list[BaseException] = []

        def start(c: object) -> None:
            barrier.wait()
            try:
                c.start()  # type: ignore[attr-defined]  # GET /2/users/me with a token fresh enough
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(c,)) for c in connectors]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors
        assert first.x.oauth.refresh_grants() == 1
        assert [kind for kind, _ in first.x.oauth.grants].count("refresh_token") == 1
        assert {c.client.bearer_token for c in connectors} == {token_row(first).access_token}  # type: ignore[attr-defined]
        first.x.customer_sends(MARIA, "after the shared refresh")
        first.thread_with("after the shared refresh")
    finally:
        second_http.stop()
        second.stop()
        first.close()
