"""Attachments: peak memory of ``dmbridge serve`` relaying a large file each way, and photo → Slack latency.

``python -m bench.files [--mb 200] [--photos 200] [--conversations 10]`` (also the last rows of ``python -m
bench``). One real ``python -m bridge serve`` (SQLite, ``DMBRIDGE_MAX_ATTACHMENT_MB=250``,
``DMBRIDGE_SLACK_POSTS_PER_SECOND=0`` so Slack pacing plays no part) against the emulators in this process:

- **inbound**: a Messenger customer sends a ``--mb`` video through Meta's webhook, a link to the https CDN
  (served from disk); the bridge streams it into the thread through Slack's external upload (the emulator
  writes it to disk). Peak RSS is the serve process's ``VmHWM``, reset (``/proc/<pid>/clear_refs`` 5) just
  before the file is sent; the SHA-256 of what Slack received is checked.
- **outbound**: an agent shares a ``--mb`` file in a generic source's thread; the source gets dmbridge's
  ``/media`` link and fetches it at once (hashed as it streams), so serve streams the file from Slack to the
  source. ``VmHWM`` reset before, read after; the SHA-256 checked.
- **photos**: ``--photos`` random-pixel PNGs (~300 KB) from ``--conversations`` Messenger customers, one at a
  time (each sent once the previous one is in Slack), timed from just before the webhook POST to the moment
  the Slack emulator shares the file in the thread (``SlackEmulator.on_file_shared``). The ceiling
  (``bench.files_ceiling``, its own process) then takes the same webhooks and makes the same HTTP calls with
  the bridge's own clients and no store, into the same threads.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.core import AGENT, Row, _migrate, scratch_db
from bridge.sandbox.harness import CHANNEL, MESSENGER_CUSTOMER, PAGE_ID, shown, wait_for
from bridge.sandbox.meta import MetaEmulator
from bridge.sandbox.process import ROOT, ServeProcess, World, serve_env, start_world
from bridge.sandbox.slack import SlackEmulator

MB = 1024 * 1024
CAP_MB = 250
WARM_UP = 5  # photos sent before the timed ones, on both sides (first connections, first imports)


@dataclass
class Figures:
    idle_rss_mb: float = 0.0
    idle_hwm_mb: float = 0.0
    """``VmHWM`` since start, at idle (start-up included)."""
    inbound_hwm_mb: float = 0.0
    inbound_seconds: float = 0.0
    inbound_sha_ok: bool = False
    outbound_hwm_mb: float = 0.0
    outbound_seconds: float = 0.0
    outbound_sha_ok: bool = False
    peak_reset: bool = False
    """Whether ``VmHWM`` could be reset before each transfer (else it is the peak since start)."""
    bridge_ms: list[float] = field(default_factory=list)
    ceiling_ms: list[float] = field(default_factory=list)
    photos_sha_ok: bool = False


def png(width: int = 320, height: int = 320) -> bytes:
    """A real PNG of random RGB pixels (they barely compress: about ``3 * width * height`` bytes)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    rows = b"".join(b"\x00" + os.urandom(3 * width) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def big_file(folder: Path, mb: float, name: str) -> tuple[Path, str]:
    """``mb`` MB of random bytes on disk, written 1 MB at a time, and their SHA-256."""
    path, digest, left = folder / name, hashlib.sha256(), int(mb * MB)
    with path.open("wb") as out:
        while left > 0:
            block = os.urandom(min(MB, left))
            digest.update(block)
            out.write(block)
            left -= len(block)
    return path, digest.hexdigest()


def sha_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(MB):
            digest.update(block)
    return digest.hexdigest()


def pct(values: list[float], q: float) -> float:
    """The nearest-rank percentile ``q`` (0–100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


class Arrivals:
    """When each file (by name) was shared in Slack, from the emulator's hook: no polling."""

    def __init__(self, slack: SlackEmulator) -> None:
        self.at: dict[str, tuple[float, dict[str, Any]]] = {}
        self.cond = threading.Condition()
        slack.on_file_shared = self._shared

    def _shared(self, file: dict[str, Any]) -> None:
        now = time.perf_counter()
        with self.cond:
            self.at[str(file["name"])] = (now, file)
            self.cond.notify_all()

    def wait(self, name: str, timeout: float) -> tuple[float, dict[str, Any]]:
        with self.cond:
            if not self.cond.wait_for(lambda: name in self.at, timeout):
                raise TimeoutError(f"{name} did not reach Slack within {timeout:.0f} s")
            return self.at[name]


def reset_peak(proc: ServeProcess) -> bool:
    """``VmHWM`` := the current RSS (Linux ≥ 4.0); False where the kernel refuses."""
    try:
        Path(f"/proc/{proc.pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def thread_with(world: World, text: str, proc: ServeProcess | None = None) -> str:
    def find() -> str | None:
        return next((str(m["thread_ts"]) for m in world.slack.messages(CHANNEL) if text in shown(m)), None)

    try:
        return wait_for(find, timeout=60, what=f"a thread with {text!r}")
    except TimeoutError as exc:  # say what the bridge and the platforms saw, so a stall can be told apart
        webhooks = world.meta.webhook_statuses if world.meta is not None else []
        calls = [(c.method, c.status, c.error) for c in world.slack.calls()][-10:]
        tail = proc.log_tail(40) if proc is not None else ""
        raise TimeoutError(f"{exc}; Meta webhook answers {webhooks}; last Slack calls {calls}\n{tail}") from None


def customers(meta: MetaEmulator, count: int) -> list[str]:
    """``count`` Messenger customers of the page (the harness's own first)."""
    ids = [MESSENGER_CUSTOMER]
    for i in range(1, count):
        ids.append(f"73615229088{i:05d}")
        meta.add_customer(PAGE_ID, ids[-1], name=f"Photo Customer{i}")
    return ids


def send_photos(
    meta: MetaEmulator, arrivals: Arrivals, who: list[str], photos: list[bytes], prefix: str
) -> tuple[list[float], dict[str, str]]:
    """Each photo once the previous is in Slack; milliseconds from before the webhook POST to the share (the
    warm-up ones left out), and name → Slack file id."""
    took, ids = [], {}
    for i, photo in enumerate(photos):
        name = f"{prefix}-{i:04d}.png"
        t0 = time.perf_counter()
        meta.customer_sends(who[i % len(who)], "", attachments=[(photo, "image", name)])
        at, file = arrivals.wait(name, timeout=60)
        ids[name] = str(file["id"])
        if i >= WARM_UP:
            took.append((at - t0) * 1000)
    return took, ids


def photos_match(slack: SlackEmulator, photos: list[bytes], ids: dict[str, str]) -> bool:
    wanted = [hashlib.sha256(p).hexdigest() for p in photos]
    return [sha_of(slack.file_path(ids[n])) for n in sorted(ids)] == wanted


def ceiling(world: World, arrivals: Arrivals, who: list[str], threads: dict[str, str], photos: list[bytes]) -> Any:
    """The same photos through ``bench.files_ceiling``: milliseconds per photo, and whether the bytes match."""
    assert world.meta is not None and world.cdn is not None
    env = dict(os.environ, SSL_CERT_FILE=world.cdn.ca_file, PYTHONPATH=str(ROOT))
    args = [sys.executable, "-m", "bench.files_ceiling", world.slack.api_url, world.meta.app_secret, str(CAP_MB)]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        ready = proc.stdout.readline().split()
        if not ready or ready[0] != "ready":
            raise RuntimeError("the ceiling process did not start")
        world.meta.webhook_url = ready[1] + "/webhooks/meta"
        world.slack.event_target = ready[1] + "/slack/events"
        proc.stdin.write(json.dumps(threads) + "\n")
        proc.stdin.flush()
        took, ids = send_photos(world.meta, arrivals, who, photos, "ceiling")
        return took, photos_match(world.slack, photos, ids)
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def run(mb: float, photos: int, conversations: int, settle: float = 3.0) -> Figures:
    """``settle``: seconds of idle before the idle figures are read."""
    figures = Figures()
    world = start_world(customers=1, meta=True, generic=True)
    assert world.meta is not None and world.generic is not None and world.cdn is not None
    arrivals = Arrivals(world.slack)
    world.generic.keep_files = False  # hashed as it streams: the benchmark process stays small too
    who = customers(world.meta, conversations)
    try:
        with tempfile.TemporaryDirectory(prefix="dmbridge-bench-files-") as tmp, scratch_db("sqlite", None) as url:
            env = serve_env(world, url, DMBRIDGE_MAX_ATTACHMENT_MB=str(CAP_MB), X_POLL_SECONDS="65")
            _migrate(env)
            proc = ServeProcess(env, config=world.config_toml()).start()
            try:
                world.point_at(proc)
                threads = {}
                for i, cid in enumerate(who):  # the threads first: what is timed below is the files alone
                    world.meta.customer_sends(cid, f"hello from customer {i}")
                    threads[cid] = thread_with(world, f"hello from customer {i}", proc)
                world.generic.customer_sends("big-1", "visitor-1", "Ana", "can you send me the video?")
                generic_ts = thread_with(world, "send me the video", proc)
                time.sleep(settle)
                figures.idle_rss_mb = proc.status_kb("VmRSS") / 1024
                figures.idle_hwm_mb = proc.status_kb("VmHWM") / 1024
                if mb:
                    big, digest = big_file(Path(tmp), mb, "unboxing.mp4")
                    _inbound(world, proc, arrivals, big, digest, figures)
                    _outbound(world, proc, generic_ts, big, digest, figures)
                    big.unlink()
                if photos:
                    sent = [png() for _ in range(photos + WARM_UP)]
                    figures.bridge_ms, ids = send_photos(world.meta, arrivals, who, sent, "photo")
                    figures.photos_sha_ok = photos_match(world.slack, sent, ids)
            finally:
                proc.close()
            if photos:
                sent = [png() for _ in range(photos + WARM_UP)]
                figures.ceiling_ms, same = ceiling(world, arrivals, who, threads, sent)
                figures.photos_sha_ok = figures.photos_sha_ok and same
        return figures
    finally:
        world.close()


def _inbound(world: World, proc: ServeProcess, arrivals: Arrivals, big: Path, digest: str, f: Figures) -> None:
    assert world.meta is not None and world.cdn is not None
    f.peak_reset = reset_peak(proc)
    link = world.cdn.put(big, big.name, "video/mp4")
    t0 = time.perf_counter()
    world.meta.customer_sends(MESSENGER_CUSTOMER, "", attachments=[{"type": "video", "payload": {"url": link}}])
    at, file = arrivals.wait(big.name, timeout=900)
    f.inbound_seconds = at - t0
    f.inbound_hwm_mb = proc.status_kb("VmHWM") / 1024
    f.inbound_sha_ok = sha_of(world.slack.file_path(str(file["id"]))) == digest


def _outbound(world: World, proc: ServeProcess, ts: str, big: Path, digest: str, f: Figures) -> None:
    source = world.generic
    assert source is not None
    f.peak_reset = reset_peak(proc) and f.peak_reset
    t0 = time.perf_counter()
    world.slack.share_file_as_user(AGENT, CHANNEL, big, "manual.mp4", thread_ts=ts, mimetype="video/mp4")
    size = big.stat().st_size

    def fetched() -> tuple[int, int, str] | None:
        return next((v for v in list(source.fetched.values()) if v[1] == size or v[0] != 200), None)

    status, _size, got = wait_for(fetched, timeout=900, what="the source fetching the agent's file")
    f.outbound_seconds = time.perf_counter() - t0
    f.outbound_hwm_mb = proc.status_kb("VmHWM") / 1024
    f.outbound_sha_ok = status == 200 and got == digest


def report(mb: float, photos: int, conversations: int, out: Callable[[Row], None] = lambda r: None) -> list[Row]:
    return table(run(mb, photos, conversations), mb, photos, conversations, out)


def table(f: Figures, mb: float, photos: int, conversations: int, out: Callable[[Row], None]) -> list[Row]:
    rows: list[Row] = []

    def add(name: str, value: str) -> None:
        rows.append(Row(name, value))
        out(rows[-1])

    since = "since the reset just before" if f.peak_reset else "since start (no reset possible)"
    idle = f"RSS {f.idle_rss_mb:.0f} MB, VmHWM {f.idle_hwm_mb:.0f} MB since start"
    add("idle serve (Meta + generic + X configured, after 3 s)", idle)
    if mb:
        add(
            f"inbound {mb:g} MB Messenger video → Slack thread, serve peak RSS (VmHWM {since})",
            f"{f.inbound_hwm_mb:.0f} MB (target < 150); {f.inbound_seconds:.1f} s; SHA-256 "
            + ("equal" if f.inbound_sha_ok else "DIFFERENT"),
        )
        add(
            f"outbound {mb:g} MB agent file → generic source via /media, serve peak RSS (VmHWM {since})",
            f"{f.outbound_hwm_mb:.0f} MB (target < 150); {f.outbound_seconds:.1f} s; SHA-256 "
            + ("equal" if f.outbound_sha_ok else "DIFFERENT"),
        )
    if photos:
        b50, b99, c50, c99 = (pct(v, q) for v in (f.bridge_ms, f.ceiling_ms) for q in (50, 99))
        add(
            f"photo (~300 KB PNG) → Slack upload, ceiling (same webhooks and calls, no store), {photos} photos",
            f"p50 {c50:.1f} ms, p99 {c99:.1f} ms",
        )
        add(
            f"photo (~300 KB PNG) → Slack upload, bridge (SQLite), {photos} one at a time, {conversations} conv.",
            f"p50 {b50:.1f} ms, p99 {b99:.1f} ms = {b50 / c50:.2f}x / {b99 / c99:.2f}x the ceiling; SHA-256 "
            + ("equal" if f.photos_sha_ok else "DIFFERENT"),
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=200, help="size of the large file each way (0 skips)")
    parser.add_argument("--photos", type=int, default=200, help="timed photos (0 skips)")
    parser.add_argument("--conversations", type=int, default=10, help="Messenger customers the photos come from")
    args = parser.parse_args()
    sys.setswitchinterval(0.0005)  # the emulators answer from threads of this process
    report(args.mb, args.photos, args.conversations, out=lambda r: print(f"{r.name:<100}  {r.value}", flush=True))


if __name__ == "__main__":
    main()
