"""What one Slack Web API call costs the bridge: slack_sdk's own WebClient (a new connection, and over https a
new TLS handshake, per call) against the bridge's ``PooledWebClient`` (kept-alive connections).

``python -m bench.slack_calls [--calls 300]``. The Slack emulator runs in this process, over https with the
sandbox's certificate and over plain http; each client runs in its own process (``--client``), which makes
``--calls`` ``chat.postMessage`` calls one after another and reports its wall time and its own CPU time. Both
clients are made the way ``bridge.slack.api.make_client`` makes them (no retry handlers, the shared TLS context).
The emulator is on this host, so the round trips a handshake costs against slack.com (one or two per call over
the internet) are not in these figures: only the CPU and the local connection set-up are.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from slack_sdk import WebClient

from bridge import tls
from bridge.sandbox.cdn import certificates
from bridge.sandbox.slack import BOT_USER, SlackEmulator
from bridge.slack.api import SlackApi, make_client
from bridge.slack.blocks import SlackMessage

TOKEN = "xoxb-bench-calls"
CHANNEL = "C0BENCH"


def _client(kind: str, url: str, calls: int) -> None:
    """In the child process: ``calls`` posts through ``kind`` (``urllib`` or ``pooled``); prints JSON."""
    if kind == "urllib":
        client = WebClient(token=TOKEN, base_url=url, timeout=15, retry_handlers=[], ssl=tls.system())
    else:
        client = make_client(TOKEN, url)
    api = SlackApi(client)
    api.post(CHANNEL, SlackMessage("warm-up", []))
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(calls):
        api.post(CHANNEL, SlackMessage(f"message {i}", []))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    api.close()
    print(json.dumps({"wall": wall, "cpu": cpu}))


def measure(calls: int) -> list[tuple[str, str]]:
    ca = str(certificates() / "ca.pem")
    rows: list[tuple[str, str]] = []
    for scheme_tls in (True, False):
        slack = SlackEmulator(signing_secret="s", bot_token=TOKEN, echo_bot_messages=False, tls=scheme_tls)
        slack.add_channel(CHANNEL, "bench", members=[BOT_USER])
        slack.start()
        try:
            figures: dict[str, dict[str, float]] = {}
            for kind in ("urllib", "pooled"):
                out = subprocess.run(
                    [sys.executable, "-m", "bench.slack_calls", "--client", kind, slack.api_url, str(calls)],
                    env=dict(os.environ, SSL_CERT_FILE=ca),
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                figures[kind] = json.loads(out.strip().splitlines()[-1])
        finally:
            slack.stop()
        scheme = "https" if scheme_tls else "http"
        for kind, label in (("urllib", "slack_sdk WebClient (urllib)"), ("pooled", "PooledWebClient (kept alive)")):
            f = figures[kind]
            rows.append(
                (
                    f"Slack chat.postMessage over {scheme}, {calls} in a row, {label}",
                    f"{calls / f['wall']:.0f} calls/s; {1000 * f['cpu'] / calls:.2f} ms client CPU/call",
                )
            )
        base, pooled = figures["urllib"], figures["pooled"]
        rows.append(
            (
                f"  pooled ÷ urllib over {scheme}",
                f"{base['wall'] / pooled['wall']:.2f}× the calls/s; "
                f"{pooled['cpu'] / base['cpu']:.2f}× the CPU per call",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--client", nargs=3, metavar=("KIND", "URL", "CALLS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        kind, url, calls = args.client
        _client(kind, url, int(calls))
        return
    for name, result in measure(args.calls):
        print(f"{name:<90} {result}")


if __name__ == "__main__":
    main()
