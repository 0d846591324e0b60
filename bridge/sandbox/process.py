"""``dmbridge serve`` as a real subprocess against emulators running in this process (crash tests, benchmarks).

The subprocess is configured only through the environment, as in
production: ``SLACK_API_URL``, ``X_API_URL``, tokens, ``DATABASE_URL``,
``DMBRIDGE_CHANNEL``, ``X_POLL_SECONDS``; ``SSL_CERT_FILE`` and ``DMBRIDGE_FETCH_PRIVATE`` to fetch customers'
files from the world's CDN (https on 127.0.0.1). Slack's deliveries reach it
through ``SlackEmulator.event_target``. With ``serve_env(..., x_chat=True)`` it
also runs X Chat (``X_CHAT``, ``X_WEBHOOKS``, ``DMBRIDGE_SECRET_KEY``,
``X_USER_BEARER_TOKEN``); ``set_up_x_chat`` makes the brand's identity first,
as ``dmbridge x-chat setup`` does, and ``ServeProcess.x_webhook_url`` is where
the X emulator's deliveries go. ``start_world(meta=True)`` adds a Meta page with its Instagram account and one
customer on each (``META_*`` in ``serve_env``); ``generic=True`` a generic source (its secret in ``serve_env``,
its ``[[generic.sources]]`` in :meth:`World.config_toml`, written as ``dmbridge.toml`` by ``ServeProcess(...,
config=...)``); :meth:`World.point_at` sends every emulator's deliveries to one serve process.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bridge import x_chat_keys
from bridge.config import Settings
from bridge.sandbox import harness
from bridge.sandbox.cdn import Cdn
from bridge.sandbox.generic import GenericSourceEmulator
from bridge.sandbox.harness import BOT_TOKEN, CHANNEL, GENERIC_SECRET_ENV, PAGE_TOKEN, SIGNING_SECRET
from bridge.sandbox.meta import MetaEmulator
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
    chat_customers: list[str] = field(default_factory=list)
    """Customers with X Chat identities of their own (``XEmulator.customer_chats``)."""
    secret_key: str = field(default_factory=x_chat_keys.new_secret_key)
    """``DMBRIDGE_SECRET_KEY`` of every serve process of this world (seals the brand's X Chat identity)."""
    cdn: Cdn | None = None
    """Customers' files over https (``SSL_CERT_FILE`` of the serve processes names its CA)."""
    meta: MetaEmulator | None = None
    """A Meta page and its Instagram account (``harness.start_meta``), when asked for."""
    generic: GenericSourceEmulator | None = None
    """A generic webhook source, when asked for."""

    def config_toml(self) -> str:
        """The ``dmbridge.toml`` this world needs (its generic source), or an empty string."""
        if self.generic is None:
            return ""
        return (
            f'[[generic.sources]]\nname = "{self.generic.name}"\nsecret_env = "{GENERIC_SECRET_ENV}"\n'
            f'callback_url = "{self.generic.callback_url}"\n'
        )

    def point_at(self, proc: ServeProcess) -> None:
        """Slack's, Meta's and the generic source's deliveries go to ``proc`` from now on."""
        self.slack.event_target = proc.events_url
        if self.meta is not None:
            self.meta.webhook_url = proc.url + "/webhooks/meta"
        if self.generic is not None:
            self.generic.webhook_url = f"{proc.url}/webhooks/generic/{self.generic.name}"

    def close(self) -> None:
        self.slack.stop()
        self.x.stop()
        for emulator in (self.meta, self.generic, self.cdn):
            if emulator is not None:
                emulator.stop()


def start_world(
    customers: int = 20,
    *,
    chat_customers: int = 0,
    posts_per_second: float = 0.0,
    post_burst: int = 1,
    echo_bot_messages: bool = True,
    meta: bool = False,
    generic: bool = False,
) -> World:
    """``customers`` who DM by legacy DM (``Customer {i}``) and ``chat_customers`` who write by X Chat
    (``Chatter {i}``, each with a ``chatxdk`` identity of their own); with ``meta`` a Meta page and Instagram
    account, with ``generic`` a generic source, both serving customers' files from the world's CDN."""
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
    chat_ids = [str(1290011223400000000 + i) for i in range(chat_customers)]
    for i, cid in enumerate(chat_ids):
        x.add_chat_customer(cid, f"chatter{i}", f"Chatter {i}", profile_image_url=f"https://img.example/c{i}.jpg")
    cdn = Cdn()
    cdn.start()
    world = World(slack, x, ids, chat_ids, cdn=cdn)
    if meta:
        world.meta = harness.start_meta(cdn)
    if generic:
        world.generic = GenericSourceEmulator(cdn=cdn)
        world.generic.start()
    return world


def serve_env(world: World, database_url: str, *, x_chat: bool = False, **extra: str) -> dict[str, str]:
    """The environment of ``dmbridge serve`` against ``world``. ``x_chat``: X Chat on, with X's webhooks
    (legacy DMs and X Chat both delivered to ``/webhooks/x``, reconciled every ``X_RECONCILE_SECONDS``,
    by default as often as ``X_POLL_SECONDS`` polls)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "X_", "META_", "DMBRIDGE_", "DATABASE_URL"))
    }
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
    if world.cdn is not None:  # its files are fetched over https from 127.0.0.1, trusting its CA
        env.update(SSL_CERT_FILE=world.cdn.ca_file, DMBRIDGE_FETCH_PRIVATE="true")
    if world.meta is not None:
        env.update(
            META_APP_SECRET=world.meta.app_secret,
            META_VERIFY_TOKEN=world.meta.verify_token,
            META_PAGE_ACCESS_TOKEN=PAGE_TOKEN,
            META_GRAPH_URL=world.meta.graph_url,
        )
    if world.generic is not None:
        env[GENERIC_SECRET_ENV] = world.generic.secret
    if x_chat:
        env.update(
            X_CHAT="true",
            X_WEBHOOKS="true",
            DMBRIDGE_SECRET_KEY=world.secret_key,
            X_USER_BEARER_TOKEN=world.x.user_bearer_token,
            X_RECONCILE_SECONDS=extra.get("X_POLL_SECONDS", env["X_POLL_SECONDS"]),
        )
    env.update(extra)
    return env


def set_up_x_chat(env: dict[str, str]) -> None:
    """What ``dmbridge x-chat setup`` does, with the settings of ``env`` (``serve_env(..., x_chat=True)``):
    the database migrated, the brand's identity registered with X and stored sealed. Once, before serving."""
    fields = {name.upper(): name for name in Settings.model_fields}
    values: dict[str, Any] = {fields[k]: v for k, v in env.items() if k in fields}
    harness.set_up_x_chat(Settings(_env_file=None, **values))  # type: ignore[call-arg]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """One ``python -m bridge serve``; its output goes to a log file. ``config``: the text of the
    ``dmbridge.toml`` written in its working directory (``World.config_toml``), if any."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        port: int | None = None,
        workdir: Path | None = None,
        name: str = "serve",
        config: str = "",
    ) -> None:
        self.env, self.port = env, port or free_port()
        self._own_workdir = workdir is None  # removed by close()
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="dmbridge-serve-"))
        if config:
            (self.workdir / "dmbridge.toml").write_text(config)
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
    def x_webhook_url(self) -> str:
        """Where X's webhook deliveries go (``XEmulator.webhook_url``) when ``X_WEBHOOKS`` is on."""
        return self.url + "/webhooks/x"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, wait: bool = True, timeout: float = 30.0) -> ServeProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115  (the child owns it)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bridge", "serve", "--port", str(self.port)],
            env={"DMBRIDGE_PUBLIC_URL": self.url, **self.env},
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
