"""The attachments ceiling: what dmbridge does for a customer's photo, with its own clients and no store.

``python -m bench.files_ceiling SLACK_API_URL META_APP_SECRET CAP_MB`` serves, on uvicorn/Starlette as
``dmbridge serve`` does, ``POST /webhooks/meta`` (the signature checked, the body parsed, each attachment queued
in memory, 200 at once) and ``POST /slack/events`` (Slack's echoes of the file messages, checked and
acknowledged). One worker copies each queued file as the bridge's ``Copier`` does, with its pieces: the link
streamed with the Copier's httpx client into the same spool (``bridge.slack.files.fetch``), then
``files.getUploadURLExternal`` through ``SlackApi``, the bytes POSTed (``send_bytes``), and
``files.completeUploadExternal`` in the customer's thread. No database, no outbox, no event processor.

It runs in its own process, like ``dmbridge serve`` (``SSL_CERT_FILE`` names the CDN's CA). Protocol: prints
``ready <base URL>``; reads one JSON line, customer id → thread ts; serves until stdin closes.
"""

from __future__ import annotations

import json
import queue
import sys
import threading

from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.sandbox.harness import BOT_TOKEN, CHANNEL, SIGNING_SECRET
from bridge.sandbox.server import HttpServer
from bridge.slack.api import SlackApi, make_client
from bridge.slack.files import Copier, alt_text, comment, fetch, send_bytes
from connectors import signing

Job = tuple[str, str, str, str]  # sender id, link, kind, name


def app(secret: str, jobs: queue.Queue[Job]) -> Starlette:
    verifier = SignatureVerifier(SIGNING_SECRET)

    async def meta(request: Request) -> Response:
        body = await request.body()
        if not signing.same(signing.hex_sha256(secret, body), request.headers.get("x-hub-signature-256")):
            return Response(status_code=401)
        for entry in json.loads(body).get("entry") or []:
            for item in entry.get("messaging") or []:
                for att in (item.get("message") or {}).get("attachments") or []:
                    url = str(att["payload"]["url"])
                    name = url.split("?", 1)[0].rsplit("/", 1)[-1]
                    jobs.put((str(item["sender"]["id"]), url, str(att.get("type") or "file"), name))
        return Response(status_code=200)

    async def events(request: Request) -> Response:
        body = await request.body()
        ok = verifier.is_valid_request(body, dict(request.headers))
        return Response(status_code=200 if ok else 401)

    return Starlette(
        routes=[
            Route("/webhooks/meta", meta, methods=["POST"]),
            Route("/slack/events", events, methods=["POST"]),
        ]
    )


def work(copier: Copier, jobs: queue.Queue[Job], threads: dict[str, str]) -> None:
    while True:
        sender, url, kind, name = jobs.get()
        who = f"Customer {sender} (Messenger)"
        spool, size = fetch(copier.fetcher, url, cap=copier.cap, allowed=copier.allowed, attempt=0)
        with spool:
            upload_url, file_id = copier.slack.upload_url(name, size, alt_text(who, kind, name))
            send_bytes(copier.poster, upload_url, spool, size)
        copier.slack.complete_upload(file_id, name, CHANNEL, threads[sender], comment(who, kind, name))


def main() -> None:
    sys.setswitchinterval(0.0005)  # as dmbridge serve does
    slack_url, secret, cap_mb = sys.argv[1], sys.argv[2], float(sys.argv[3])
    copier = Copier(SlackApi(make_client(BOT_TOKEN, slack_url)), cap_mb=cap_mb, timeout=15, private_ok=True)
    jobs: queue.Queue[Job] = queue.Queue()
    server = HttpServer(app(secret, jobs))
    server.start()
    print(f"ready {server.url}", flush=True)
    threads: dict[str, str] = json.loads(sys.stdin.readline())
    threading.Thread(target=work, args=(copier, jobs, threads), daemon=True).start()
    sys.stdin.read()  # until the benchmark closes stdin
    server.stop()
    copier.close()


if __name__ == "__main__":
    main()
