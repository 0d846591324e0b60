"""The ceiling: the bridge's HTTP traffic, with the bridge's own clients and server stack, and no persistence.

``python -m bench.ceiling inbound SLACK_API_URL X_API_URL N`` polls X with
``XConnector`` and posts each conversation's header card and each message
with ``SlackApi`` (slack_sdk's WebClient), one call after another as the
bridge's delivery loop does, while a uvicorn/Starlette endpoint verifies and
acknowledges the events Slack sends back for those posts.

``… relay SLACK_API_URL X_API_URL N`` receives signed agent replies on the
same kind of endpoint, keeps them in memory, and a worker sends each with
``XConnector.send`` and adds the ✅ reaction.

It runs in its own process, like ``dmbridge serve``. Protocol: prints
``ready <events URL>``; waits for a line on stdin; does the work; prints JSON
``{"elapsed": seconds}``.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time

from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.domain import OutboundMessage, Platform
from bridge.sandbox.harness import BOT_TOKEN, CHANNEL, SIGNING_SECRET
from bridge.sandbox.server import HttpServer
from bridge.sandbox.x import BRAND_ID
from bridge.slack.api import SlackApi, make_client
from bridge.slack.blocks import CardView, customer_text, header_card
from connectors.x.connector import XConnector

CONSUMER = dict(
    consumer_key="sandbox-ck",
    consumer_secret="sandbox-cs",
    access_token="sandbox-at",
    access_token_secret="sandbox-ats",
)


def receiver(replies: queue.Queue[dict[str, str]]) -> HttpServer:
    verifier = SignatureVerifier(SIGNING_SECRET)

    async def events(request: Request) -> Response:
        body = await request.body()
        if not verifier.is_valid_request(body, dict(request.headers)):
            return Response(status_code=401)
        event = json.loads(body).get("event") or {}
        if event.get("type") == "message" and not event.get("bot_id") and event.get("thread_ts"):
            replies.put({"ts": event["ts"], "text": event.get("text", ""), "thread_ts": event["thread_ts"]})
        return Response(status_code=200)

    server = HttpServer(Starlette(routes=[Route("/slack/events", events, methods=["POST"])]))
    server.start()
    return server


def inbound(slack: SlackApi, x: XConnector, n: int, url: str) -> float:
    mark = x.poll(None).cursor
    print(f"ready {url}", flush=True)
    sys.stdin.readline()
    t0 = time.perf_counter()
    threads: dict[str, str] = {}
    done = 0
    while done < n:
        batch = x.poll(mark)
        mark = batch.cursor
        for m in batch.messages:
            if m.conversation not in threads:
                card = CardView(
                    number=len(threads) + 1,
                    platform_label="X",
                    customer_name=m.customer.name,
                    handle=m.customer.handle,
                    profile_url=m.customer.profile_url,
                    status="open",
                    assignee=None,
                )
                threads[m.conversation] = slack.post(CHANNEL, header_card(card), key=f"card:{m.conversation}")
            for i, part in enumerate(customer_text(m.text)):
                slack.post(
                    CHANNEL,
                    part,
                    thread_ts=threads[m.conversation],
                    username=m.customer.name,
                    icon_url=m.customer.avatar_url,
                    key=f"mirror:x:{m.account}:{m.remote_id}:{i}",
                )
            done += 1
    return time.perf_counter() - t0


def relay(
    slack: SlackApi,
    x: XConnector,
    n: int,
    url: str,
    replies: queue.Queue[dict[str, str]],
    conversations: dict[str, str],
) -> float:
    """``conversations``: thread ts → dm_conversation_id (told by the benchmark on stdin)."""
    print(f"ready {url}", flush=True)
    conversations.update(json.loads(sys.stdin.readline()))
    t0 = time.perf_counter()
    for _ in range(n):
        reply = replies.get()
        conv = conversations[reply["thread_ts"]]
        customer = next(p for p in conv.split("-") if p != BRAND_ID)
        x.send(
            OutboundMessage(
                platform=Platform.X, account=x.account, conversation=conv, recipient_id=customer, text=reply["text"]
            )
        )
        slack.react(CHANNEL, reply["ts"], "white_check_mark")
    return time.perf_counter() - t0


def main() -> None:
    sys.setswitchinterval(0.0005)  # as dmbridge serve does
    mode, slack_url, x_url, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    slack = SlackApi(make_client(BOT_TOKEN, slack_url))
    x = XConnector(base_url=x_url, **CONSUMER)
    x.start()
    replies: queue.Queue[dict[str, str]] = queue.Queue()
    server = receiver(replies)
    url = server.url + "/slack/events"
    elapsed = inbound(slack, x, n, url) if mode == "inbound" else relay(slack, x, n, url, replies, {})
    print(json.dumps({"elapsed": elapsed}), flush=True)
    threading.Thread(target=server.stop, daemon=True).start()


if __name__ == "__main__":
    main()
