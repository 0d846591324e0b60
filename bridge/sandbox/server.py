"""A uvicorn server on a free loopback port, in a thread; and a polling wait for tests and the demo."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import uvicorn

T = TypeVar("T")
GRACE_SECONDS = 5.0  # how long a stop waits for requests still being answered, before it cancels them


class _QuickServer(uvicorn.Server):
    """uvicorn's server, stopping as soon as it is asked to. uvicorn's own loop looks for the exit flag every
    0.1 s and its shutdown sleeps another 0.1 s before waiting for connections: ~0.17 s per stop, which a test
    run stopping thousands of emulators pays in minutes. Here a stop wakes the loop at once and the shutdown
    waits only while a connection is still answering (graceful, as uvicorn's, with the lifespan off)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    def wake(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(wake.set)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        deadline = time.monotonic() + GRACE_SECONDS
        while self.server_state.connections or self.server_state.tasks:
            if self.force_exit or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.005)
        for task in list(self.server_state.tasks):  # still answering (a hang a test injected): cut it short
            task.cancel()
        deadline = time.monotonic() + 1
        while self.server_state.tasks and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        # no server.wait_closed(): from Python 3.12 it waits for every connection, a kept-alive one included
        # (uvicorn no longer calls it either); the loop ends with this coroutine and closes what is left


class HttpServer:
    """Serves an ASGI app on ``127.0.0.1:<free port>`` from a daemon thread; over TLS when given a certificate
    and its key (PEM files)."""

    def __init__(self, app: Any, *, ssl_certfile: str | None = None, ssl_keyfile: str | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # accepted connections inherit this; without it a small response written in two pieces waits
        # ~40 ms for the client's delayed ACK on every reused (keep-alive) connection
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.scheme = "https" if ssl_certfile else "http"
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            timeout_keep_alive=30,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
        )
        self.server = _QuickServer(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        if not self.server.ready.wait(10) or not self.server.started:
            raise RuntimeError("HTTP server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        # a TLS connection the client keeps alive holds uvicorn's graceful shutdown for its whole timeout
        self.server.force_exit = self.scheme == "https"
        self.server.wake()
        self.thread.join(timeout=10)
        self.sock.close()
        if self.thread.is_alive():
            raise RuntimeError(f"the HTTP server on port {self.port} did not stop within 10 s")


def wait_for(check: Callable[[], T | None], timeout: float = 15.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; raise TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


class OffsetClock:
    """A clock the tests can move forward: real time plus ``offset`` seconds (the emulators keep real time)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset
