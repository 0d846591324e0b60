"""The fast in-process tier: the real delivery loops, processor and store, with fakes at the edges.

No HTTP and no threads: a test builds a ``Context`` over a real database
(SQLite or PostgreSQL), a manual clock, a fake Slack and a fake platform
connector, and calls ``step()`` itself. ``FaultyDatabase`` makes chosen
transactions fail the way a database blip or a deadlock does.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from bridge import thread_messages
from bridge.authz import Facts
from bridge.config import Settings
from bridge.context import Context
from bridge.desk import Desk
from bridge.domain import Customer, InboundMessage, Limits, OutboundMessage, Platform, SendResult
from bridge.inbound import ingest_message
from bridge.platform_delivery import PlatformHandler
from bridge.runner import Runner
from bridge.slack_delivery import SlackHandler
from bridge.store import events
from bridge.store.db import Database
from bridge.store.migrate import upgrade
from bridge.store.tables import Conversation, Outbox
from bridge.toml_config import FileConfig

CHANNEL, BOT = "C0INBOX", "UBOT"


def slack_runner(ctx: Context) -> Runner:
    return Runner(ctx, SlackHandler(ctx))


def platform_runner(ctx: Context) -> Runner:
    return Runner(ctx, PlatformHandler(ctx))


class ManualClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FaultyDatabase(Database):
    """A Database whose next ``fail_writes`` write transactions fail at commit (nothing of them is kept)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.fail_writes = 0
        self.failed = 0

    @contextmanager
    def session(self) -> Iterator[Session]:
        with super().session() as s:
            yield s
            if self.fail_writes > 0:
                self.fail_writes -= 1
                self.failed += 1
                raise OperationalError("COMMIT", {}, Exception("injected: the database went away"))


class FakeSlack:
    def __init__(self) -> None:
        self.posts: list[tuple[str, str | None, str]] = []
        self.ephemerals: list[tuple[str, str, str]] = []
        self.reactions: list[tuple[str, str, str]] = []
        self.uploads: list[tuple[str, int, str | None]] = []
        self.shared: list[dict[str, str]] = []
        self.n = 0

    def post(self, channel: str, message: Any, *, thread_ts: str | None = None, key: str = "", **_: Any) -> str:
        self.n += 1
        self.posts.append((channel, thread_ts, message.text))
        return f"1800000000.{self.n:06d}"

    def update(self, channel: str, ts: str, message: Any) -> None:
        pass

    def react(self, channel: str, ts: str, name: str) -> None:
        self.reactions.append((channel, ts, name))

    def unreact(self, channel: str, ts: str, name: str) -> None:
        self.reactions.append((channel, ts, "-" + name))

    def find_delivered(self, channel: str, key: str, *, thread_ts: str | None, since: float) -> str | None:
        return None

    def post_ephemeral(self, channel: str, user: str, text: str, *, thread_ts: str | None = None) -> None:
        self.ephemerals.append((channel, user, text))

    def thread_link(self, channel: str, ts: str) -> str:
        return f"https://slack.test/{channel}/{ts}"

    # the external upload flow: ``uploads`` holds (name, length, alt text), ``shared`` what was completed
    def upload_url(self, filename: str, length: int, alt_text: str | None = None) -> tuple[str, str]:
        self.uploads.append((filename, length, alt_text))
        return f"https://files.slack.test/upload/{len(self.uploads)}", f"F{len(self.uploads):08d}"

    def complete_upload(self, file_id: str, title: str, channel: str, thread_ts: str, comment: str) -> None:
        self.shared.append(
            {"id": file_id, "title": title, "channel": channel, "thread_ts": thread_ts, "comment": comment}
        )

    def find_file(
        self, channel: str, thread_ts: str, title: str, *, since: float, known: set[str], bot_user: str = ""
    ) -> str | None:
        found = [f["id"] for f in self.shared if f["title"] == title and f["id"] not in known]
        return found[0] if found else None


@dataclass
class FakeX:
    """A platform connector: ``fault`` (when set) is called before each send and may raise."""

    platform: Platform = Platform.X
    limits: Limits = field(default_factory=lambda: Limits(max_chars=10_000))
    sent: list[str] = field(default_factory=list)
    fault: Callable[[OutboundMessage], None] | None = None

    def send(self, message: OutboundMessage) -> SendResult:
        if self.fault is not None:
            self.fault(message)
        self.sent.append(message.text)
        return SendResult(remote_id=f"dm{len(self.sent)}", conversation=message.conversation)


class Roster:
    def name(self, user: str) -> str:
        return user

    def facts(self, channels: tuple[str, ...], *, admins: bool = False) -> Facts:
        """The one agent of these tests, an agent of every channel asked about."""
        return Facts(agents={c: frozenset({"UAGENT"}) for c in channels}, admins=None)

    def group(self, group: str) -> list[str]:
        return []

    def away(self, user: str) -> bool:
        return False


def make_ctx(url: str, *, max_attempts: int = 4) -> tuple[Context, ManualClock, FaultyDatabase, FakeSlack, FakeX]:
    db = FaultyDatabase(url)
    upgrade(db)
    clock, slack, x = ManualClock(), FakeSlack(), FakeX()
    file = FileConfig()
    desk = Desk(file=file, roster=Roster(), limits=lambda: {"x": x.limits}, link=slack.thread_link)  # type: ignore[arg-type]
    settings = Settings(
        dmbridge_channel=CHANNEL, dmbridge_max_attempts=max_attempts, dmbridge_claim_timeout=600.0, _env_file=None
    )  # type: ignore[call-arg]
    ctx = Context(
        settings=settings,
        toml=file,
        db=db,
        slack=slack,
        connectors={"x": x},  # type: ignore[arg-type,dict-item]
        desk=desk,
        clock=clock,
        bot_user_id=BOT,
    )
    return ctx, clock, db, slack, x


def message(ctx: Context, customer: str = "42", name: str = "Maria") -> InboundMessage:
    """The first X DM of ``customer``, sent now (conversation ``{customer}-7``)."""
    return InboundMessage(
        platform=Platform.X,
        account="acme",
        remote_id=f"in-{customer}",
        conversation=f"{customer}-7",
        customer=Customer(id=customer, name=name),
        text="hi",
        sent_at=datetime.fromtimestamp(ctx.clock(), UTC),
    )


def conversation(ctx: Context, customer: str = "42", thread_ts: str | None = None) -> Conversation:
    """A conversation with its Slack thread (as if its card had been posted)."""
    with ctx.db.session() as s:
        ingest_message(s, message(ctx, customer), CHANNEL, ctx.clock())
        conv = s.exec(select(Conversation).where(Conversation.remote_id == f"{customer}-7")).one()
        conv.thread_ts = thread_ts or f"1799999999.{int(customer):06d}"
        s.add(conv)
        s.execute(Outbox.__table__.delete())  # type: ignore[attr-defined]  # the card and profile rows
    return conv


def reply(ctx: Context, conv: Conversation, text: str, ts: str) -> None:
    """An agent's thread reply, relayed to the customer (queued in the outbox as the processor would)."""
    assert conv.thread_ts is not None
    with ctx.db.session() as s:
        thread_messages.apply(
            s,
            thread_messages.Relay(CHANNEL, conv.thread_ts, ts, "UAGENT", text),
            ctx.limits(),
            ctx.clock(),
            is_agent=True,
        )


def slack_event(ctx: Context, ts: str, text: str, thread_ts: str, user: str = "UAGENT") -> None:
    event = {"type": "message", "channel": CHANNEL, "ts": ts, "thread_ts": thread_ts, "user": user, "text": text}
    with ctx.db.session() as s:
        events.record_slack_event(
            s,
            dedupe_key=f"msg:{CHANNEL}:{ts}",
            event_id=None,
            kind="message",
            payload={"event": event},
            now=ctx.clock(),
        )


def rows(ctx: Context) -> list[Outbox]:
    with ctx.db.read() as s:
        return list(s.exec(select(Outbox).order_by(Outbox.id)).all())  # type: ignore[arg-type]


@contextmanager
def statements(engine: Any) -> Iterator[collections.Counter[str]]:
    """Count the SQL statements run on ``engine`` meanwhile, by verb and table (``SELECT conversation``)."""
    seen: collections.Counter[str] = collections.Counter()

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        words = statement.split()
        if words[0] == "SELECT" and "FROM" in words:
            table = words[words.index("FROM") + 1]
        else:
            table = words[2] if len(words) > 2 else ""
        seen[f"{words[0]} {table}".strip()] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)
