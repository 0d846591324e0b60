"""Slack's Socket Mode end, as the emulator plays it."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import httpx

APP_ID = "A0BRIDGE"


class SocketModeServer:
    """Slack's Socket Mode end: ``apps.connections.open`` hands out a ``ws://`` URL; envelopes go down the
    socket and count as delivered once the app acknowledges their ``envelope_id`` (within 3 s, as Slack)."""

    def __init__(self, app_token: str) -> None:
        self.app_token = app_token
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._conns: list[Any] = []
        self._acks: dict[str, tuple[threading.Event, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.port = 0

    def start(self) -> None:
        from websockets.sync.server import serve

        self._server = serve(self._handle, "127.0.0.1", 0)
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="slack-socket-mode", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link/?ticket={uuid.uuid4().hex}&app_id={APP_ID}"

    def connected(self) -> bool:
        with self._lock:
            return bool(self._conns)

    def _handle(self, conn: Any) -> None:
        conn.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "debug_info": {"host": "sandbox"},
                    "connection_info": {"app_id": APP_ID},
                }
            )
        )
        with self._lock:
            self._conns.append(conn)
        try:
            for message in conn:
                data = json.loads(message)
                with self._lock:
                    waiting = self._acks.get(str(data.get("envelope_id")))
                if waiting is not None:
                    waiting[1].update(data.get("payload") or {})
                    waiting[0].set()
        except Exception:  # a dropped connection ends this handler, as on Slack's side
            pass
        finally:
            with self._lock:
                self._conns.remove(conn)

    def send(self, kind: str, payload: dict[str, Any], retry_num: int = 0, timeout: float = 3.0) -> httpx.Response:
        """Push one envelope; a 200 with the ack's payload when acknowledged in time, else a 408."""
        envelope_id = str(uuid.uuid4())
        done, answer = threading.Event(), dict[str, Any]()
        with self._lock:
            self._acks[envelope_id] = (done, answer)
            conn = self._conns[-1]
        conn.send(
            json.dumps(
                {
                    "envelope_id": envelope_id,
                    "type": kind,
                    "payload": payload,
                    "accepts_response_payload": kind != "events_api",
                    "retry_attempt": retry_num,
                    "retry_reason": "timeout" if retry_num else "",
                }
            )
        )
        acked = done.wait(timeout)
        with self._lock:
            self._acks.pop(envelope_id, None)
        return httpx.Response(200 if acked else 408, json=answer)
