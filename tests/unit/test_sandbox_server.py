"""The emulators' server (bridge/sandbox/server.py) stops at once when idle, and stops (cutting the answer
short) while a request hangs, as the fault injection makes some do."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bridge.sandbox.server import HttpServer, wait_for

pytestmark = pytest.mark.scenario  # a server, threads and a 5 s grace period: not the fast tier


def test_a_request_that_hangs_does_not_keep_the_server_from_stopping() -> None:
    entered = threading.Event()

    async def hang(_request: Request) -> Response:
        entered.set()
        await asyncio.sleep(600)
        return PlainTextResponse("late")

    async def ok(_request: Request) -> Response:
        return PlainTextResponse("ok")

    server = HttpServer(Starlette(routes=[Route("/hang", hang), Route("/ok", ok)]))
    server.start()
    with httpx.Client() as client:
        assert client.get(server.url + "/ok").text == "ok"  # a kept-alive connection too
        outcome: list[object] = []

        def call() -> None:
            try:
                outcome.append(httpx.get(server.url + "/hang", timeout=60).status_code)
            except httpx.HTTPError as exc:
                outcome.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        assert entered.wait(10)
        server.stop()  # raises if the server thread is still alive after its join
        caller.join(30)
    assert not server.thread.is_alive() and outcome  # the hanging call was answered or cut
    wait_for(lambda: not caller.is_alive(), what="the caller to finish")
