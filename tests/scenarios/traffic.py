"""Traffic in both directions against ``serve`` subprocesses, and the checks that nothing was lost or doubled."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from bridge.sandbox.harness import CHANNEL, Sandbox, shown, start_sandbox
from bridge.sandbox.process import World
from bridge.sandbox.slack import BOT_USER
from bridge.sandbox.x import BRAND_ID


@contextmanager
def sandbox_with_customers(ids: list[str], handle: str, name: str) -> Iterator[Sandbox]:
    """A sandbox whose X knows ``ids`` as customers ``{handle}0``, ``{name} 0``, …; a post that times out
    after 1 s is verified, so fault tests run quickly."""
    sandbox = start_sandbox(dmbridge_http_timeout=1.0)
    for i, cid in enumerate(ids):
        sandbox.x.add_user(cid, f"{handle}{i}", f"{name} {i}")
    try:
        yield sandbox
    finally:
        sandbox.close()


AGENT = "U0AGENT1"


@dataclass
class Traffic:
    """Customers DM the brand (legacy DMs, or X Chat for ``world.chat_customers``), agents answer in the
    threads; remembers what must arrive, in which order."""

    world: World
    targets: list[str]  # events URLs of the serve processes; deliveries rotate over them
    rng: random.Random = field(default_factory=lambda: random.Random(4))
    inbound: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    outbound: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    reply_ts: list[str] = field(default_factory=list)
    files_in: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # names, customer → thread
    files_out: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # SHA-256, thread → customer
    event_attempts: int = 0
    acknowledged: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def customer_says(self, cid: str, text: str) -> None:
        self.inbound[cid].append(text)
        if cid in self.world.chat_customers:
            self.world.x.customer_chats(cid, text)
        else:
            self.world.x.customer_sends(cid, text)

    def thread_of(self, cid: str) -> str | None:
        name = self.world.x.users[cid]["name"]
        for root in self.world.slack.roots(CHANNEL):
            if name in shown(root):
                return str(root["ts"])
        return None

    def agent_replies(self, cid: str, text: str, *, deliveries: int = 1, give_up_after: float = 60.0) -> None:
        """Post in the customer's thread; deliver the event like Slack (retrying until acknowledged)."""
        ts = self.thread_of(cid)
        assert ts is not None, f"no thread for {cid}"
        event = self.world.slack.add_message(AGENT, CHANNEL, text, thread_ts=ts)
        self.outbound[cid].append(text)
        self.reply_ts.append(str(event["ts"]))
        self.deliver(event, deliveries=deliveries, give_up_after=give_up_after)

    def customer_sends_file(self, cid: str, name: str, data: bytes) -> None:
        """An X Chat customer sends a photo alone (encrypted; by webhook, or found by reconciliation)."""
        assert cid in self.world.chat_customers, "legacy DM media needs OAuth 2.0, which this world does not use"
        self.files_in[cid].append(name)
        self.world.x.customer_sends_file(cid, data, name, "image", "")

    def agent_sends_file(self, cid: str, name: str, data: bytes) -> None:
        """An agent attaches a photo, with no text, to a reply in the customer's thread."""
        ts = self.thread_of(cid)
        assert ts is not None, f"no thread for {cid}"
        event, _ = self.world.slack.add_file_share(AGENT, CHANNEL, data, name, thread_ts=ts, mimetype="image/png")
        self.files_out[cid].append(hashlib.sha256(data).hexdigest())
        self.reply_ts.append(str(event["ts"]))
        self.deliver(event)

    def deliver(self, event: dict[str, Any], *, deliveries: int = 1, give_up_after: float = 60.0) -> None:
        envelope = self.world.slack.envelope(event)
        for copy in range(deliveries):
            deadline, retry = time.monotonic() + give_up_after, copy
            while True:
                target = self.rng.choice(self.targets)
                with self.lock:
                    self.event_attempts += 1
                try:
                    status = self.world.slack.send_envelope_to(envelope, target, retry_num=retry).status_code
                except httpx.HTTPError:
                    status = 0
                if status == 200:
                    with self.lock:
                        self.acknowledged += copy == 0
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"event {envelope['event_id']} never acknowledged (last {status})")
                retry += 1
                time.sleep(0.1)

    # ------------------------------------------------------------------ checks

    def mirrored(self, cid: str) -> list[str]:
        ts = self.thread_of(cid)
        if ts is None:
            return []
        return [shown(m) for m in self.world.slack.thread(CHANNEL, ts)[1:] if m.get("username")]

    def received(self, cid: str) -> list[str]:
        """What the customer read from the brand: decrypted in their X Chat app, or their legacy DMs (the text;
        a file sent alone has none)."""
        if cid in self.world.chat_customers:
            return [t for t in self.world.x.chat_received_by(cid) if t]
        return [t for t in self.world.x.received_by(cid) if t]

    def files_received(self, cid: str) -> list[str]:
        """The SHA-256 of each file the customer received from the brand, in order."""
        if cid in self.world.chat_customers:
            found = [data for _, data in self.world.x.chat_files_received_by(cid)]
        else:
            found = self.world.x.received_media(cid)
        return [hashlib.sha256(data).hexdigest() for data in found]

    def files_shown(self, cid: str) -> list[str]:
        """The names of the customer's files copied into their thread (by the bot; not agents' own)."""
        ts = self.thread_of(cid)
        shared = self.world.slack.files_in_thread(CHANNEL, ts) if ts is not None else []
        return [f["name"] for f in shared if f.get("user") == BOT_USER]

    def all_arrived(self) -> bool:
        return (
            all(len(self.mirrored(c)) >= len(t) for c, t in self.inbound.items())
            and all(len(self.received(c)) >= len(t) for c, t in self.outbound.items())
            and all(len(self.files_shown(c)) >= len(n) for c, n in self.files_in.items())
            and all(len(self.files_received(c)) >= len(s) for c, s in self.files_out.items())
            and self.ticks() >= len(self.reply_ts)
        )

    def ticks(self) -> int:
        return sum(1 for ts in self.reply_ts if "white_check_mark" in self.world.slack.reactions(CHANNEL, ts))

    def problems(self) -> list[str]:
        """Every message delivered, none twice, each conversation's order kept (empty when all is well)."""
        found = []
        for cid, expected in self.inbound.items():
            got = self.mirrored(cid)
            if got != expected:
                found.append(f"Slack thread of {cid}: expected {expected}, got {got}")
        for cid, expected in self.outbound.items():
            got = self.received(cid)
            if got != expected:
                found.append(f"DMs to {cid}: expected {expected}, got {got}")
        for cid, names in self.files_in.items():  # once each; reconciliation may bring one after a later one
            if sorted(got := self.files_shown(cid)) != sorted(names):
                found.append(f"files in the thread of {cid}: expected {names}, got {got}")
        for cid, sums in self.files_out.items():
            if (got := self.files_received(cid)) != sums:
                found.append(f"files to {cid}: expected {len(sums)} in order, got {len(got)} {got == sums}")
        for cid in self.world.chat_customers:  # a reply to an X Chat customer goes by X Chat only
            if legacy := self.world.x.received_by(cid):
                found.append(f"legacy DMs to X Chat customer {cid}: {legacy}")
        missing = [ts for ts in self.reply_ts if "white_check_mark" not in self.world.slack.reactions(CHANNEL, ts)]
        if missing:
            found.append(f"{len(missing)} replies without ✅")
        return found


def conversation_id(cid: str) -> str:
    low, high = sorted((cid, BRAND_ID), key=int)
    return f"{low}-{high}"
