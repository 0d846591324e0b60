"""``dmbridge serve`` as a real subprocess against emulators running in this process (crash tests, benchmarks).

The subprocess is configured only through the environment, as in
production: ``SLACK_API_URL``, ``X_API_URL``, tokens, ``DATABASE_URL``,
``DMBRIDGE_CHANNEL``, ``X_POLL_SECONDS``. Slack's deliveries reach it
through ``SlackEmulator.event_target``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bridge.sandbox.harness import BOT_TOKEN, CHANNEL, SIGNING_SECRET
from bridge.sandbox.slack import SlackEmulator
from bridge.sandbox.x import XEmulator

ROOT = Path(__file__).resolve().parents[2]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class World:
    """The emulated Slack workspace and X account the subprocesses talk to."""

    slack: SlackEmulator
    x: XEmulator
    customers: list[str]

    def close(self) -> None:
        self.slack.stop()
        self.x.stop()


def start_world(
    customers: int = 20, *, posts_per_second: float = 0.0, post_burst: int = 1, echo_bot_messages: bool = True
) -> World:
    slack = SlackEmulator(
        signing_secret=SIGNING_SECRET,
        bot_token=BOT_TOKEN,
        posts_per_second=posts_per_second,
        post_burst=post_burst,
        echo_bot_messages=echo_bot_messages,
        page_size=5,
    )
    slack.start()
    slack.add_user("U0AGENT1", "sam", "Sam Rivera")
    slack.add_channel(CHANNEL, "social-inbox", members=["U0AGENT1", "U0BOT"])
    x = XEmulator()
    x.start()
    ids = [str(1290011223300000000 + i) for i in range(customers)]
    for i, cid in enumerate(ids):
        x.add_user(cid, f"customer{i}", f"Customer {i}", profile_image_url=f"https://img.example/{i}.jpg")
    return World(slack, x, ids)


def serve_env(world: World, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "X_", "DMBRIDGE_", "DATABASE_URL"))}
    env.update(
        PYTHONPATH=str(ROOT),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=world.slack.api_url,
        DMBRIDGE_CHANNEL=CHANNEL,
        DATABASE_URL=database_url,
        X_CONSUMER_KEY=world.x.consumer_key,
        X_CONSUMER_SECRET=world.x.consumer_secret,
        X_ACCESS_TOKEN=world.x.access_token,
        X_ACCESS_TOKEN_SECRET=world.x.access_token_secret,
        X_API_URL=world.x.api_url,
        X_POLL_SECONDS="0.2",
        DMBRIDGE_SLACK_POSTS_PER_SECOND="0",
    )
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """One ``python -m bridge serve``; its output goes to a log file."""

    def __init__(
        self, env: dict[str, str], *, port: int | None = None, workdir: Path | None = None, name: str = "serve"
    ) -> None:
        self.env, self.port = env, port or free_port()
        self._own_workdir = workdir is None  # removed by close()
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="dmbridge-serve-"))
        self.log_path = self.workdir / f"{name}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def events_url(self) -> str:
        return self.url + "/slack/events"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, wait: bool = True, timeout: float = 30.0) -> ServeProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115  (the child owns it)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bridge", "serve", "--port", str(self.port)],
            env=self.env,
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.starts += 1
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until ``/healthz`` answers (200 or 503: the process serves)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"dmbridge serve exited early; see {self.log_path}:\n{self.log_tail()}")
            try:
                httpx.get(self.url + "/healthz", timeout=1.0)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise TimeoutError(f"dmbridge serve did not answer within {timeout} s; see {self.log_path}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind runs."""
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def close(self) -> None:
        """Stop, and remove the working directory (and its log) if this object created it."""
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def health(self) -> dict[str, object]:
        return dict(httpx.get(self.url + "/healthz", timeout=5).json())

    def status_kb(self, field: str) -> int:
        """A ``/proc/<pid>/status`` field in kB (VmRSS, VmHWM)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
