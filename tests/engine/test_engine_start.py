"""Every process learns its connectors' identity, poll leader or not; a connector not started yet is a short
wait for its deliveries, not a refused credential.

Behind a load balancer any process answers X's webhooks and sends replies, while one process polls: a
process that left starting to the poll leader answered webhooks 503 and paused its X deliveries for good."""

from __future__ import annotations

from dataclasses import dataclass, field

from bridge.domain import Batch, Platform
from bridge.errors import AuthFailed, NotStarted
from bridge.pollers import Poller
from bridge.store.locks import ProcessLock
from tests.engine.fakes import conversation, make_ctx, platform_runner, reply, rows


@dataclass
class Polled:
    """A polled connector that counts its starts and polls."""

    platform: Platform = Platform.X
    name: str = "x"
    starts: int = 0
    polls: int = 0
    identity: str | None = None
    cursors: list[str | None] = field(default_factory=list)

    @property
    def account(self) -> str:
        if self.identity is None:
            raise NotStarted("X connector not started")
        return self.identity

    refuse: bool = False

    def start(self) -> None:
        self.starts += 1
        if self.refuse:
            raise AuthFailed("X refused the credential (401)")
        self.identity = "acme"

    def poll(self, cursor: str | None) -> Batch:
        self.polls += 1
        return Batch(messages=(), cursor=cursor)


def test_a_process_that_does_not_hold_the_poll_lock_still_starts_its_connector(db_url: str) -> None:
    ctx, _clock, db, _slack, _x = make_ctx(db_url)
    leader = ProcessLock(db, "poll:x")
    assert leader.try_acquire()  # another process polls this account
    polled = Polled()
    poller = Poller(ctx, polled, ProcessLock(db, "poll:x"))  # type: ignore[arg-type]
    assert poller.poll_once() == 0
    assert (polled.starts, polled.polls, polled.account) == (1, 0, "acme")
    assert ctx.health["x"] == "ok"  # started: this process's X side is well, though another polls
    poller.poll_once()
    assert (polled.starts, polled.polls) == (1, 0)  # started once; still not the poller
    leader.release()
    poller.poll_once()
    assert (polled.starts, polled.polls) == (1, 1)


def test_a_delivery_whose_connector_is_not_started_waits_without_pausing_the_credential(db_url: str) -> None:
    ctx, clock, _db, _slack, x = make_ctx(db_url)
    conv = conversation(ctx)
    reply(ctx, conv, "hello", "1800000001.000001")

    def starting(_: object) -> None:
        raise NotStarted("X connector not started")

    x.fault = starting
    platform_runner(ctx).step()
    [row] = [r for r in rows(ctx) if r.target == "platform"]
    assert (row.state, row.uncertain, row.last_error) == ("pending", False, "X connector not started")
    assert ctx.auth_state("x").failures == 0 and ctx.health.get("x") != "X connector not started"
    assert not [r for r in rows(ctx) if r.kind == "channel_notice"]  # no "credential refused" notice
    x.fault = None
    clock.advance(row.next_attempt_at - clock() + 0.001)
    platform_runner(ctx).step()
    assert x.sent == ["hello"]
    assert [r.state for r in rows(ctx) if r.target == "platform"] == ["sent"]


def test_a_refused_start_is_said_once_by_the_poller_and_cleared_by_the_next_start(db_url: str) -> None:
    ctx, clock, db, _slack, _x = make_ctx(db_url)
    leader_ctx, *_ = make_ctx(db_url)  # another process on the same database
    refused_here, refused_there = Polled(refuse=True), Polled(refuse=True)
    leader = Poller(leader_ctx, refused_there, ProcessLock(db, "poll:x"))  # type: ignore[arg-type]
    other = Poller(ctx, refused_here, ProcessLock(db, "poll:x"))  # type: ignore[arg-type]
    assert leader.poll_once() == 0 and other.poll_once() == 0
    notices = [r for r in rows(ctx) if r.kind == "channel_notice"]
    assert len(notices) == 1 and "not being fetched" in notices[0].payload  # the lock holder's, not one each
    assert ctx.health["x"] == "X refused the credential (401)"
    refused_here.refuse = False  # the credential works again (a transient 401 at boot)
    clock.advance(ctx.auth_state("x").paused_until - clock() + 1)
    other.poll_once()
    assert ctx.health["x"] == "ok" and ctx.auth_state("x").failures == 0
