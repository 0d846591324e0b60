"""X Chat cryptography through ``chatxdk`` (X's SDK): the brand's identity, signing keys, conversation keys.

Nothing here calls HTTP: the connector hands in what it read from the Chat API. ``chatxdk``'s ``Chat`` is
not shared between threads without ``Identity.lock``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from chat_xdk import Chat, StreamDecryptor, StreamEncryptor

from bridge.errors import Rejected


@dataclass
class Identity:
    """The brand account's X Chat identity (private keys inside ``chat``) and its registered version."""

    user_id: str
    key_version: str
    chat: Chat
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, user_id: str, key_version: str, blob: bytes) -> Identity:
        chat = Chat()
        try:
            chat.import_keys(bytes(blob), version=key_version)
        except ValueError as exc:
            raise Rejected(f"the stored X Chat keys cannot be loaded: {exc}") from exc
        chat.set_identity(user_id, key_version)
        return cls(user_id, key_version, chat)

    def with_version(self, version: str) -> Identity:
        """The same keys under the version X assigned when they were registered."""
        self.chat.set_identity(self.user_id, version)
        return Identity(self.user_id, version, self.chat, self.lock)

    def export(self) -> bytes:
        blob = self.chat.export_keys()
        if not blob:
            raise Rejected("chatxdk exported no keys")
        return bytes(blob)


def new_identity(user_id: str) -> tuple[Identity, dict[str, Any]]:
    """A fresh identity and the body of ``POST /2/users/{id}/public_keys`` that registers it."""
    chat = Chat()
    payload = chat.generate_keypairs()
    key = payload.public_key
    registration: dict[str, Any] = {
        "public_key": {
            "public_key": key.public_key,
            "signing_public_key": key.signing_public_key,
            "identity_public_key_signature": key.identity_public_key_signature,
            "registration_method": key.registration_method,
        },
        "version": payload.version or "1",
        "generate_version": bool(payload.generate_version),
    }
    if key.public_key_fingerprint:
        registration["public_key"]["public_key_fingerprint"] = key.public_key_fingerprint
    if key.signing_public_key_signature:
        registration["public_key"]["signing_public_key_signature"] = key.signing_public_key_signature
    version = payload.version or "1"
    chat.set_identity(user_id, version)
    return Identity(user_id, version, chat), registration


def signing_entry(user_id: str, key: dict[str, Any]) -> dict[str, str] | None:
    """A public key of ``GET /2/users/{id}/public_keys`` as chatxdk's signing-key entry; None if incomplete."""
    needed = ("public_key", "public_key_version", "signing_public_key", "identity_public_key_signature")
    if not all(isinstance(key.get(k), str) and key.get(k) for k in needed):
        return None
    return {
        "user_id": user_id,
        "public_key_version": key["public_key_version"],
        "public_key": key["signing_public_key"],
        "signing_public_key": key["signing_public_key"],
        "identity_public_key": key["public_key"],
        "identity_public_key_signature": key["identity_public_key_signature"],
    }


@dataclass
class ConversationKeys:
    """The keys of one conversation we hold, by version, and the newest version."""

    keys: dict[str, bytes] = field(default_factory=dict)
    latest: str | None = None


def extract_keys(identity: Identity, key_events: list[str], signing: list[dict[str, str]]) -> ConversationKeys:
    """The conversation keys wrapped for us in these key-change events (base64 Thrift events). Only key
    changes whose signature verifies give a key (``decrypt_events``; ``extract_conversation_keys`` would
    take any)."""
    if not key_events:
        return ConversationKeys()
    with identity.lock:
        found = identity.chat.decrypt_events(key_events, signing)
    held = found.get("conversation_keys") or {}
    keys = {str(v): bytes(k) for v, k in (held.get("keys") or {}).items()}
    latest = held.get("latest_version")
    return ConversationKeys(keys=keys, latest=str(latest) if latest else (max(keys, key=int) if keys else None))


# why chatxdk could not open an event, from its message (it raises ValueError for all of them)
NO_KEY, BAD_SIGNATURE, UNREADABLE = "no_key", "bad_signature", "unreadable"


def failure(exc: ValueError) -> str:
    text = str(exc).lower()
    if "signature" in text:
        return BAD_SIGNATURE
    if "no matching key" in text or "key version" in text:
        return NO_KEY
    return UNREADABLE


def decrypt(identity: Identity, encoded: str, keys: dict[str, bytes], signing: list[dict[str, str]]) -> dict[str, Any]:
    """One event opened and its signature verified; raises ValueError when it cannot be (see ``failure``)."""
    with identity.lock:
        opened = identity.chat.decrypt_event(encoded, keys, signing)
    if not isinstance(opened, dict):
        raise ValueError("chatxdk returned no event")
    return opened


def new_conversation_keys(identity: Identity, conversation: str, public_keys: list[dict[str, str]]) -> dict[str, Any]:
    """A fresh conversation key wrapped for each participant, and its signed action (chatxdk's
    ``prepare_conversation_key_change``): ``conversation_key``, ``conversation_key_version``,
    ``participant_keys``, ``action_signatures``."""
    with identity.lock:
        return identity.chat.prepare_conversation_key_change(
            public_keys,
            conversation_id=conversation,
            sender_id=identity.user_id,
            signing_key_version=identity.key_version,
        )


def keys_request(change: dict[str, Any]) -> dict[str, Any]:
    """The body of ``POST /2/chat/conversations/{id}/keys`` for a prepared key change."""
    return {
        "conversation_key_version": str(change["conversation_key_version"]),
        "conversation_participant_keys": [
            {
                "user_id": str(p["user_id"]),
                "encrypted_conversation_key": str(p["encrypted_key"]),
                "public_key_version": str(p["public_key_version"]),
            }
            for p in change["participant_keys"]
        ],
        "action_signatures": [
            {
                "message_id": str(a["message_id"]),
                "encoded_message_event_detail": str(a["encoded_message_event_detail"]),
                "message_event_signature": {
                    "signature": str(a["signature"]),
                    "public_key_version": str(a["public_key_version"]),
                    "signature_version": str(a["signature_version"]),
                },
            }
            for a in change.get("action_signatures") or []
        ],
    }


def encrypt(
    identity: Identity,
    conversation: str,
    text: str,
    key: bytes,
    version: str,
    attachments: list[dict[str, Any]] | None = None,
    quick_reply: dict[str, Any] | None = None,
) -> dict[str, str]:
    """The body of ``POST /2/chat/conversations/{id}/messages`` carrying ``text`` (and media ``attachments``,
    ``connectors.xchat.media.attachment``; a ``quick_reply`` offer, ``convert.quick_reply_request``) encrypted
    and signed."""
    with identity.lock:
        sent = identity.chat.encrypt_message(
            conversation,
            text,
            sender_id=identity.user_id,
            signing_key_version=identity.key_version,
            conversation_key=key,
            conversation_key_version=version,
            attachments=attachments or None,
            quick_reply=quick_reply,
        )
    return {
        "message_id": sent.message_id,
        "encoded_message_create_event": sent.encrypted_content,
        "encoded_message_event_signature": sent.encoded_event_signature,
    }


def stream_encryptor(identity: Identity, key: bytes) -> StreamEncryptor:
    """A file's encryptor under a conversation key (it holds no reference to the identity's keys)."""
    with identity.lock:
        return identity.chat.stream_encryptor(key)


def stream_decryptor(identity: Identity, key: bytes) -> StreamDecryptor:
    with identity.lock:
        return identity.chat.stream_decryptor(key)
