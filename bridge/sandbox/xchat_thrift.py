"""X Chat events on the wire: the Thrift *binary protocol* structures of chat-xdk's ``thrift/event.thrift``.

The X API carries X Chat events as base64 of Thrift binary structs: ``GET /2/chat/conversations/{id}/events``
(``data[].encoded_event`` and ``meta.conversation_key_events``), the ``encoded_message_event`` a send returns and
the real-time ``chat.*`` webhooks. Clients send parts of one: ``encoded_message_create_event`` (a
``MessageCreateEvent``) and ``encoded_message_event_signature`` (a ``MessageEventSignature``) to
``POST /2/chat/conversations/{id}/messages``; ``encoded_message_event_detail`` (a ``MessageEventDetail`` union)
inside each ``action_signatures`` entry of ``POST /2/chat/conversations/{id}/keys``. The emulator parses what
clients post (strictly: any malformed input raises ``ValueError``) and builds the ``MessageEvent`` X would return.

Two layers: a generic value tree (``TStruct``/``TList``/``TMap``) that decodes any well-formed input within the
limits and re-encodes it byte for byte, and typed dataclasses named after the IDL. A field a dataclass does not
name is kept in its ``extra`` and written back, so nothing a newer SDK adds is lost; a named field of the wrong
type is an error. Encoding writes fields in ascending id order, as Thrift encoders do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar

from bridge.sandbox.xchat_wire import (
    MAX_ITEMS,
    T_BOOL,
    T_I32,
    T_I64,
    T_LIST,
    T_STRING,
    T_STRUCT,
    Field,
    ThriftError,
    TList,
    TStruct,
    Value,
    b64decode,
    b64encode,
    decode_struct,
    encode_struct,
)

# --- typed layer ---------------------------------------------------------------------------------------------
# A schema entry is (field id, attribute, kind); kind is "string" (UTF-8 str), "binary" (bytes), "bool", "i32",
# "i64", a ThriftStruct subclass, or ("list", kind).
_KIND_TYPES = {"string": T_STRING, "binary": T_STRING, "bool": T_BOOL, "i32": T_I32, "i64": T_I64}
S = TypeVar("S", bound="ThriftStruct")


def _wire_type(kind: Any) -> int:
    if isinstance(kind, tuple):
        return T_LIST
    return T_STRUCT if isinstance(kind, type) else _KIND_TYPES[kind]


def _is_struct(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, ThriftStruct)


def _load(kind: Any, ttype: int, raw: Value, where: str) -> Any:
    if ttype != _wire_type(kind):
        raise ThriftError(f"{where}: wire type {ttype}, expected {_wire_type(kind)}")
    if isinstance(kind, tuple):
        assert isinstance(raw, TList)
        if raw.items and raw.etype != _wire_type(kind[1]):
            raise ThriftError(f"{where}: list of wire type {raw.etype}")
        return tuple(_load(kind[1], raw.etype, item, where) for item in raw.items)
    if _is_struct(kind):
        assert isinstance(raw, TStruct)
        return kind.from_struct(raw)
    if kind == "string":
        assert isinstance(raw, bytes)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ThriftError(f"{where}: not UTF-8") from None
    return raw


def _dump(kind: Any, v: Any) -> Value:
    if isinstance(kind, tuple):
        return TList(_wire_type(kind[1]), tuple(_dump(kind[1], item) for item in v))
    if _is_struct(kind):
        out: TStruct = v.to_struct()
        return out
    if kind == "string":
        return str(v).encode("utf-8")
    if kind in ("i32", "i64") and (isinstance(v, bool) or not isinstance(v, int)):
        raise ThriftError(f"{kind} wanted, got {v!r}")
    raw: Value = v
    return raw


@dataclass(frozen=True, kw_only=True)
class ThriftStruct:
    """Base of the typed structs: ``SCHEMA`` names the fields; ``extra`` keeps the ones it does not name."""

    SCHEMA: ClassVar[tuple[tuple[int, str, Any], ...]] = ()
    extra: tuple[Field, ...] = ()

    @classmethod
    def from_struct(cls: type[S], raw: TStruct) -> S:
        known = {fid: (name, kind) for fid, name, kind in cls.SCHEMA}
        values: dict[str, Any] = {}
        extra: list[Field] = []
        for fid, ttype, v in raw.fields:
            if fid in known:
                name, kind = known[fid]
                values[name] = _load(kind, ttype, v, f"{cls.__name__}.{name}")
            else:
                extra.append((fid, ttype, v))
        out = cls(extra=tuple(extra), **values)
        out.check()
        return out

    def to_struct(self) -> TStruct:
        self.check()
        values = [(fid, kind, getattr(self, name)) for fid, name, kind in self.SCHEMA]
        out = tuple((fid, _wire_type(kind), _dump(kind, v)) for fid, kind, v in values if v is not None)
        return TStruct(out + self.extra)

    def check(self) -> None:
        """Shape rules beyond the wire types (a union holds exactly one member)."""

    def encode(self) -> bytes:
        return encode_struct(self.to_struct())

    @classmethod
    def decode(cls: type[S], data: bytes) -> S:
        return cls.from_struct(decode_struct(data))

    def set_fields(self) -> list[str]:
        return [f.name for f in fields(self) if f.name != "extra" and getattr(self, f.name) is not None]


@dataclass(frozen=True, kw_only=True)
class FrankingData(ThriftStruct):
    SCHEMA = ((1, "franking_tag", "binary"), (2, "encrypted_nonce", "binary"),
              (4, "encrypted_media_hashes", ("list", "binary")))  # fmt: skip
    franking_tag: bytes | None = None
    encrypted_nonce: bytes | None = None
    encrypted_media_hashes: tuple[bytes, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class MessageCreateEvent(ThriftStruct):
    """``contents`` is the encrypted message (nonce‖tag‖ciphertext under the conversation key)."""

    SCHEMA = ((100, "contents", "binary"), (101, "conversation_key_version", "string"),
              (102, "should_notify", "bool"), (103, "ttl_msec", "i64"), (104, "delivered_at_msec", "i64"),
              (105, "is_pending_public_key", "bool"), (106, "priority", "i32"),
              (107, "additional_action_list", ("list", "i32")), (108, "franking_data", FrankingData),
              (109, "is_message_request", "bool"))  # fmt: skip
    contents: bytes | None = None
    conversation_key_version: str | None = None
    should_notify: bool | None = None
    ttl_msec: int | None = None
    delivered_at_msec: int | None = None
    is_pending_public_key: bool | None = None
    priority: int | None = None
    additional_action_list: tuple[int, ...] | None = None
    franking_data: FrankingData | None = None
    is_message_request: bool | None = None


@dataclass(frozen=True, kw_only=True)
class ConversationParticipantKey(ThriftStruct):
    SCHEMA = ((1, "user_id", "string"), (2, "encrypted_conversation_key", "string"),
              (3, "public_key_version", "string"))  # fmt: skip
    user_id: str | None = None
    encrypted_conversation_key: str | None = None  # base64 ECIES of the key to that user's identity key
    public_key_version: str | None = None


@dataclass(frozen=True, kw_only=True)
class ConversationKeyChangeEvent(ThriftStruct):
    """Field 4 (``ratchet_tree_change``, a ``trees.GroupOpData``) stays in ``extra`` when present."""

    SCHEMA = ((1, "conversation_key_version", "string"),
              (2, "conversation_participant_keys", ("list", ConversationParticipantKey)),
              (5, "for_key_rotation", "bool"))  # fmt: skip
    conversation_key_version: str | None = None
    conversation_participant_keys: tuple[ConversationParticipantKey, ...] | None = None
    for_key_rotation: bool | None = None


@dataclass(frozen=True, kw_only=True)
class MessageFailureEvent(ThriftStruct):
    """``failure_type``: event.thrift ``FailureType`` (12 = RATE_LIMIT_UPSELL, 5 = INVALID_SENDER_SIGNATURE …)."""

    SCHEMA = ((1, "failure_type", "i32"), (2, "rate_limit_tier", "i32"))
    failure_type: int | None = None
    rate_limit_tier: int | None = None


@dataclass(frozen=True, kw_only=True)
class MessageEventDetail(ThriftStruct):
    """The ``MessageEventDetail`` union: exactly one member. Members not named here (group change 4, typing 6,
    delete 7, conversation delete 8, metadata 9, read 12, unread 13, …) are carried in ``extra``."""

    SCHEMA = ((1, "message_create_event", MessageCreateEvent),
              (3, "conversation_key_change_event", ConversationKeyChangeEvent),
              (5, "message_failure_event", MessageFailureEvent))  # fmt: skip
    message_create_event: MessageCreateEvent | None = None
    conversation_key_change_event: ConversationKeyChangeEvent | None = None
    message_failure_event: MessageFailureEvent | None = None

    def check(self) -> None:
        if len(self.set_fields()) + len(self.extra) != 1:
            raise ThriftError("MessageEventDetail must hold exactly one member")


@dataclass(frozen=True, kw_only=True)
class MessageSigningKeyInfo(ThriftStruct):
    SCHEMA = ((1, "member_id", "string"), (2, "public_key_version", "string"), (3, "signing_public_key", "string"))
    member_id: str | None = None
    public_key_version: str | None = None
    signing_public_key: str | None = None


@dataclass(frozen=True, kw_only=True)
class MessageEventSignature(ThriftStruct):
    """``signature`` is base64 (unpadded) ECDSA r‖s; ``signature_version`` "7" with chatxdk 0.5."""

    SCHEMA = ((1, "signature", "string"), (2, "public_key_version", "string"), (3, "signature_version", "string"),
              (4, "signing_public_key", "string"),
              (5, "message_signing_key_info_list", ("list", MessageSigningKeyInfo)))  # fmt: skip
    signature: str | None = None
    public_key_version: str | None = None
    signature_version: str | None = None
    signing_public_key: str | None = None
    message_signing_key_info_list: tuple[MessageSigningKeyInfo, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class MessageEvent(ThriftStruct):
    """What the API returns base64-encoded as ``encoded_event``. ``relay_source`` is the IDL's enum (i32)."""

    SCHEMA = ((1, "sequence_id", "string"), (2, "message_id", "string"), (3, "sender_id", "string"),
              (4, "conversation_id", "string"), (5, "conversation_token", "string"),
              (6, "created_at_msec", "string"), (7, "detail", MessageEventDetail), (8, "relay_source", "i32"),
              (9, "message_event_signature", MessageEventSignature), (10, "previous_sequence_id", "string"),
              (11, "is_trusted", "bool"))  # fmt: skip
    sequence_id: str | None = None
    message_id: str | None = None
    sender_id: str | None = None
    conversation_id: str | None = None
    conversation_token: str | None = None
    created_at_msec: str | None = None
    detail: MessageEventDetail | None = None
    relay_source: int | None = None
    message_event_signature: MessageEventSignature | None = None
    previous_sequence_id: str | None = None
    is_trusted: bool | None = None


# --- what the emulator calls -----------------------------------------------------------------------------------


def _parse(cls: type[S], b64: str | bytes, what: str, required: tuple[str, ...]) -> S:
    out = cls.decode(b64decode(b64, what))
    missing = [name for name in required if getattr(out, name) in (None, "", b"")]
    if missing:
        raise ThriftError(f"{what}: missing {', '.join(missing)}")
    return out


def parse_event(b64: str | bytes) -> MessageEvent:
    """A server event (``encoded_event``); it must carry a ``detail``."""
    return _parse(MessageEvent, b64, "event", ("detail",))


def encode_event(event: MessageEvent) -> str:
    return b64encode(event.encode())


def parse_message_create_event(b64: str | bytes) -> MessageCreateEvent:
    """``encoded_message_create_event`` of a send: encrypted contents and their key version are required."""
    return _parse(MessageCreateEvent, b64, "encoded_message_create_event", ("contents", "conversation_key_version"))


def parse_message_event_signature(b64: str | bytes) -> MessageEventSignature:
    """``encoded_message_event_signature`` of a send."""
    return _parse(MessageEventSignature, b64, "encoded_message_event_signature", _SIGNATURE_REQUIRED)


def parse_message_event_detail(b64: str | bytes) -> MessageEventDetail:
    """``encoded_message_event_detail`` of an ``action_signatures`` entry (a key change for ``/keys``)."""
    return _parse(MessageEventDetail, b64, "encoded_message_event_detail", ())


_SIGNATURE_REQUIRED = ("signature", "public_key_version", "signature_version")
Part = TypeVar("Part", MessageCreateEvent, MessageEventSignature, ConversationKeyChangeEvent)


def _part(value: Part | str | bytes, parse: Callable[[str | bytes], Part]) -> Part:
    return parse(value) if isinstance(value, str | bytes) else value


def build_event(
    *,
    sequence_id: str,
    message_id: str,
    sender_id: str,
    conversation_id: str,
    created_at_msec: int | str,
    detail: MessageEventDetail,
    signature: MessageEventSignature | None = None,
    conversation_token: str | None = None,
) -> str:
    """A server ``MessageEvent``, base64 — the shape of the chatxdk vectors (fields 1-4, 6, 7, 9)."""
    event = MessageEvent(
        sequence_id=sequence_id,
        message_id=message_id,
        sender_id=sender_id,
        conversation_id=conversation_id,
        conversation_token=conversation_token,
        created_at_msec=str(int(created_at_msec)),
        detail=detail,
        message_event_signature=signature,
    )
    return encode_event(event)


def build_message_event(
    *,
    sequence_id: str,
    message_id: str,
    sender_id: str,
    conversation_id: str,
    created_at_msec: int | str,
    message_create_event: MessageCreateEvent | str | bytes,
    signature: MessageEventSignature | str | bytes | None,
    conversation_token: str | None = None,
) -> str:
    """The event X makes of a ``POST …/messages``: pass the body's ``encoded_message_create_event`` and
    ``encoded_message_event_signature`` (base64, validated here) and ``message_id`` as sent."""
    create = _part(message_create_event, parse_message_create_event)
    sig = None if signature is None else _part(signature, parse_message_event_signature)
    return build_event(
        sequence_id=sequence_id, message_id=message_id, sender_id=sender_id, conversation_id=conversation_id,
        created_at_msec=created_at_msec, detail=MessageEventDetail(message_create_event=create),
        signature=sig, conversation_token=conversation_token,
    )  # fmt: skip


def _key_change(value: str | bytes) -> ConversationKeyChangeEvent:
    change = parse_message_event_detail(value).conversation_key_change_event
    if change is None:
        raise ThriftError("encoded_message_event_detail is not a conversation key change")
    return change


def build_key_change_event(
    *,
    sequence_id: str,
    message_id: str,
    sender_id: str,
    conversation_id: str,
    created_at_msec: int | str,
    key_change: ConversationKeyChangeEvent | str | bytes,
    signature: MessageEventSignature | None,
) -> str:
    """The event X makes of a ``POST …/keys``: ``key_change`` is the action signature's
    ``encoded_message_event_detail`` (or a built ``ConversationKeyChangeEvent``); ``message_id`` and
    ``signature`` come from the same ``action_signatures`` entry (see ``signature_from_json``)."""
    change = _part(key_change, _key_change)
    return build_event(
        sequence_id=sequence_id, message_id=message_id, sender_id=sender_id, conversation_id=conversation_id,
        created_at_msec=created_at_msec, detail=MessageEventDetail(conversation_key_change_event=change),
        signature=signature,
    )  # fmt: skip


def signature_from_json(obj: Any) -> MessageEventSignature:
    """The JSON ``message_event_signature`` of a ``/keys`` action signature (strings; unknown keys ignored).
    Only the fields the vectors' events carry (signature, public_key_version, signature_version) are kept."""
    if not isinstance(obj, dict) or not all(isinstance(obj.get(k), str) and obj[k] for k in _SIGNATURE_REQUIRED):
        raise ThriftError("message_event_signature needs string signature, public_key_version, signature_version")
    return MessageEventSignature(**{k: obj[k] for k in _SIGNATURE_REQUIRED})


def participant_keys_from_json(items: Any) -> tuple[ConversationParticipantKey, ...]:
    """``conversation_participant_keys`` of a ``/keys`` body (``user_id``, ``encrypted_conversation_key``,
    ``public_key_version``), to compare with the signed detail."""
    names = ("user_id", "encrypted_conversation_key", "public_key_version")
    if not isinstance(items, list) or not items or len(items) > MAX_ITEMS:
        raise ThriftError("conversation_participant_keys must be a non-empty list")
    if not all(isinstance(i, dict) and all(isinstance(i.get(n), str) and i[n] for n in names) for i in items):
        raise ThriftError("each participant key needs string " + ", ".join(names))
    return tuple(ConversationParticipantKey(**{n: i[n] for n in names}) for i in items)
