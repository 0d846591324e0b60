"""The HTTP edge in operation: what reaches the logs, /metrics and /healthz under a held lock or a database
outage, and generic callbacks that redirect or carry signed timestamps."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlmodel import select

from bridge import logs
from bridge.metrics import OutboxCollector
from bridge.sandbox.demo import MARIA, SAM
from bridge.sandbox.harness import CHANNEL, Sandbox, shown, start_sandbox, wait_for
from bridge.sandbox.process import ServeProcess, free_port, serve_env, start_world
from bridge.store.tables import InboundEvent, Outbox
from tests.scenarios.helpers import BoxFactory, customer_posts, thread_with

SECRET_LOOKING = "xoxb-000000000000-SECRETLOOKINGTOKEN"
INJECTED = "\n2019-01-01 10:00:00,000 INFO bridge.http: admin login accepted for root"


@pytest.fixture
def logged_box(caplog: pytest.LogCaptureFixture) -> Iterator[Sandbox]:
    """A bridge built with the root logger at INFO, as ``dmbridge serve`` runs (bolt copies that level)."""
    caplog.set_level(logging.INFO)
    box = start_sandbox()
    try:
        yield box
    finally:
        box.close()


def test_a_forged_request_leaves_nothing_of_its_body_in_the_logs(
    logged_box: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    box = logged_box
    body = json.dumps(
        {
            "type": "event_callback",
            "token": SECRET_LOOKING,
            "event": {"type": "message", "text": "pay here" + INJECTED, "user": SAM, "channel": CHANNEL},
        }
    ).encode()
    for headers in ({}, box.slack.sign(body, secret="a guess")):
        assert box.slack.send_raw(body, headers).status_code == 401
    assert SECRET_LOOKING not in caplog.text and "admin login" not in caplog.text and "pay here" not in caplog.text
    assert "its signature did not verify" in caplog.text  # the fixed line instead


def test_a_relayed_conversation_leaves_no_message_text_in_the_logs(
    logged_box: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    box = logged_box
    box.x.customer_sends(MARIA, "my card number is 4111 1111 1111 1111")
    ts = thread_with(box, "my card number")
    wait_for(lambda: customer_posts(box, ts), what="the mirrored message")
    reply_ts, _ = box.slack.post_as_user(SAM, CHANNEL, "thanks, please never send card numbers here", thread_ts=ts)
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, reply_ts), what="✅")
    assert box.x.received_by(MARIA) == ["thanks, please never send card numbers here"]
    assert caplog.records  # the capture works: the bridge did log (its start, its polls' notices)
    assert "4111" not in caplog.text and "never send card" not in caplog.text
    assert not [r for r in caplog.records if r.name.startswith("apscheduler") and r.levelno < logging.WARNING]


@pytest.mark.parametrize("kind", ["text", "json"])
def test_one_record_is_one_line_whatever_it_carries(kind: str) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.formatter(kind))
    logger = logging.getLogger("dmbridge.test.lines")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("source said: %s", "bad" + INJECTED + "\r\u2028x")
        try:
            raise ValueError("boom\nfake line")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert len(out.getvalue().split("\n")) == 3 and len(lines) == 2  # two records, two lines
    assert not any(line.startswith("2019-01-01") for line in lines)
    if kind == "json":
        first = json.loads(lines[0])
        assert first["message"] == "source said: bad" + INJECTED + "\r\u2028x" and first["level"] == "WARNING"
        assert "fake line" in json.loads(lines[1])["exception"]


def test_healthz_and_metrics_answer_while_a_writer_holds_the_lock(box: Sandbox) -> None:
    held, release, done = threading.Event(), threading.Event(), threading.Event()

    def writer() -> None:
        with box.bridge.ctx.db.session() as s:
            s.exec(text("UPDATE cursor SET value = value"))  # type: ignore[call-overload]  # BEGIN IMMEDIATE
            held.set()
            release.wait(60)

    holder = threading.Thread(target=writer, daemon=True)
    holder.start()
    try:
        assert held.wait(15)
        answers: list[httpx.Response] = []

        def scrape() -> None:
            answers.extend(httpx.get(box.http.url + path, timeout=30) for path in ("/healthz", "/metrics"))
            done.set()

        threading.Thread(target=scrape, daemon=True).start()
        assert done.wait(30), "/healthz or /metrics waited for the write lock"
        assert not release.is_set() and holder.is_alive()  # answered while the lock was still held
        assert [r.status_code for r in answers] == [200, 200]
        assert "dmbridge_outbox_rows" in answers[1].text
    finally:
        release.set()
        holder.join(timeout=15)


def test_metrics_counts_are_cached_and_read_index_ranges(box: Sandbox) -> None:
    from bridge.metrics import Cached

    now = [100.0]
    runs: list[int] = []
    inner = OutboxCollector(box.bridge.ctx.db)
    counted = type("Counting", (), {"collect": lambda self: (runs.append(1), *inner.collect())[1:]})()
    cached = Cached(counted, seconds=15, clock=lambda: now[0])  # type: ignore[arg-type]
    first = list(cached.collect())
    now[0] += 14.9
    assert list(cached.collect()) == first and len(runs) == 1
    now[0] += 0.1
    list(cached.collect())
    assert len(runs) == 2

    statements: list[str] = []
    engine = box.bridge.ctx.db.engine
    me = threading.get_ident()  # the running bridge's own threads (pollers, runner) share the engine

    def listener(*a: object) -> None:  # (conn, cursor, statement, …)
        if threading.get_ident() == me:
            statements.append(str(a[2]))

    event.listen(engine, "before_cursor_execute", listener)
    try:
        list(inner.collect())
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    queries = [q for q in statements if q.lstrip().upper().startswith("SELECT")]
    assert len(queries) >= 7  # six outbox ranges and the unprocessed events
    with engine.connect() as conn:
        for q in queries:
            params = ("slack", "pending") if "outbox" in q else ()
            plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + q, params))
            assert "SEARCH" in plan and "SCAN" not in plan, (q, plan)


# ---------------------------------------------------------------------------------------------- PostgreSQL outage


class Proxy:
    """A TCP relay to PostgreSQL that the test can cut (closing every relayed connection) and restore."""

    def __init__(self, port: int = 5432) -> None:
        self.upstream = port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.listener.listen(64)
        self.up = threading.Event()
        self.up.set()
        self.silent = False
        self.open: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                if self.silent:
                    with self.lock:
                        self.open.append(client)  # accepted, never answered: a host that went dark
                else:
                    client.close()  # the database is "down": refused at once
                continue
            server = socket.create_connection(("127.0.0.1", self.upstream))
            with self.lock:
                self.open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self, *, silent: bool = False) -> None:
        self.silent = silent
        self.up.clear()
        with self.lock:
            for s in self.open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self.open.clear()

    def restore(self) -> None:
        self.up.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def proxied_pg(pg_url: str) -> Iterator[tuple[str, Proxy]]:
    proxy = Proxy()
    try:
        yield pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}"), proxy
    finally:
        proxy.close()


def _health(box: Sandbox) -> tuple[int, dict[str, Any]]:
    r = httpx.get(box.http.url + "/healthz", timeout=30)
    return r.status_code, r.json()


@pytest.mark.parametrize("silent", [False, True], ids=["refused", "silent"])
def test_healthz_is_503_while_postgresql_is_unreachable(
    proxied_pg: tuple[str, Proxy], silent: bool, make_box: BoxFactory
) -> None:
    """Refused connections, or a server that accepts and never answers (bounded by connect_timeout)."""
    url, proxy = proxied_pg
    box = make_box(url)
    assert _health(box)[0] == 200
    proxy.cut(silent=silent)
    _, state = wait_for(lambda: (h := _health(box))[0] == 503 and h, timeout=45, what="/healthz 503")
    assert state["checks"]["database"].startswith("error")
    proxy.restore()
    wait_for(lambda: _health(box)[0] == 200, timeout=45, what="/healthz 200 again")
    box.x.customer_sends(MARIA, "after the outage")
    thread_with(box, "after the outage")


def test_a_redirect_from_a_generic_callback_is_a_final_failure_with_its_reason(make_box: BoxFactory) -> None:
    box = make_box(generic=True)
    src = box.generic
    assert src is not None
    src.customer_sends("chat-30", "visitor-30", "Ann", "where is my parcel")
    ts = box.thread_with("where is my parcel")
    src.fail_next(302)
    reply_ts, _ = box.slack.post_as_user(SAM, CHANNEL, "it left this morning", thread_ts=ts)
    wait_for(lambda: "warning" in box.slack.reactions(CHANNEL, reply_ts), what="⚠️")
    assert "white_check_mark" not in box.slack.reactions(CHANNEL, reply_ts)
    note = wait_for(
        lambda: [m for m in box.slack.thread(CHANNEL, ts) if "Not delivered" in shown(m)], what="the explanation"
    )[0]
    assert "302" in shown(note) and "redirect" in shown(note)
    assert len(src.deliveries) == 1 and src.replies() == []  # not retried, not counted as delivered
    with box.bridge.ctx.db.read() as s:
        assert s.exec(select(Outbox).where(Outbox.kind == "dm")).one().state == "failed"


def test_signed_timestamps_both_ways_when_the_source_opts_in(make_box: BoxFactory) -> None:
    box = make_box(generic=True, generic_signed_timestamp=True)
    src = box.generic
    assert src is not None
    assert src.customer_sends("chat-31", "visitor-31", "Bo", "stamped hello").status_code == 200
    ts = box.thread_with("stamped hello")
    reply_ts, _ = box.slack.post_as_user(SAM, CHANNEL, "stamped answer", thread_ts=ts)
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, reply_ts), what="✅")
    assert src.replies("chat-31") == ["stamped answer"] and src.refused == []  # the emulator checks the stamp
    with box.bridge.ctx.db.read() as s:
        assert len(s.exec(select(InboundEvent)).all()) == 1


# ---------------------------------------------------------------------------------------------- dmbridge serve


def test_serve_with_json_logs_and_metrics_on_their_own_address(tmp_path: Path) -> None:
    """The real ``dmbridge serve``: DMBRIDGE_LOG_FORMAT=json gives one JSON object per line (an unsigned request's
    body in none of them) and DMBRIDGE_METRICS_ADDR moves /metrics off the main port."""
    world = start_world(customers=1)
    metrics_port = free_port()
    proc = ServeProcess(
        serve_env(
            world,
            f"sqlite:///{tmp_path / 'd.db'}",
            DMBRIDGE_LOG_FORMAT="json",
            DMBRIDGE_METRICS_ADDR=f"127.0.0.1:{metrics_port}",
        ),
        workdir=tmp_path,
    )
    try:
        proc.start(timeout=120)
        forged = json.dumps({"type": "event_callback", "token": SECRET_LOOKING, "text": INJECTED}).encode()
        assert (
            httpx.post(proc.events_url, content=forged, headers={"Content-Type": "application/json"}).status_code == 401
        )
        assert httpx.get(proc.url + "/metrics").status_code == 404
        scraped = wait_for(lambda: _get(f"http://127.0.0.1:{metrics_port}/metrics"), what="the metrics listener")
        assert "dmbridge_outbox_rows" in scraped
        wait_for(lambda: "signature did not verify" in proc.log_path.read_text(), what="the fixed log line")
        proc.stop()  # SIGTERM: both listeners stop and the process exits cleanly, not killed after 20 s
        assert proc.proc is not None and proc.proc.returncode == 0, proc.log_tail()
        log_text = proc.log_path.read_text()
    finally:
        proc.close()
        world.close()
    lines = [line for line in log_text.splitlines() if line.startswith("{")]
    records = [json.loads(line) for line in lines]
    assert any(r["message"] == "refused a Slack request: its signature did not verify" for r in records)
    assert SECRET_LOOKING not in log_text and "admin login" not in log_text


def _get(url: str) -> str | None:
    try:
        r = httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return None
    return r.text if r.status_code == 200 else None
