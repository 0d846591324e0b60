"""Open-loop HTTP load: ``python -m bench.loadgen REQUESTS.json URL RATE MAX_IN_FLIGHT``.

Runs in its own process so it never competes with what it measures.
Requests are sent at fixed times (``RATE`` per second) whatever the
answers do; each latency is measured from the request's *scheduled* time,
so a slow server cannot hide its backlog (no coordinated omission). A
request that finds ``MAX_IN_FLIGHT`` already outstanding waits for a slot,
and that wait counts. Requests go out over persistent HTTP/1.1
connections, each written in one ``send`` with TCP_NODELAY. Prints JSON.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from urllib.parse import urlsplit


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    if length:
        await reader.readexactly(length)
    return status


async def run(requests: list[dict[str, object]], url: str, rate: float, in_flight: int) -> dict[str, object]:
    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/"
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(in_flight):
        reader, writer = await asyncio.open_connection(host, port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pool.put_nowait((reader, writer))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2

    async def one(i: int, req: dict[str, object]) -> None:
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - loop.time()))
        body = str(req["body"]).encode()
        headers = dict(req["headers"])  # type: ignore[call-overload]
        raw = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        ).encode() + body
        reader, writer = await pool.get()
        try:
            writer.write(raw)
            status = await _read_response(reader)
        finally:
            pool.put_nowait((reader, writer))
        latencies.append((loop.time() - scheduled) * 1000)
        statuses[status] = statuses.get(status, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))
    elapsed = time.perf_counter() - t0
    while not pool.empty():
        _r, w = pool.get_nowait()
        w.close()
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))]

    return {
        "n": len(latencies),
        "p50": pct(0.50),
        "p99": pct(0.99),
        "max": latencies[-1],
        "statuses": statuses,
        "achieved_rate": len(latencies) / elapsed,
    }


def main() -> None:
    path, url, rate, in_flight = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    with open(path) as fh:
        requests = json.load(fh)
    print(json.dumps(asyncio.run(run(requests, url, rate, in_flight))))


if __name__ == "__main__":
    main()
