"""EdgeFirst (bridge/loops.py): the loops give way while a request is being answered, never for longer than
``max_wait``, and never at all when none is."""

from __future__ import annotations

import threading
import time

from bridge.loops import EdgeFirst, Loop
from bridge.sandbox.server import wait_for


def test_give_way_returns_at_once_without_requests() -> None:
    edge = EdgeFirst(max_wait=30)
    started = time.monotonic()
    edge.give_way()
    assert time.monotonic() - started < 5 and not edge.busy


def test_a_step_waits_for_the_request_in_flight_to_be_answered() -> None:
    edge = EdgeFirst(max_wait=30)
    waited = threading.Event()
    with edge.request():
        assert edge.busy
        waiter = threading.Thread(target=lambda: (edge.give_way(), waited.set()))
        waiter.start()
        wait_for(lambda: edge.waiting == 1, what="the loop giving way")
        assert not waited.is_set()  # still answering: the loop has not gone on
    assert waited.wait(5)  # answered: it goes on at once, long before max_wait
    waiter.join()
    assert not edge.busy


def test_under_a_steady_stream_a_step_waits_at_most_max_wait() -> None:
    edge = EdgeFirst(max_wait=0.05)
    with edge.request():
        started = time.monotonic()
        edge.give_way()
        assert 0.04 <= time.monotonic() - started < 5


def test_nested_and_concurrent_requests_count_until_the_last_is_answered() -> None:
    edge = EdgeFirst(max_wait=30)
    with edge.request():
        with edge.request():
            pass
        assert edge.busy
    assert not edge.busy


def test_a_loop_gives_way_before_each_step() -> None:
    edge, stop, wake = EdgeFirst(max_wait=30), threading.Event(), threading.Event()
    stepped = threading.Event()

    def step() -> float:
        stepped.set()
        stop.set()
        return 0.0

    loop = Loop("test", step, wake, stop, edge.give_way)
    with edge.request():
        loop.start()
        wait_for(lambda: edge.waiting == 1, what="the loop giving way")
        assert not stepped.is_set()
    assert stepped.wait(5)
    loop.join(5)


def test_after_a_full_wait_a_loop_runs_freely_for_a_while() -> None:
    now = [100.0]
    edge = EdgeFirst(max_wait=1.0, free=1.0, clock=lambda: now[0])
    with edge.request():  # a stream that never pauses (a flood of requests, forged ones too)
        started = time.monotonic()
        edge.give_way()  # waits its whole max_wait
        assert time.monotonic() - started >= 0.9
        now[0] += 0.5  # within the free window: no wait at all
        started = time.monotonic()
        edge.give_way()
        assert edge.waiting == 0 and time.monotonic() - started < 0.9
        now[0] += 0.6  # the window is over: it gives way again
        started = time.monotonic()
        edge.give_way()
        assert time.monotonic() - started >= 0.9
