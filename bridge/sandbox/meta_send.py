"""The Meta emulator's Send API: ``POST /me/messages`` and ``POST /{page-id}/messages``, with Meta's rules
(the 24-hour ``RESPONSE`` window, ``MESSAGE_TAG`` + ``HUMAN_AGENT`` within 7 days where the account is approved
for it, Messenger text ≤ 2,000 characters, Instagram ≤ 1,000 bytes) and Meta's error codes; every message sent
comes back to the webhook as our app's echo."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.sandbox.meta_pages import V

if TYPE_CHECKING:
    from bridge.sandbox.meta import MetaEmulator


def routes(emu: MetaEmulator) -> list[Route]:
    async def send(request: Request) -> Response:
        from bridge.sandbox.meta import _GraphError

        raw = await request.body()

        def produce() -> dict[str, Any]:
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            status = 200
            try:
                emu._fault("send")
                result = _deliver_send(emu, request, body)
            except _GraphError as exc:
                status = exc.status
                raise
            finally:
                emu.send_requests.append((body, status))
            return result

        return emu._answer(produce)

    return [
        Route(f"{V}/me/messages", send, methods=["POST"]),
        Route(f"{V}/{{page}}/messages", send, methods=["POST"]),
    ]


def _deliver_send(emu: MetaEmulator, request: Request, body: Any) -> dict[str, Any]:
    from bridge.sandbox.meta import DAY, INSTAGRAM, MESSENGER, _GraphError

    account = emu._account_for(request)
    page = request.path_params.get("page")
    if page is not None and page != account.id and not emu._linked(account, page):
        raise _GraphError(400, 100, "(#100) The page id does not match the access token")
    if not isinstance(body, dict) or not isinstance(body.get("recipient"), dict):
        raise _GraphError(400, 100, "(#100) param recipient must be non-empty.")
    customer = emu.customers.get(str(body["recipient"].get("id", "")))
    if customer is None or not emu._owns(account, customer):
        raise _GraphError(400, 100, "(#100) No matching user found", 2018001)
    text = (body.get("message") or {}).get("text")
    if not isinstance(text, str) or not text:
        raise _GraphError(400, 100, "(#100) param message must be non-empty.")
    platform = emu.accounts[customer.account].platform
    if platform == MESSENGER and len(text) > 2000:
        raise _GraphError(400, 100, "(#100) Length of param message[text] must be less than or equal to 2000")
    if platform == INSTAGRAM and len(text.encode()) > 1000:
        raise _GraphError(400, 100, "(#100) Length of param message[text] must be at most 1000 bytes")
    if not customer.available:
        raise _GraphError(400, 551, "This person isn't available right now.", 1545041)
    age = time.time() - (customer.last_message_at or float("-inf"))
    kind, tag = body.get("messaging_type"), body.get("tag")
    if kind == "RESPONSE":
        if age >= DAY:
            raise _GraphError(400, 10, "(#10) This message is sent outside of allowed window.", 2018278)
    elif kind == "MESSAGE_TAG" and tag == "HUMAN_AGENT":
        if not emu.accounts[customer.account].human_agent:
            raise _GraphError(400, 10, "(#10) Application does not have the capability to make this API call.")
        if age >= 7 * DAY:
            raise _GraphError(400, 10, "(#10) This message is sent outside of allowed window.", 2018278)
    else:
        raise _GraphError(400, 100, "(#100) messaging_type must be RESPONSE or MESSAGE_TAG with a tag")
    mid = emu._mid()
    customer.log.append(
        {
            "from": "page",
            "via": "api",
            "mid": mid,
            "text": text,
            "at": time.time(),
            "messaging_type": kind,
            "tag": tag,
        }
    )
    emu._echoes.put((customer.account, echo(customer.account, customer.id, mid, text, emu.app_id)))
    return {"recipient_id": customer.id, "message_id": mid}


def echo(account: str, user_id: str, mid: str, text: str, app_id: str) -> dict[str, Any]:
    """The echo Meta delivers of a message the page sent (through our app, or ``app_id``'s)."""
    return {
        "sender": {"id": account},
        "recipient": {"id": user_id},
        "timestamp": int(time.time() * 1000),
        "message": {"mid": mid, "text": text, "is_echo": True, "app_id": int(app_id)},
    }
