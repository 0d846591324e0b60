"""The Meta emulator's Send API: ``POST /me/messages`` and ``POST /{page-id}/messages``, with Meta's rules
(the 24-hour ``RESPONSE`` window, ``MESSAGE_TAG`` + ``HUMAN_AGENT`` within 7 days where the account is approved
for it, Messenger text ≤ 2,000 characters, Instagram ≤ 1,000 bytes) and Meta's error codes; every message sent
comes back to the webhook as our app's echo.

Attachments: a message has ``text`` or ``attachment``, not both. Uploaded in the same call (multipart: the
fields as JSON strings and the bytes as ``filedata``, the Attachment Upload API's "upload from a server"), with
the type among ``image``/``video``/``audio``/``file`` and the sizes and formats of ``ATTACHMENT_RULES``
(Messenger 25 MB each; Instagram images png/jpeg/gif 8 MB, video/audio/pdf 25 MB). The customer's log keeps
the bytes' SHA-256, name, type and size."""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.sandbox.meta_pages import V

if TYPE_CHECKING:
    from bridge.sandbox.meta import MetaEmulator


def routes(emu: MetaEmulator) -> list[Route]:
    async def send(request: Request) -> Response:
        from bridge.sandbox.meta import _GraphError

        upload: tuple[str, str, bytes] | None = None
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form(max_part_size=1024 * 1024)
            fields, filedata = _form_fields(form), form.get("filedata")
            if isinstance(filedata, UploadFile):
                upload = (filedata.filename or "", filedata.content_type or "", await filedata.read())
            raw = json.dumps(fields).encode()
        else:
            raw = await request.body()

        def produce() -> dict[str, Any]:
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            status = 200
            try:
                emu._fault("send")
                result = _deliver_send(emu, request, body, upload)
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


def _form_fields(form: Any) -> dict[str, Any]:
    """A multipart Send API call's fields: each a JSON string (``recipient``, ``message``) or plain text."""
    fields: dict[str, Any] = {}
    for name, value in form.multi_items():
        if isinstance(value, str) and name != "filedata":
            try:
                fields[name] = json.loads(value) if name in ("recipient", "message") else value
            except ValueError:
                fields[name] = None  # the field is there but unreadable: refused below as Meta would
    return fields


MB = 1_000_000
# platform → kind → (formats by MIME type, or None for any; the most bytes)
ATTACHMENT_RULES: dict[str, dict[str, tuple[tuple[str, ...] | None, int]]] = {
    "messenger": {k: (None, 25 * MB) for k in ("image", "video", "audio", "file")},
    "instagram": {
        "image": (("image/png", "image/jpeg", "image/gif"), 8 * MB),
        "video": (("video/mp4", "video/ogg", "video/x-msvideo", "video/quicktime", "video/webm"), 25 * MB),
        "audio": (("audio/aac", "audio/mp4", "audio/x-m4a", "audio/wav", "audio/x-wav", "audio/vnd.wave"), 25 * MB),
        "file": (("application/pdf",), 25 * MB),
    },
}


def _attachment(platform: str, message: dict[str, Any], upload: tuple[str, str, bytes] | None) -> dict[str, Any]:
    """The checked attachment of ``message``: what the customer receives (name, type, size, SHA-256)."""
    from bridge.sandbox.meta import _GraphError

    attachment = message.get("attachment")
    if not isinstance(attachment, dict) or set(attachment) - {"type", "payload"}:
        raise _GraphError(400, 100, "(#100) param message[attachment] must be an object with type and payload")
    kind, payload = attachment.get("type"), attachment.get("payload")
    rules = ATTACHMENT_RULES[platform]
    if kind not in rules or not isinstance(payload, dict):
        raise _GraphError(400, 100, "(#100) param message[attachment][type] must be one of {image, video, audio, file}")
    if upload is None:
        raise _GraphError(400, 100, "(#100) Upload attachment failure.")  # the emulator takes uploads only
    name, content_type, data = upload
    formats, cap = rules[kind]
    if formats is not None and content_type not in formats:
        raise _GraphError(400, 100, f"(#100) {content_type or 'this'} is not a supported {kind} format")
    if len(data) > cap:
        raise _GraphError(400, 100, f"(#100) The {kind} is larger than the {cap // MB} MB limit")
    return {"name": name, "type": kind, "content_type": content_type, "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}  # fmt: skip


def _deliver_send(
    emu: MetaEmulator, request: Request, body: Any, upload: tuple[str, str, bytes] | None = None
) -> dict[str, Any]:
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
    message: dict[str, Any] = body["message"] if isinstance(body.get("message"), dict) else {}
    platform = emu.accounts[customer.account].platform
    if "text" in message and "attachment" in message:
        raise _GraphError(400, 100, "(#100) Only one of text or attachment can be specified")
    sent = _attachment(platform, message, upload) if "attachment" in message else None
    text = f"[{sent['type']} {sent['name']}]" if sent is not None else message.get("text")
    if not isinstance(text, str) or not text:
        raise _GraphError(400, 100, "(#100) param message must be non-empty.")
    if platform == MESSENGER and sent is None and len(text) > 2000:
        raise _GraphError(400, 100, "(#100) Length of param message[text] must be less than or equal to 2000")
    if platform == INSTAGRAM and sent is None and len(text.encode()) > 1000:
        raise _GraphError(400, 100, "(#100) Length of param message[text] must be at most 1000 bytes")
    offered = _quick_replies(message) if sent is None else None
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
            "file": sent,
            "quick_replies": offered,
        }
    )
    echoed = echo(customer.account, customer.id, mid, text, emu.app_id)
    if sent is not None:  # Meta echoes an attachment as one, with a link to its copy
        del echoed["message"]["text"]
        link = f"https://cdn.sandbox.invalid/{mid}/{sent['name']}"
        echoed["message"]["attachments"] = [{"type": sent["type"], "payload": {"url": link}}]
    emu._echoes.put((customer.account, echoed))
    return {"recipient_id": customer.id, "message_id": mid}


def _quick_replies(message: dict[str, Any]) -> list[dict[str, str]] | None:
    """``message.quick_replies`` as Meta checks them: at most 13, each ``content_type`` text with a non-empty
    ``title`` of at most 20 characters and a ``payload`` of at most 1,000."""
    from bridge.sandbox.meta import _GraphError

    if "quick_replies" not in message:
        return None
    items = message["quick_replies"]
    if not isinstance(items, list) or not 0 < len(items) <= 13:
        raise _GraphError(400, 100, "(#100) param message[quick_replies] must be an array of 1 to 13 quick replies")
    for item in items:
        if not isinstance(item, dict) or item.get("content_type") not in ("text", "user_phone_number", "user_email"):
            raise _GraphError(400, 100, "(#100) param message[quick_replies][content_type] is not valid")
        if item["content_type"] != "text":
            continue
        title, payload = item.get("title"), item.get("payload")
        if not isinstance(title, str) or not title or len(title) > 20:
            raise _GraphError(400, 100, "(#100) Quick reply title must be non-empty and at most 20 characters")
        if not isinstance(payload, str | int) or not str(payload) or len(str(payload)) > 1000:
            raise _GraphError(400, 100, "(#100) Quick reply payload is required and at most 1000 characters")
    return [{"title": str(i.get("title", "")), "payload": str(i.get("payload", ""))} for i in items]


def echo(account: str, user_id: str, mid: str, text: str, app_id: str) -> dict[str, Any]:
    """The echo Meta delivers of a message the page sent (through our app, or ``app_id``'s)."""
    return {
        "sender": {"id": account},
        "recipient": {"id": user_id},
        "timestamp": int(time.time() * 1000),
        "message": {"mid": mid, "text": text, "is_echo": True, "app_id": int(app_id)},
    }
