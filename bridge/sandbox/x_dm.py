"""The X emulator's direct-message endpoints: ``GET /2/dm_events`` and ``GET /2/dm_conversations/{id}/dm_events``
(newest first, ``max_results`` ≤ 100, opaque ``pagination_token``, ``dm_event.fields``, ``expansions=sender_id``
with ``user.fields``), ``POST /2/dm_conversations/{id}/messages`` and ``…/with/{participant}/messages`` (201 with
``dm_conversation_id``/``dm_event_id``; our own sends come back in ``dm_events`` like on X)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.sandbox.x_parts import (
    BRAND_ID,
    DEFAULT_USER_FIELDS,
    NOT_PERMITTED,
    Problem,
    conversation_id,
    decode_token,
    encode_token,
    fields_of,
    pick,
)

if TYPE_CHECKING:
    from bridge.sandbox.x import XEmulator

MAX_TEXT = 10_000
DEFAULT_EVENT_FIELDS = ("id", "event_type", "text")


def routes(emu: XEmulator) -> list[Route]:
    async def dm_events(request: Request) -> Response:
        return await _dm_events(emu, request)

    async def send_with(request: Request) -> Response:
        participant = request.path_params["participant"]
        raw = await request.body()
        return await emu._respond(
            request,
            "send",
            lambda: _send(emu, conversation_id(participant, BRAND_ID), raw),
            raw,
            "/2/dm_conversations/with/{participant_id}/messages",
        )

    async def send_in(request: Request) -> Response:
        conversation = request.path_params["conversation"]
        raw = await request.body()
        return await emu._respond(
            request,
            "send",
            lambda: _send(emu, conversation, raw),
            raw,
            "/2/dm_conversations/{dm_conversation_id}/messages",
        )

    return [
        Route("/2/dm_events", dm_events, methods=["GET"]),
        Route("/2/dm_conversations/{conversation}/dm_events", dm_events, methods=["GET"]),
        Route("/2/dm_conversations/with/{participant}/messages", send_with, methods=["POST"]),
        Route("/2/dm_conversations/{conversation}/messages", send_in, methods=["POST"]),
    ]


async def _dm_events(emu: XEmulator, request: Request) -> Response:
    q = request.query_params

    def produce() -> tuple[dict[str, Any], int]:
        try:
            max_results = int(q.get("max_results") or 100)
        except ValueError:
            max_results = 0
        if not 1 <= max_results <= 100:
            raise Problem(400, "Invalid Request", "The `max_results` query parameter value is not between 1 and 100")
        types = set((q.get("event_types") or "MessageCreate,ParticipantsJoin,ParticipantsLeave").split(","))
        ordered = [e for e in reversed(emu._events) if e["event_type"] in types]
        conversation = request.path_params.get("conversation")
        if conversation:
            ordered = [e for e in ordered if e["dm_conversation_id"] == conversation]
        token = q.get("pagination_token")
        if token:
            before = decode_token(token)
            if before is None:
                raise Problem(400, "Invalid Request", "The `pagination_token` query parameter value is invalid")
            ordered = [e for e in ordered if int(e["id"]) < before]
        page, rest = ordered[:max_results], ordered[max_results:]
        expansions = (q.get("expansions") or "").split(",")
        # an expansion brings the field it expands (sender_id is no dm_event.field in X's spec)
        fields = fields_of(q.get("dm_event.fields"), DEFAULT_EVENT_FIELDS) | (
            {"sender_id"} if "sender_id" in expansions else set()
        )
        body: dict[str, Any] = {"data": [pick(e, fields) for e in page], "meta": {"result_count": len(page)}}
        if not page:
            body.pop("data")
        if rest:
            body["meta"]["next_token"] = encode_token(int(page[-1]["id"]))
        if "attachments.media_keys" in expansions:
            mfields = fields_of(q.get("media.fields"), ("media_key", "type"))
            keys = dict.fromkeys(k for e in page for k in (e.get("attachments") or {}).get("media_keys", []))
            media = [pick(emu.media.objects[k], mfields) for k in keys if k in emu.media.objects]
            if media:
                body.setdefault("includes", {})["media"] = media
        if "sender_id" in expansions:
            ufields = fields_of(q.get("user.fields"), DEFAULT_USER_FIELDS)
            senders = dict.fromkeys(e["sender_id"] for e in page)
            users = [pick(emu.users[s], ufields) for s in senders if s in emu.users]
            if users:
                body.setdefault("includes", {})["users"] = users
        return body, 200

    endpoint = "/2/dm_conversations/{id}/dm_events" if request.path_params.get("conversation") else ""
    return await emu._respond(request, "read", produce, endpoint=endpoint)


def _send(emu: XEmulator, conversation: str, raw: bytes) -> tuple[dict[str, Any], int]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        raise Problem(400, "Invalid Request", "The request body is not valid JSON") from exc
    if not isinstance(body, dict) or set(body) - {"text", "attachments"}:
        raise Problem(400, "Invalid Request", "The request body has unknown fields")
    text = body.get("text")
    if "text" not in body and "attachments" not in body:
        raise Problem(400, "Invalid Request", "One of text or attachments is required")
    if "text" in body and (not isinstance(text, str) or not text):
        raise Problem(400, "Invalid Request", "`text` must be a string of at least 1 character")
    attachments = body.get("attachments", [])
    if (
        not isinstance(attachments, list)
        or len(attachments) > 1
        or ("attachments" in body and not attachments)
        or not all(isinstance(a, dict) and set(a) == {"media_id"} for a in attachments)
        or not all(isinstance(a["media_id"], str) and a["media_id"].isdigit() for a in attachments)
    ):
        raise Problem(400, "Invalid Request", "`attachments` must be one object with a numeric `media_id`")
    if isinstance(text, str) and len(text) > MAX_TEXT:
        raise Problem(400, "Invalid Request", f"text must be at most {MAX_TEXT} characters")
    parts = conversation.split("-")
    if len(parts) != 2 or BRAND_ID not in parts:
        raise Problem(404, "Not Found Error", "Could not find the conversation")
    other = parts[0] if parts[1] == BRAND_ID else parts[1]
    if other not in emu.users:
        raise Problem(404, "Not Found Error", "Could not find the recipient")
    if not emu.accepts_dms.get(other, True):
        raise Problem(403, "Forbidden", NOT_PERMITTED)
    uploads = [emu.media.usable(a["media_id"], BRAND_ID, emu.clock()) for a in attachments]
    media = [(u.data(), u.media_type) for u in uploads]
    media_id = uploads[0].id if uploads else ""
    event_id = emu._append(
        BRAND_ID, conversation, text or "", via_api=True, media=media[0] if media else None, media_id=media_id
    )
    return {"data": {"dm_conversation_id": conversation, "dm_event_id": event_id}}, 201
