"""bridge.errors.may_have_arrived: one answer, for every connector, to "may this failed call have gone through?"."""

from __future__ import annotations

import errno
import http.client
import socket
import struct
import threading
import urllib.error
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import requests
import urllib3.exceptions
from slack_sdk.errors import SlackClientError, SlackRequestError

from bridge.domain import OutboundMessage, Platform
from bridge.errors import RetryLater, changes_state, may_have_arrived, server_error, unreachable
from bridge.slack.api import READ_METHODS, SLACK_METHODS, SlackApi, make_client
from bridge.slack.blocks import SlackMessage
from connectors.meta.graph import Graph
from connectors.webhook.connector import GenericConnector, Source
from connectors.x import api


def _raised_from(outer: BaseException, inner: BaseException) -> BaseException:
    """``outer`` as ``raise outer from inner`` leaves it."""
    try:
        raise outer from inner
    except BaseException as exc:
        return exc


def _handling(outer: BaseException, inner: BaseException) -> BaseException:
    """``outer`` raised while ``inner`` was being handled (``__context__`` only)."""
    try:
        try:
            raise inner
        except BaseException:
            raise outer  # noqa: B904 - the implicit chain is what is under test
    except BaseException as exc:
        return exc


REFUSED_CONNECT = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: refused")
DNS_FAILURE = urllib3.exceptions.NameResolutionError("x.invalid", None, socket.gaierror(-2, "Name unknown"))
RESET = ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")

TABLE: list[tuple[str, BaseException, bool]] = [
    # httpx (Meta, the generic webhook, X's token endpoint)
    ("httpx connect refused", httpx.ConnectError("[Errno 111] Connection refused"), False),
    ("httpx connect timeout", httpx.ConnectTimeout("timed out"), False),
    ("httpx no free pooled connection", httpx.PoolTimeout("pool"), False),
    ("httpx read timeout", httpx.ReadTimeout("timed out"), True),
    ("httpx write timeout", httpx.WriteTimeout("timed out"), True),
    ("httpx read reset", httpx.ReadError("[Errno 104] Connection reset by peer"), True),
    ("httpx write broken", httpx.WriteError("[Errno 32] Broken pipe"), True),
    ("httpx server hung up", httpx.RemoteProtocolError("Server disconnected without sending a response."), True),
    ("httpx close failed", httpx.CloseError("close"), True),
    # requests/urllib3 (X through tweepy)
    ("requests connect timeout", requests.ConnectTimeout("connect timed out"), False),
    (
        "requests refused connect",
        requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/2/dm_conversations", REFUSED_CONNECT)),
        False,
    ),
    ("requests DNS failure", requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", DNS_FAILURE)), False),
    (
        "requests reset after sending",
        requests.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.", RESET)),
        True,
    ),
    ("requests read timeout", requests.ReadTimeout("read timed out"), True),
    ("requests cut chunked answer", requests.exceptions.ChunkedEncodingError("Connection broken"), True),
    ("requests connection error it cannot place", requests.ConnectionError("something broke"), True),
    # the standard library (slack_sdk's urllib)
    ("refused", ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), False),
    ("DNS failure", socket.gaierror(socket.EAI_NONAME, "Name or service not known"), False),
    ("no route to host", OSError(errno.EHOSTUNREACH, "No route to host"), False),
    ("urllib refused", urllib.error.URLError(ConnectionRefusedError(errno.ECONNREFUSED, "refused")), False),
    ("urllib DNS failure", urllib.error.URLError(socket.gaierror(socket.EAI_NONAME, "unknown")), False),
    ("urllib timeout while sending", urllib.error.URLError(TimeoutError("timed out")), True),
    ("reset", RESET, True),
    ("broken pipe", BrokenPipeError(errno.EPIPE, "Broken pipe"), True),
    ("socket timeout", TimeoutError("timed out"), True),
    ("server hung up", http.client.RemoteDisconnected("Remote end closed connection without response"), True),
    ("answer cut short", http.client.IncompleteRead(b'{"ok":'), True),
    ("slack_sdk client error", SlackClientError("unexpected"), True),
    ("slack_sdk request error", SlackRequestError("bad"), True),
    # chains: the outermost exception that says wins, else what it wraps
    ("raised from a refused connect", _raised_from(RuntimeError("send failed"), ConnectionRefusedError()), False),
    ("raised while handling a reset", _handling(RuntimeError("send failed"), RESET), True),
    ("a read timeout wrapping a connect error", _raised_from(httpx.ReadTimeout("t"), ConnectionRefusedError()), True),
    ("a failure nothing places", RuntimeError("?"), True),
]


@pytest.mark.parametrize(("exc", "arrived"), [(e, a) for _, e, a in TABLE], ids=[n for n, _, _ in TABLE])
def test_which_failures_may_have_reached_the_other_side(exc: BaseException, arrived: bool) -> None:
    assert may_have_arrived(exc) is arrived
    assert unreachable("X", exc).uncertain is arrived
    assert unreachable("X", exc, changes=False).uncertain is False  # a read that failed changed nothing
    assert unreachable("X", exc).answered is False  # an answer may still be on its way


def test_unreachable_says_what_failed_or_what_it_is_told() -> None:
    assert unreachable("shop", httpx.ReadTimeout("t")).reason == "shop unreachable: ReadTimeout"
    assert unreachable("Slack", RESET, reason="Slack answer cut off").reason == "Slack answer cut off"


@pytest.mark.parametrize(
    ("status", "changes", "uncertain"),
    [
        (500, True, True),
        (502, True, True),
        (503, True, True),
        (504, True, True),
        (503, False, False),
        (408, True, False),
        (429, True, False),
    ],
)
def test_a_5xx_to_a_send_is_uncertain(status: int, changes: bool, uncertain: bool) -> None:
    error = server_error(f"answered {status}", status, changes=changes)
    assert (error.reason, error.uncertain, error.rate_limited) == (f"answered {status}", uncertain, False)
    assert error.answered is True  # nothing late to wait for


@pytest.mark.parametrize(
    ("method", "changes"),
    [("GET", False), ("head", False), ("OPTIONS", False), ("POST", True), ("delete", True), (None, True)],
)
def test_only_reads_change_nothing(method: str | None, changes: bool) -> None:
    assert changes_state(method) is changes


def test_slack_reads_are_slack_methods() -> None:
    assert READ_METHODS < SLACK_METHODS
    assert not {"chat.postMessage", "chat.update", "chat.delete", "reactions.add"} & READ_METHODS


# ---------------------------------------------------------------- each connector, over real sockets


@dataclass
class Peer:
    """A local HTTP peer that reads each whole request, then answers ``answer`` or, when None, resets."""

    answer: bytes | None = None
    requests: list[bytes] = field(default_factory=list)
    sock: socket.socket = field(default_factory=lambda: socket.create_server(("127.0.0.1", 0)))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.requests.append(_read_request(conn))
                if self.answer is not None:
                    conn.sendall(self.answer)
                else:  # linger 0: close with RST, after the request was read in full
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0
    )
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _answer(status: int, body: bytes) -> bytes:
    return (
        f"HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body


@pytest.fixture
def resets() -> Iterator[Peer]:
    yield from _running(Peer())


@pytest.fixture
def fails() -> Iterator[Peer]:
    yield from _running(Peer(answer=_answer(503, b'{"ok": false, "error": "service_unavailable"}')))


def _running(peer: Peer) -> Iterator[Peer]:
    thread = threading.Thread(target=peer.serve, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        peer.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept
        peer.sock.close()
        thread.join(5)
        assert not thread.is_alive()


@pytest.fixture
def refused() -> Iterator[str]:
    """A port bound but not listening: a connect to it is refused, and nothing can take the port meanwhile."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def _raises(call: Callable[[], object]) -> RetryLater:
    with pytest.raises(RetryLater) as caught:
        call()
    return caught.value


def _x_send(base: str) -> Callable[[], object]:
    client, oauth1 = api.make_client(
        base_url=base, consumer_key="ck", consumer_secret="cs", access_token="at", access_token_secret="as", timeout=5
    )
    return lambda: api.call(
        lambda: client.create_direct_message(participant_id=1290011223300000100, text="hi", user_auth=oauth1)
    )


def _x_read(base: str) -> Callable[[], object]:
    client, oauth1 = api.make_client(base_url=base, user_bearer_token="token", timeout=5)
    return lambda: api.call(lambda: client.get_me(user_auth=oauth1))


def test_x_send_reset_after_sending_is_uncertain_a_refused_one_is_not(resets: Peer, refused: str) -> None:
    error = _raises(_x_send(resets.url))
    assert error.uncertain is True and error.reason.startswith("X unreachable: ")
    assert resets.requests and resets.requests[0].startswith(b"POST /2/dm_conversations/with/")
    assert _raises(_x_send(refused)).uncertain is False
    assert _raises(_x_read(resets.url)).uncertain is False  # a read changed nothing


def test_x_5xx_to_a_send_is_uncertain_to_a_read_is_not(fails: Peer) -> None:
    error = _raises(_x_send(fails.url))
    assert (error.reason, error.uncertain) == ("X server error 503", True)
    assert _raises(_x_read(fails.url)).uncertain is False


def _meta_send(base: str, transport: httpx.BaseTransport | None = None) -> Callable[[], object]:
    graph = Graph(base + "/v21.0", timeout=5, transport=transport)
    return lambda: graph.post(Platform.MESSENGER, "me/messages", "token", {"recipient": {"id": "1"}})


def test_meta_send_reset_after_sending_is_uncertain_a_refused_one_is_not(resets: Peer, refused: str) -> None:
    error = _raises(_meta_send(resets.url))
    assert error.uncertain is True and error.reason.startswith("Meta unreachable: ")
    assert resets.requests and resets.requests[0].startswith(b"POST /v21.0/me/messages")
    assert _raises(_meta_send(refused)).uncertain is False


def test_meta_5xx_to_a_send_is_uncertain_to_a_read_is_not(fails: Peer) -> None:
    error = _raises(_meta_send(fails.url))
    assert error.uncertain is True and error.reason.startswith("Messenger temporary error")
    graph = Graph(fails.url, timeout=5)
    assert _raises(lambda: graph.get(Platform.MESSENGER, "123", "token")).uncertain is False


@pytest.mark.parametrize(
    ("error", "uncertain"),
    [
        (httpx.WriteTimeout("t"), True),
        (httpx.ReadError("reset"), True),
        (httpx.PoolTimeout("pool"), False),
    ],
)
def test_meta_transport_failures(error: Exception, uncertain: bool) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    assert _raises(_meta_send("https://graph.example", httpx.MockTransport(fail))).uncertain is uncertain


def _webhook_send(url: str, transport: httpx.BaseTransport | None = None) -> Callable[[], object]:
    connector = GenericConnector(
        {"shop": Source("shop", "secret", url + "/replies")},
        clock=lambda: 1_700_000_000,
        timeout=5,
        transport=transport,
    )
    message = OutboundMessage(
        platform=Platform.GENERIC,
        account="shop",
        conversation="chat-1",
        recipient_id="v-1",
        text="Yes, from 10:00.",
        key="dm:1:0",
    )
    return lambda: connector.send(message)


def test_webhook_reply_reset_after_sending_is_uncertain_a_refused_one_is_not(resets: Peer, refused: str) -> None:
    error = _raises(_webhook_send(resets.url))
    assert error.uncertain is True and error.reason.startswith("shop unreachable: ")
    assert resets.requests and b"Yes, from 10:00." in resets.requests[0]
    assert _raises(_webhook_send(refused)).uncertain is False


def test_webhook_5xx_is_uncertain(fails: Peer) -> None:
    assert (lambda e: (e.reason, e.uncertain))(_raises(_webhook_send(fails.url))) == ("shop answered 503", True)


@pytest.mark.parametrize(
    ("error", "uncertain"),
    [
        (httpx.ReadTimeout("t"), True),
        (httpx.RemoteProtocolError("cut"), True),
        (httpx.ConnectTimeout("t"), False),
    ],
)
def test_webhook_transport_failures(error: Exception, uncertain: bool) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    assert _raises(_webhook_send("https://shop.example", httpx.MockTransport(fail))).uncertain is uncertain


def _slack(base: str) -> SlackApi:
    return SlackApi(make_client("xoxb-test", base + "/api/", timeout=5))


def test_slack_post_reset_after_sending_is_uncertain_a_refused_one_is_not(resets: Peer, refused: str) -> None:
    post = SlackMessage(text="hello", blocks=[])
    error = _raises(lambda: _slack(resets.url).post("C1", post))
    assert error.uncertain is True and error.reason.startswith("Slack ")
    assert resets.requests and resets.requests[0].startswith(b"POST /api/chat.postMessage")
    assert _raises(lambda: _slack(refused).post("C1", post)).uncertain is False
    assert _raises(lambda: _slack(resets.url).bot_identity()).uncertain is False  # auth.test changes nothing


def test_slack_5xx_to_a_post_is_uncertain(fails: Peer) -> None:
    error = _raises(lambda: _slack(fails.url).post("C1", SlackMessage(text="hello", blocks=[])))
    assert (error.reason, error.uncertain) == ("Slack chat.postMessage answered 503", True)
