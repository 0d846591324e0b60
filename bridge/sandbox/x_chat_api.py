"""The X emulator's Chat API over HTTP (see :mod:`bridge.sandbox.x_chat` for the world behind it).

``GET|POST /2/users/{id}/public_keys``, ``GET /2/users/{id}``, ``GET /2/chat/conversations``, ``GET
/2/chat/conversations/{id}/events``, ``POST /2/chat/conversations/{id}/keys`` and ``POST
/2/chat/conversations/{id}/messages``, with the shapes of X's OpenAPI (2.167) and its refusals (400 problem
documents for unknown or missing fields, malformed base64 or Thrift, unknown key versions, action signatures
that do not verify).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from chat_xdk import Chat
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.sandbox import xchat_thrift as thrift
from bridge.sandbox.x_chat import colon, iso, now_ms
from bridge.sandbox.x_parts import (
    BRAND_ID,
    DEFAULT_USER_FIELDS,
    Problem,
    decode_token,
    encode_token,
    fields_of,
    invalid,
    pick,
)

if TYPE_CHECKING:
    from bridge.sandbox.x import XEmulator

PATH_ID = r"^([0-9]{1,19}|[0-9]{1,19}-[0-9]{1,19}|g[0-9]{1,19})$"
KEY_FIELDS = {"public_key", "public_key_version", "signing_public_key", "identity_public_key_signature"}
REGISTRATION = {"public_key", "version", "generate_version"}
PUBLIC_KEY = {
    "identity_public_key_signature",
    "public_key",
    "public_key_fingerprint",
    "registration_method",
    "signing_public_key",
    "signing_public_key_signature",
}
KEYS_BODY = {
    "conversation_key_version",
    "conversation_participant_keys",
    "action_signatures",
    "base64_encoded_key_rotation",
}
ACTION = {"message_id", "encoded_message_event_detail", "message_event_signature", "signature_payload"}
PARTICIPANT_KEY = {"user_id", "encrypted_conversation_key", "public_key_version"}
SIGNATURE = {
    "signature",
    "public_key_version",
    "signature_version",
    "signing_public_key",
    "message_signing_key_info_list",
}
SIGNING_KEY_INFO = {"member_id", "public_key_version", "signing_public_key"}
MESSAGE_BODY = {"message_id", "encoded_message_create_event", "encoded_message_event_signature", "conversation_token"}


def routes(emu: XEmulator) -> list[Route]:
    async def user(request: Request) -> Response:
        user_id = str(request.path_params["id"])
        fields = fields_of(request.query_params.get("user.fields"), DEFAULT_USER_FIELDS)

        def produce() -> tuple[dict[str, Any], int]:
            if user_id not in emu.users:
                raise Problem(404, "Not Found Error", "Could not find user with id: [" + user_id + "]")
            return {"data": pick(emu.users[user_id], fields)}, 200

        return await emu._respond(request, "users", produce, endpoint="/2/users/{id}")

    async def public_keys(request: Request) -> Response:
        user_id = str(request.path_params["id"])
        if request.method == "POST":
            raw = await request.body()
            return await emu._respond(
                request, "send", lambda: _register(emu, user_id, raw), raw, "/2/users/{id}/public_keys"
            )
        requested = request.query_params.get("public_key.fields")
        shown = set((requested or "public_key,public_key_version").split(",")) & (KEY_FIELDS | {"juicebox_config"})

        def produce() -> tuple[dict[str, Any], int]:
            keys = emu.chat.public_keys.get(user_id, [])
            return {"data": [{k: v for k, v in key.items() if k in shown} for key in keys]}, 200

        return await emu._respond(request, "read", produce, endpoint="/2/users/{id}/public_keys")

    async def conversations(request: Request) -> Response:
        return await emu._respond(
            request, "read", lambda: _conversations(emu, request), endpoint="/2/chat/conversations"
        )

    async def events(request: Request) -> Response:
        return await emu._respond(
            request, "read", lambda: _events(emu, request), endpoint="/2/chat/conversations/{id}/events"
        )

    async def keys(request: Request) -> Response:
        raw = await request.body()
        conversation = request.path_params["id"]
        return await emu._respond(
            request, "send", lambda: _keys(emu, conversation, raw), raw, "/2/chat/conversations/{id}/keys"
        )

    async def messages(request: Request) -> Response:
        raw = await request.body()
        conversation = request.path_params["id"]
        return await emu._respond(
            request, "send", lambda: _message(emu, conversation, raw), raw, "/2/chat/conversations/{id}/messages"
        )

    return [
        Route("/2/users/{id:int}/public_keys", public_keys, methods=["GET", "POST"]),
        Route("/2/users/{id:int}", user, methods=["GET"]),
        Route("/2/chat/conversations", conversations, methods=["GET"]),
        Route("/2/chat/conversations/{id}/events", events, methods=["GET"]),
        Route("/2/chat/conversations/{id}/keys", keys, methods=["POST"]),
        Route("/2/chat/conversations/{id}/messages", messages, methods=["POST"]),
    ]


def _json(raw: bytes, allowed: set[str], required: set[str]) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, RecursionError) as exc:
        raise invalid("The request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise invalid(f"The request body has unknown fields: {', '.join(unknown)}")
    missing = sorted(k for k in required if body.get(k) in (None, "", []))
    if missing:
        raise invalid(f"The request body is missing {', '.join(missing)}")
    return body


def _check_signature(obj: Any) -> None:
    """An action's ``message_event_signature`` as X's schema has it: its fields only, digits for versions."""
    if not isinstance(obj, dict):
        return  # thrift.signature_from_json says what is missing
    infos = obj.get("message_signing_key_info_list", [])
    if (
        set(obj) - SIGNATURE
        or not isinstance(infos, list)
        or any(not isinstance(i, dict) or set(i) - SIGNING_KEY_INFO for i in infos)
    ):
        raise invalid("message_event_signature has fields the API does not define")
    for name, pattern in (
        ("public_key_version", "[0-9]+"),
        ("signature_version", "[0-9]+"),
        ("signature", "[A-Za-z0-9+/=_-]+"),
    ):
        if not isinstance(obj.get(name), str) or not re.fullmatch(pattern, obj[name]):
            raise invalid(f"message_event_signature.{name} does not match ^{pattern}$")


def _customer_of(path_id: str) -> str:
    """The customer of a 1:1 conversation named as X allows in a path: ``a-b`` or the other user's id."""
    if not re.match(PATH_ID, path_id) or path_id.startswith("g"):
        raise invalid(f"The `id` path parameter value [{path_id[:40]}] is not a 1:1 conversation")
    parts = path_id.split("-")
    if len(parts) == 1:
        return parts[0]
    if BRAND_ID not in parts or parts[0] == parts[1]:
        raise Problem(403, "Forbidden", "You are not a participant of this conversation")
    return parts[0] if parts[1] == BRAND_ID else parts[1]


def _register(emu: XEmulator, user_id: str, raw: bytes) -> tuple[dict[str, Any], int]:
    if user_id != BRAND_ID:
        raise Problem(403, "Forbidden", "You can only register public keys for the authenticated user")
    body = _json(raw, REGISTRATION, {"public_key", "version"})
    key = body["public_key"]
    if not isinstance(key, dict) or set(key) - PUBLIC_KEY:
        raise invalid("public_key must be an object of the documented fields")
    needed = ("public_key", "signing_public_key", "identity_public_key_signature")
    if not all(isinstance(key.get(k), str) and key[k] for k in needed):
        raise invalid("public_key needs public_key, signing_public_key and identity_public_key_signature")
    if not Chat().verify_key_binding(
        key["public_key"], key["signing_public_key"], key["identity_public_key_signature"]
    ):
        raise invalid("identity_public_key_signature does not bind the signing key to the identity key")
    version = str(now_ms()) if body.get("generate_version") else str(body["version"])
    entry = {k: key[k] for k in needed} | {"public_key_version": version}
    emu.chat.public_keys.setdefault(user_id, []).append(entry)
    return {"data": {"public_key_version": version, "juicebox_config": {}}}, 200


def _page(q: Any) -> int:
    try:
        size = int(q.get("max_results") or 10)
    except ValueError:
        size = 0
    if not 1 <= size <= 100:
        raise invalid("The `max_results` query parameter value is not between 1 and 100")
    return size


def _conversations(emu: XEmulator, request: Request) -> tuple[dict[str, Any], int]:
    q = request.query_params
    size = _page(q)
    ordered = sorted((c for c in emu.chat.conversations.values() if c.events), key=lambda c: c.updated_ms, reverse=True)
    if q.get("pagination_token"):
        before = decode_token(q["pagination_token"])
        if before is None:
            raise invalid("The `pagination_token` query parameter value is invalid")
        ordered = [c for c in ordered if c.updated_ms < before]
    page, rest = ordered[:size], ordered[size:]
    fields = set((q.get("chat_conversation.fields") or "id").split(",")) | {"id"}
    expansions = set((q.get("expansions") or "").split(","))
    data = []
    for conv in page:
        row: dict[str, Any] = {"id": f"{min(conv.customer, BRAND_ID, key=int)}-{max(conv.customer, BRAND_ID, key=int)}"}
        if "type" in fields:
            row["type"] = "OneToOne"
        if "updated_at" in fields:
            row["updated_at"] = iso(conv.updated_ms)
        if "participant_ids" in expansions:
            row["participant_ids"] = [BRAND_ID, conv.customer]
        data.append(row)
    meta: dict[str, Any] = {"result_count": len(page), "has_more": bool(rest)}
    if rest:
        meta["next_token"] = encode_token(page[-1].updated_ms)
    return ({"data": data, "meta": meta} if data else {"meta": meta}), 200


def _events(emu: XEmulator, request: Request) -> tuple[dict[str, Any], int]:
    q = request.query_params
    size = _page(q)
    conv = emu.chat.conversations.get(_customer_of(request.path_params["id"]))
    events = list(reversed(conv.events)) if conv else []
    messages = [e for e in events if not e["key_change"]]
    if q.get("pagination_token"):
        before = decode_token(q["pagination_token"])
        if before is None:
            raise invalid("The `pagination_token` query parameter value is invalid")
        messages = [e for e in messages if int(e["sequence"]) < before]
    page, rest = messages[:size], messages[size:]
    fields = set((q.get("chat_message_event.fields") or "id,encoded_event").split(",")) | {"id"}
    meta: dict[str, Any] = {
        "result_count": len(page),
        "has_more": bool(rest),
        "conversation_key_events": [e["encoded_event"] for e in reversed(events) if e["key_change"]],
    }
    if rest:
        meta["next_token"] = encode_token(int(page[-1]["sequence"]))
    data = [{k: v for k, v in e.items() if k in fields} for e in page]
    return ({"data": data, "meta": meta} if data else {"meta": meta}), 200


def _keys(emu: XEmulator, path_id: str, raw: bytes) -> tuple[dict[str, Any], int]:
    customer = _customer_of(path_id)
    body = _json(raw, KEYS_BODY, {"conversation_key_version", "conversation_participant_keys", "action_signatures"})
    try:
        listed = thrift.participant_keys_from_json(body["conversation_participant_keys"])
        if any(set(p) - PARTICIPANT_KEY for p in body["conversation_participant_keys"]):
            raise invalid("a participant key has fields the API does not define")
        actions = body["action_signatures"]
        if not isinstance(actions, list) or len(actions) != 1 or not isinstance(actions[0], dict):
            raise invalid("action_signatures must hold the one signed key change")
        action = actions[0]
        if set(action) - ACTION or not isinstance(action.get("message_id"), str) or not action["message_id"]:
            raise invalid("an action signature needs message_id, encoded_message_event_detail, message_event_signature")
        _check_signature(action.get("message_event_signature"))
        signature = thrift.signature_from_json(action.get("message_event_signature"))
        change = thrift.parse_message_event_detail(str(action.get("encoded_message_event_detail") or ""))
    except thrift.ThriftError as exc:
        raise invalid(str(exc)) from exc
    signed = change.conversation_key_change_event
    if signed is None or signed.conversation_key_version != body["conversation_key_version"]:
        raise invalid("the signed key change is not the one in the body")
    if {(p.user_id, p.encrypted_conversation_key) for p in signed.conversation_participant_keys or ()} != {
        (p.user_id, p.encrypted_conversation_key) for p in listed
    } or {p.user_id for p in listed} != {customer, BRAND_ID}:
        raise invalid("conversation_participant_keys must wrap the key for both participants, as signed")
    if customer not in emu.users:
        raise Problem(404, "Not Found Error", "Could not find the recipient")
    conv = emu._conversation(customer)
    event = thrift.build_key_change_event(
        sequence_id=emu.chat.next_sequence(),
        message_id=action["message_id"],
        sender_id=BRAND_ID,
        conversation_id=colon(customer, BRAND_ID),
        created_at_msec=now_ms(),
        key_change=str(action["encoded_message_event_detail"]),
        signature=signature,
    )
    person = emu.chat.people.get(customer)
    if person is not None:  # the customer's app checks the key change before taking the key
        try:
            person.chat.decrypt_event(event, {}, emu.chat.signing_entries(BRAND_ID, customer))
            found = person.chat.extract_conversation_keys([event]).get("keys") or {}
        except ValueError as exc:
            raise invalid(f"action_signatures do not verify: {str(exc).splitlines()[0][:120]}") from exc
        conv.keys.update({str(k): bytes(v) for k, v in found.items()})
        conv.latest = max(conv.keys, key=int) if conv.keys else None
    conv.versions.add(str(body["conversation_key_version"]))
    emu._store(conv, action["message_id"], BRAND_ID, event, key_change=True)
    return {
        "data": {"conversation_id": conv.events[-1]["conversation_id"], "sequence_id": conv.events[-1]["sequence"]}
    }, 200


def _message(emu: XEmulator, path_id: str, raw: bytes) -> tuple[dict[str, Any], int]:
    customer = _customer_of(path_id)
    body = _json(raw, MESSAGE_BODY, {"message_id", "encoded_message_create_event"})
    conv = emu.chat.conversations.get(customer)
    if customer not in emu.users:
        raise Problem(404, "Not Found Error", "Could not find the recipient")
    try:
        create = thrift.parse_message_create_event(body["encoded_message_create_event"])
        signature = (
            thrift.parse_message_event_signature(body["encoded_message_event_signature"])
            if body.get("encoded_message_event_signature")
            else None
        )
    except (thrift.ThriftError, TypeError) as exc:
        raise invalid(str(exc)) from exc
    versions = conv.versions if conv else set()
    if create.conversation_key_version not in versions:
        raise invalid("conversation_key_version is not a key of this conversation (POST …/keys first)")
    assert conv is not None
    for event in conv.events:  # the same message id again: the message is not sent twice
        if event["id"] == body["message_id"] and not event["key_change"]:
            return {"data": {"encoded_message_event": event["encoded_event"]}}, 201
    encoded = thrift.build_message_event(
        sequence_id=emu.chat.next_sequence(),
        message_id=body["message_id"],
        sender_id=BRAND_ID,
        conversation_id=colon(customer, BRAND_ID),
        created_at_msec=now_ms(),
        message_create_event=create,
        signature=signature,
    )
    emu._store(conv, body["message_id"], BRAND_ID, encoded)
    return {"data": {"encoded_message_event": encoded}}, 201
