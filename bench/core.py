"""The benchmark suite: throughput against a same-run ceiling, ack latency, RSS, drain under Slack's limit.

Everything measured here runs ``python -m bridge serve`` as real
subprocesses against the emulators, which run in this process; the ceiling
(``bench.ceiling``) and the load generator (``bench.loadgen``) run in their
own processes too, so no two measured parties share an interpreter.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bridge.sandbox.harness import CHANNEL, wait_for
from bridge.sandbox.process import ROOT, ServeProcess, World, free_port, serve_env, start_world
from bridge.sandbox.x import BRAND_ID

AGENT = "U0AGENT1"
REPLY_POLL_SECONDS = "2"
"""X's poll interval in the runs that measure replies (production polls every 65 s, or not at all with
webhooks): the threads they reply in still appear within seconds, and the process is not also polling X five
times a second, as the inbound runs need it to (measured on one machine: relay 48 % of the ceiling polling
every 0.2 s, 52 % every 2 s)."""


@dataclass
class Row:
    name: str
    value: str


@contextmanager
def scratch_db(kind: str, pg_admin: str | None) -> Iterator[str]:
    """A fresh SQLite file or PostgreSQL database, removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="dmbridge-bench-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    assert pg_admin is not None
    name = f"dmbridge_bench_{uuid.uuid4().hex[:8]}"
    eng = create_engine(pg_admin.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield pg_admin.rsplit("/", 1)[0] + "/" + name
    finally:
        with eng.connect() as c:
            c.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname='{name}'"))
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        eng.dispose()


def _migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "bridge", "migrate"],
        env=env,
        cwd=tempfile.gettempdir(),
        check=True,
        stdout=subprocess.DEVNULL,
    )


@contextmanager
def bridges(world: World, database_url: str, count: int, **extra: str) -> Iterator[list[ServeProcess]]:
    """``count`` serve processes on one database, the first poll done (so new DMs count as new)."""
    env = serve_env(world, database_url, **extra)
    _migrate(env)
    procs = [ServeProcess(env, name=f"serve{i}") for i in range(count)]
    try:
        for p in procs:
            p.start(wait=False)
        for p in procs:
            p.wait_ready()
        wait_for(lambda: any(r[1] == "/2/dm_events" and r[2] == 200 for r in world.x.requests), what="first poll")
        time.sleep(0.3)  # the first poll's cursor is committed just after its answer
        world.slack.event_target = procs[0].events_url
        yield procs
    finally:
        for p in procs:
            p.close()


def _mirrored(world: World) -> int:
    return sum(1 for m in world.slack.messages(CHANNEL) if m.get("username") and m.get("thread_ts"))


def _ceiling(mode: str, world: World, n: int, go: Callable[[str], str]) -> subprocess.Popen[str]:
    """Start ``bench.ceiling``; ``go(events_url)`` prepares the run and returns the line that starts it."""
    args = [sys.executable, "-m", "bench.ceiling", mode, world.slack.api_url, world.x.api_url, str(n)]
    proc = subprocess.Popen(args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    ready = proc.stdout.readline().split()
    if not ready or ready[0] != "ready":
        raise RuntimeError("ceiling process did not start")
    proc.stdin.write(go(ready[1]) + "\n")
    proc.stdin.flush()
    return proc


def _finished(proc: subprocess.Popen[str]) -> float:
    assert proc.stdout is not None
    result = json.loads(proc.stdout.readline())
    proc.wait(timeout=30)
    return float(result["elapsed"])


def ceiling_inbound(n: int) -> float:
    world = start_world()
    try:

        def go(url: str) -> str:
            world.slack.event_target = url  # the ceiling acknowledges Slack's echoes of its posts too
            for i in range(n):
                world.x.customer_sends(world.customers[i % len(world.customers)], f"message {i}")
            return "go"

        return n / _finished(_ceiling("inbound", world, n, go))
    finally:
        world.close()


def inbound(n: int, database_url: str, count: int) -> tuple[float, float]:
    """DMs/s from the X emulator to mirrored Slack posts; CPU ms per DM summed over the processes."""
    world = start_world()
    try:
        with bridges(world, database_url, count, X_POLL_SECONDS="0.1") as procs:
            cpu0 = sum(p.cpu_seconds() for p in procs)
            t0 = time.perf_counter()
            for i in range(n):
                world.x.customer_sends(world.customers[i % len(world.customers)], f"message {i}")
            wait_for(lambda: _mirrored(world) >= n, timeout=600, what="all mirrored")
            elapsed = time.perf_counter() - t0
            cpu = sum(p.cpu_seconds() for p in procs) - cpu0
            return n / elapsed, cpu * 1000 / n
    finally:
        world.close()


def _threads(world: World, procs: list[ServeProcess]) -> list[tuple[str, str, str]]:
    """One conversation per customer: (customer, dm_conversation_id, thread ts)."""
    for cid in world.customers:
        world.x.customer_sends(cid, "hello")
    wait_for(
        lambda: len(world.slack.roots(CHANNEL)) >= len(world.customers) and _mirrored(world) >= len(world.customers),
        timeout=120,
        what="threads",
    )
    found = []
    for root in world.slack.roots(CHANNEL):
        replies = world.slack.thread(CHANNEL, root["ts"])[1:]
        name = replies[0]["username"]
        cid = world.customers[int(re.findall(r"\d+", name)[0])]  # "Customer 3 (X)": the number is the index
        low, high = sorted((cid, BRAND_ID), key=int)
        found.append((cid, f"{low}-{high}", str(root["ts"])))
    return found


def _signed(world: World, event: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(world.slack.envelope(event))
    return {"body": body, "headers": world.slack.sign(body.encode())}


def _send_all(world: World, requests: list[tuple[str, dict[str, Any]]]) -> None:
    """Deliver signed events with 8 senders at once, as Slack's delivery does, each acknowledged."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(
            pool.map(
                lambda r: world.slack.send_raw(r[1]["body"].encode(), r[1]["headers"], target=r[0]).status_code,
                requests,
            )
        )
    assert set(statuses) == {200}, statuses


def ceiling_relay(n: int) -> float:
    world = start_world(echo_bot_messages=False)
    try:
        convs = {}
        for cid in world.customers:
            low, high = sorted((cid, BRAND_ID), key=int)
            convs[str(world.slack.add_message(AGENT, CHANNEL, f"thread of {cid}")["ts"])] = f"{low}-{high}"
        roots = list(convs)
        t0 = 0.0

        def go(url: str) -> str:
            nonlocal t0
            requests = [
                (
                    url,
                    _signed(
                        world, world.slack.add_message(AGENT, CHANNEL, f"reply {i}", thread_ts=roots[i % len(roots)])
                    ),
                )
                for i in range(n)
            ]
            threading.Thread(target=_send_all, args=(world, requests), daemon=True).start()
            t0 = time.perf_counter()
            return json.dumps(convs)

        proc = _ceiling("relay", world, n, go)
        _finished(proc)
        return n / (time.perf_counter() - t0)
    finally:
        world.close()


def relay(n: int, database_url: str, count: int) -> tuple[float, float]:
    """Agent replies/s from signed Slack events (spread over the processes) to DMs out and ✅ on Slack."""
    world = start_world()
    try:
        with bridges(world, database_url, count, X_POLL_SECONDS=REPLY_POLL_SECONDS) as procs:
            threads = _threads(world, procs)
            requests = []
            for i in range(n):
                _cid, _conv, ts = threads[i % len(threads)]
                ev = world.slack.add_message(AGENT, CHANNEL, f"reply {i}", thread_ts=ts)
                requests.append((procs[i % len(procs)].events_url, _signed(world, ev)))
            cpu0 = sum(p.cpu_seconds() for p in procs)
            t0 = time.perf_counter()
            _send_all(world, requests)

            def delivered() -> bool:
                sent = sum(len(world.x.received_by(c)) for c, _v, _t in threads)
                oks = sum(
                    1
                    for m in world.slack.messages(CHANNEL)
                    if "white_check_mark" in world.slack.reactions(CHANNEL, m["ts"])
                )
                return sent >= n and oks >= n

            wait_for(delivered, timeout=600, what="all relayed")
            elapsed = time.perf_counter() - t0
            cpu = sum(p.cpu_seconds() for p in procs) - cpu0
            return n / elapsed, cpu * 1000 / n
    finally:
        world.close()


def ack_latency(
    rate: float, seconds: float, in_flight: int = 100, kind: str = "reply"
) -> tuple[dict[str, Any], float, float]:
    """Open-loop signed thread messages at ``rate``/s against one serve process (SQLite).

    ``kind="reply"``: agent replies, each then relayed to X and marked ✅ while
    the load runs; ``kind="note"``: internal notes (stored, classified, nothing
    sent), which isolates the acknowledgement path.

    Returns the load generator's summary, the process's idle RSS before the
    load and its peak RSS (VmHWM) after it, in MB.
    """
    world = start_world()
    try:
        with scratch_db("sqlite", None) as url, bridges(world, url, 1, X_POLL_SECONDS=REPLY_POLL_SECONDS) as procs:
            proc = procs[0]
            threads = _threads(world, procs)
            time.sleep(2)
            idle = proc.status_kb("VmRSS") / 1024
            total = int(rate * seconds)
            requests = []
            for i in range(total):
                ts = threads[i % len(threads)][2]
                text = f"// note {i}" if kind == "note" else f"reply {i}"
                requests.append(_signed(world, world.slack.add_message(AGENT, CHANNEL, text, thread_ts=ts)))
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
                json.dump(requests, fh)
            out = subprocess.run(
                [sys.executable, "-m", "bench.loadgen", fh.name, proc.events_url, str(rate), str(in_flight)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            summary = json.loads(out.stdout)
            if kind == "reply":
                wait_for(
                    lambda: sum(len(world.x.received_by(c)) for c, _v, _t in threads) >= total,
                    timeout=300,
                    what="relays after the load",
                )
            return summary, idle, proc.status_kb("VmHWM") / 1024
    finally:
        world.close()


def idle_rss() -> float:
    """RSS of a serve process with the production poll interval, after it settles."""
    world = start_world(customers=1)
    try:
        with scratch_db("sqlite", None) as url, bridges(world, url, 1, X_POLL_SECONDS="65") as procs:
            time.sleep(5)
            return procs[0].status_kb("VmRSS") / 1024
    finally:
        world.close()


def drain(n: int, burst: int = 3) -> tuple[float, float, int, int]:
    """A burst of ``n`` DMs from one customer into one channel, Slack limited to 1 post/s (burst ``burst``).

    Returns (seconds from first to last post, theoretical minimum, 429s, posts).
    The bridge runs with its default pacing (1/s, burst 3).
    """
    world = start_world(customers=1, posts_per_second=1.0, post_burst=burst)
    try:
        with (
            scratch_db("sqlite", None) as url,
            bridges(world, url, 1, DMBRIDGE_SLACK_POSTS_PER_SECOND="1", DMBRIDGE_SLACK_BURST=str(burst)),
        ):
            for i in range(n):
                world.x.customer_sends(world.customers[0], f"burst {i}")
            posts = n + 1  # the header card, then every message
            wait_for(lambda: len(world.slack.messages(CHANNEL)) >= posts, timeout=n * 3 + 120, what="drain")
            stamps = sorted(float(m["ts"]) for m in world.slack.messages(CHANNEL))
            took = stamps[-1] - stamps[0]
            minimum = max(0.0, posts - burst) / 1.0
            return took, minimum, world.slack.count_429(), len(world.slack.calls("chat.postMessage"))
    finally:
        world.close()


def run_all(
    n: int,
    pg_admin: str | None,
    *,
    rates: tuple[float, ...] = (100.0, 200.0),
    seconds: float = 20.0,
    drain_messages: int = 300,
    out: Callable[[Row], None] = lambda r: None,
) -> list[Row]:
    rows: list[Row] = []

    def add(name: str, value: str) -> None:
        rows.append(Row(name, value))
        out(rows[-1])

    dbs = ["sqlite"] + (["postgresql"] if pg_admin else [])
    ceiling = ceiling_inbound(n)
    add(f"inbound ceiling (same calls, same clients, no store; {n} DMs, 20 conversations)", f"{ceiling:7.1f} DMs/s")
    for db in dbs:
        for count in (1, 3):
            with scratch_db(db, pg_admin) as url:
                rate, cpu = inbound(n, url, count)
            add(
                f"inbound DM → Slack post, {db}, {count} process{'es' if count > 1 else ''}",
                f"{rate:7.1f} DMs/s = {rate / ceiling:4.0%} of ceiling; {cpu:.2f} ms CPU/DM",
            )
    ceiling_r = ceiling_relay(n)
    add(f"relay ceiling (X send + ✅ reaction, no store; {n} replies)", f"{ceiling_r:7.1f} replies/s")
    for db in dbs:
        for count in (1, 3):
            with scratch_db(db, pg_admin) as url:
                rate, cpu = relay(n, url, count)
            add(
                f"relay Slack reply → DM out + ✅, {db}, {count} process{'es' if count > 1 else ''}",
                f"{rate:7.1f} replies/s = {rate / ceiling_r:4.0%} of ceiling; {cpu:.2f} ms CPU/reply",
            )
    for kind in ("note", "reply"):
        for r in rates:
            summary, _idle, peak = ack_latency(r, seconds, kind=kind)
            what = "notes (stored, nothing sent)" if kind == "note" else "replies (each relayed to X + ✅)"
            add(
                f"ack latency, {what}, open loop {r:.0f}/s for {seconds:.0f} s, ≤100 in flight, SQLite",
                f"p50 {summary['p50']:.1f} ms, p99 {summary['p99']:.1f} ms, max {summary['max']:.0f} ms; "
                f"HTTP {summary['statuses']}; peak RSS {peak:.0f} MB",
            )
    add("idle RSS of dmbridge serve (X_POLL_SECONDS=65, after 5 s)", f"{idle_rss():.0f} MB")
    if drain_messages:
        took, minimum, n429, posts = drain(drain_messages)
        add(
            f"drain {drain_messages} DMs into one channel, Slack 1 post/s (burst 3)",
            f"{took:.1f} s vs minimum {minimum:.0f} s (+{(took / minimum - 1) if minimum else 0:.1%}); "
            f"{n429} × 429 of {posts} posts ({n429 / posts:.1%})",
        )
    return rows


__all__ = ["Row", "free_port", "run_all"]
