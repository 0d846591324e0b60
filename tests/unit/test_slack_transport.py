"""The Slack client keeps its connections: every Web API call on kept-alive connections, with slack_sdk's
encoding and answers, and failures sorted as before (rate limit, refusal, 5xx, an answer cut off, no server).

Against the Slack emulator, which records each call's client address and port."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import certifi
import httpx
import pytest
from slack_sdk import WebClient

from bridge.errors import Rejected, RetryLater
from bridge.sandbox.cdn import certificates
from bridge.sandbox.slack import BOT_USER, SlackEmulator
from bridge.slack.api import SlackApi, make_client
from bridge.slack.blocks import SlackMessage

pytestmark = pytest.mark.scenario  # starts the emulator's server

TOKEN = "xoxb-transport"
HELLO = SlackMessage("hello", [])


@pytest.fixture
def emu() -> Iterator[SlackEmulator]:
    emulator = SlackEmulator(signing_secret="s", bot_token=TOKEN)
    emulator.start()
    emulator.add_user("U1", "maria", "Maria")
    emulator.add_channel("C1", "desk", members=["U1", BOT_USER])
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def api(emu: SlackEmulator) -> Iterator[SlackApi]:
    slack = SlackApi(make_client(TOKEN, emu.api_url), clock=lambda: 1000.0)
    try:
        yield slack
    finally:
        slack.close()


def test_calls_share_one_kept_alive_connection(emu: SlackEmulator, api: SlackApi) -> None:
    api.bot_identity()
    ts = api.post("C1", HELLO, key="k1")
    api.react("C1", ts, "eyes")
    api.update("C1", ts, SlackMessage("hello again", []))
    assert api.find_delivered("C1", "k1", thread_ts=None, since=0.0) == ts
    peers = {c.peer for c in emu.calls()}
    assert len(emu.calls()) >= 5 and len(peers) == 1 and "" not in peers
    # slack_sdk's own client opens one connection per call (what this replaces); the emulator tells them apart
    plain = WebClient(token=TOKEN, base_url=emu.api_url)
    plain.auth_test()
    plain.auth_test()
    assert len({c.peer for c in emu.calls("auth.test")}) == 3


def test_answers_and_arguments_are_slack_sdks(emu: SlackEmulator, api: SlackApi) -> None:
    ts = api.post("C1", SlackMessage("café ☕ <&>", [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}]))
    [call] = emu.calls("chat.postMessage")
    assert call.encoding == "json" and call.params["text"] == "café ☕ <&>"
    assert emu.messages_by_ts("C1", ts)["text"] == "café ☕ <&>"
    members = api.channel_members("C1")  # a form-encoded read with a cursor
    assert set(members) == {"U1", BOT_USER}
    assert emu.calls("conversations.members")[0].encoding == "form"


def test_a_rate_limit_keeps_its_retry_after(emu: SlackEmulator, api: SlackApi) -> None:
    emu.fail_next("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(RetryLater) as caught:
        api.post("C1", HELLO)
    assert caught.value.rate_limited and caught.value.retry_at == 1007.0
    assert api.post("C1", HELLO)  # the connection is still good


def test_refusals_and_server_errors_are_told_apart(emu: SlackEmulator, api: SlackApi) -> None:
    with pytest.raises(Rejected, match="channel_not_found"):
        api.post("C404", HELLO)
    emu.fail_next("chat.postMessage", status=500)
    with pytest.raises(RetryLater) as caught:
        api.post("C1", HELLO)
    assert caught.value.uncertain and caught.value.answered  # Slack may have posted before failing


def test_an_answer_cut_off_is_uncertain_for_a_post_and_not_for_a_read(emu: SlackEmulator, api: SlackApi) -> None:
    emu.chaos(1.0, kinds=("reset",), methods=("chat.postMessage", "conversations.replies"))
    with pytest.raises(RetryLater) as post:
        api.post("C1", HELLO, key="k2")
    assert post.value.uncertain and not post.value.answered
    assert post.value.reason.startswith("Slack chat.postMessage: ")
    emu.chaos(0)
    ts = api.post("C1", HELLO)
    emu.chaos(1.0, kinds=("reset",), methods=("conversations.replies",))
    with pytest.raises(RetryLater) as read:
        api.find_delivered("C1", "k2", thread_ts=ts, since=0.0)
    assert not read.value.uncertain
    emu.chaos(0)
    assert api.find_delivered("C1", "k2", thread_ts=None, since=0.0)  # the cut-off post did happen: found by its key


def test_no_server_is_not_uncertain() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    slack = SlackApi(make_client(TOKEN, f"http://127.0.0.1:{port}/api/"))
    with pytest.raises(RetryLater) as caught:
        slack.post("C1", HELLO)
    assert not caught.value.uncertain
    slack.close()


def test_threads_share_the_pool(emu: SlackEmulator, api: SlackApi) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(10):
                api.post("C1", HELLO)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    posts = emu.calls("chat.postMessage")
    assert len(posts) == 80 and len({c.peer for c in posts}) <= 8


def test_over_https_the_handshake_is_made_once_and_the_certificate_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    emulator = SlackEmulator(signing_secret="s", bot_token=TOKEN, tls=True)
    emulator.add_channel("C1", "desk", members=[BOT_USER])
    emulator.start()
    try:
        assert emulator.api_url.startswith("https://")
        monkeypatch.setenv("SSL_CERT_FILE", str(certificates() / "ca.pem"))  # the sandbox's CA, as the demo trusts it
        trusting = SlackApi(make_client(TOKEN, emulator.api_url))
        for _ in range(3):
            trusting.post("C1", HELLO)
        assert len({c.peer for c in emulator.calls("chat.postMessage")}) == 1
        trusting.close()
        monkeypatch.setenv("SSL_CERT_FILE", certifi.where())  # a CA bundle without the sandbox's CA
        doubting = SlackApi(make_client(TOKEN, emulator.api_url))
        with pytest.raises(RetryLater) as caught:
            doubting.post("C1", HELLO)
        assert not caught.value.uncertain  # refused at the handshake: nothing was sent
        assert len(emulator.calls("chat.postMessage")) == 3
        doubting.close()
    finally:
        emulator.stop()


def test_the_proxy_settings_are_urllibs(emu: SlackEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP(S)_PROXY from the environment, and NO_PROXY with it: a host listed there is reached directly."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = SlackApi(make_client(TOKEN, emu.api_url))
    assert direct.post("C1", HELLO)
    direct.close()
    monkeypatch.delenv("NO_PROXY")
    proxied = SlackApi(make_client(TOKEN, emu.api_url))
    with pytest.raises(RetryLater) as caught:
        proxied.post("C1", HELLO)
    assert not caught.value.uncertain  # the proxy refused the connection: nothing reached Slack
    proxied.close()


def test_cookies_are_not_kept(emu: SlackEmulator) -> None:
    """urllib kept no cookies between calls; neither does the pool (a Set-Cookie is not sent back)."""
    client = make_client(TOKEN, emu.api_url)
    answer = httpx.Response(
        200, headers={"set-cookie": "b=1; Path=/"}, request=httpx.Request("POST", emu.api_url + "auth.test")
    )
    client.http.cookies.extract_cookies(answer)
    assert len(client.http.cookies.jar) == 0
    client.close()
