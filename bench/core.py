"""Core-loop figures: inbound throughput vs a no-persistence ceiling, ack latency, idle RSS."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import requests
from sqlalchemy import create_engine, text

from bridge.sandbox.harness import BOT_TOKEN, CHANNEL, SIGNING_SECRET, start_sandbox, wait_for
from bridge.sandbox.slack import SlackEmulator
from bridge.sandbox.x import XEmulator
from connectors.x.connector import XConnector

CUSTOMERS = [str(1290011223300000000 + i) for i in range(20)]


def _customers(x: XEmulator) -> None:
    for i, cid in enumerate(CUSTOMERS):
        x.add_user(cid, f"customer{i}", f"Customer {i}", profile_image_url=f"https://img.example/{i}.jpg")


@contextmanager
def scratch_pg(admin: str) -> Iterator[str]:
    name = f"dmbridge_bench_{uuid.uuid4().hex[:8]}"
    url = admin.replace("postgresql://", "postgresql+psycopg://")
    eng = create_engine(url, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.rsplit("/", 1)[0] + "/" + name
    finally:
        with eng.connect() as c:
            c.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname='{name}'"))
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        eng.dispose()


def inbound_throughput(n: int, database_url: str | None) -> tuple[float, float]:
    """DMs/s from X emulator to mirrored Slack posts through the whole bridge; CPU ms per DM (whole process)."""
    box = start_sandbox(database_url=database_url, x_poll_seconds=0.05)
    try:
        _customers(box.x)
        for i in range(n):
            box.x.customer_sends(CUSTOMERS[i % len(CUSTOMERS)], f"message {i}")
        cpu0, t0 = time.process_time(), time.perf_counter()
        wait_for(lambda: sum(1 for m in box.slack.messages(CHANNEL) if m.get("username")) >= n, timeout=600,
                 what="all mirrored")
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        return n / elapsed, cpu * 1000 / n
    finally:
        box.close()


def ceiling_throughput(n: int) -> float:
    """The same HTTP calls with no persistence and no queue: poll pages, then one post per DM."""
    slack, x = SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN), XEmulator()
    slack.start()
    x.start()
    try:
        slack.add_channel(CHANNEL, "social-inbox")
        _customers(x)
        conn = XConnector(base_url=x.api_url, consumer_key=x.consumer_key, consumer_secret=x.consumer_secret,
                          access_token=x.access_token, access_token_secret=x.access_token_secret)
        conn.start()
        mark = conn.poll(None).cursor
        for i in range(n):
            x.customer_sends(CUSTOMERS[i % len(CUSTOMERS)], f"message {i}")
        client = httpx.Client(base_url=slack.api_url, headers={"Authorization": f"Bearer {BOT_TOKEN}"})
        t0 = time.perf_counter()
        done = 0
        while done < n:
            batch = conn.poll(mark)
            mark = batch.cursor
            for m in batch.messages:
                client.post("chat.postMessage", json={"channel": CHANNEL, "text": m.text, "thread_ts": None,
                                                      "username": m.customer.name})
                done += 1
        return n / (time.perf_counter() - t0)
    finally:
        slack.stop()
        x.stop()


def ack_latency(concurrency: int = 100, total: int = 400) -> tuple[float, float]:
    """Latency of signed Events API requests answered by the bridge (stored, then acked), in ms."""
    box = start_sandbox()
    try:
        box.x.customer_sends("1290011223344556677", "hello")
        ts = wait_for(lambda: box.slack.roots(CHANNEL), what="thread")[0]["ts"]
        bodies = []
        for i in range(total):
            env = {"type": "event_callback", "team_id": "T0SANDBOX", "api_app_id": "A0BRIDGE",
                   "event_id": f"EvBENCH{i}", "event_time": int(time.time()),
                   "event": {"type": "message", "user": "U0AGENT1", "text": f"// note {i}",
                             "ts": f"1900000000.{i:06d}", "thread_ts": ts, "channel": CHANNEL}}
            bodies.append(json.dumps(env).encode())
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=concurrency, pool_maxsize=concurrency)
        session.mount("http://", adapter)

        def send(body: bytes) -> float:
            headers = box.slack.sign(body)
            t = time.perf_counter()
            r = session.post(box.events_url, data=body, headers=headers, timeout=30)
            assert r.status_code == 200, r.status_code
            return (time.perf_counter() - t) * 1000

        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            lat = sorted(pool.map(send, bodies))
        return statistics.median(lat), lat[int(len(lat) * 0.99) - 1]
    finally:
        box.close()


def idle_rss_mb() -> float:
    """RSS of a real ``dmbridge serve`` process after it settles, against the emulators."""
    slack, x = SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN), XEmulator()
    slack.start()
    x.start()
    slack.add_channel(CHANNEL, "social-inbox")
    tmp = tempfile.mkdtemp()
    env = dict(os.environ, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
               SLACK_API_URL=slack.api_url, DMBRIDGE_CHANNEL=CHANNEL,
               DATABASE_URL=f"sqlite:///{Path(tmp) / 'rss.db'}", X_CONSUMER_KEY=x.consumer_key,
               X_CONSUMER_SECRET=x.consumer_secret, X_ACCESS_TOKEN=x.access_token,
               X_ACCESS_TOKEN_SECRET=x.access_token_secret, X_API_URL=x.api_url, X_POLL_SECONDS="65")
    proc = subprocess.Popen([sys.executable, "-m", "bridge", "serve", "--port", "0"], env=env, cwd=tmp,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(6)
        if proc.poll() is not None:
            raise RuntimeError("dmbridge serve exited early")
        status = Path(f"/proc/{proc.pid}/status").read_text()
        kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
        return kb / 1024
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        slack.stop()
        x.stop()


def run_all(n: int, pg_admin: str | None) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    ceiling = ceiling_throughput(n)
    rows.append((f"ceiling: same HTTP calls, no persistence ({n} DMs)", f"{ceiling:8.1f} DMs/s"))
    rate, cpu = inbound_throughput(n, None)
    rows.append(("inbound DM → Slack post, SQLite", f"{rate:8.1f} DMs/s  ({rate / ceiling:.0%} of ceiling), "
                                                   f"{cpu:.2f} ms CPU/DM"))
    if pg_admin:
        with scratch_pg(pg_admin) as url:
            rate, cpu = inbound_throughput(n, url)
        rows.append(("inbound DM → Slack post, PostgreSQL", f"{rate:8.1f} DMs/s  ({rate / ceiling:.0%} of ceiling), "
                                                           f"{cpu:.2f} ms CPU/DM"))
    p50, p99 = ack_latency()
    rows.append(("Slack event ack latency, 100 concurrent", f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"))
    rows.append(("idle RSS of dmbridge serve", f"{idle_rss_mb():.0f} MB"))
    return rows
