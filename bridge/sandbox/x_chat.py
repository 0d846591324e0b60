"""The X emulator's Chat API (X Chat, end-to-end encrypted DMs), with real cryptography on the customers' side.

Served with the shapes of X's OpenAPI (2.167): ``GET|POST /2/users/{id}/public_keys``, ``GET /2/users/{id}``,
``GET /2/chat/conversations``, ``GET /2/chat/conversations/{id}/events`` (newest first, ``max_results`` ≤ 100,
opaque ``pagination_token``, ``meta.conversation_key_events``), ``POST /2/chat/conversations/{id}/keys`` and
``POST /2/chat/conversations/{id}/messages``. Bodies with a field the spec does not define, a missing required
field, malformed base64 or Thrift, a key version the conversation does not have, or ``action_signatures``
missing or not verifying (as the customer's app checks them) answer X's invalid-request problem (400).

Each customer is a ``chatxdk`` identity of its own: its public keys are registered like an app's, it sets up
and rotates conversation keys with ``prepare_conversation_key_change``, and encrypts and signs its messages;
the events X stores are built by our Thrift encoder (``xchat_thrift``), checked against chatxdk's own vectors
in ``tests/unit/test_xchat_thrift.py``. New events go to the webhook as X Activity API ``chat.received`` /
``chat.sent`` deliveries, signed like every X webhook. ``tamper=True`` makes a message whose signature does not
verify.
"""

from __future__ import annotations

import base64
import dataclasses
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from chat_xdk import Chat, detect_image_dimensions

from bridge.sandbox import x_chat_media as media
from bridge.sandbox import xchat_thrift as thrift
from bridge.sandbox.x_parts import BRAND_ID

if TYPE_CHECKING:
    pass


def colon(a: str, b: str) -> str:
    low, high = sorted((a, b), key=int)
    return f"{low}:{high}"


def now_ms() -> int:
    return int(time.time() * 1000)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Conversation:
    """One 1:1 X Chat conversation with the brand: its events (oldest first) and its key-change events."""

    customer: str
    events: list[dict[str, Any]] = field(default_factory=list)
    keys: dict[str, bytes] = field(default_factory=dict)
    """The conversation keys the emulated customer holds, by version."""
    latest: str | None = None
    versions: set[str] = field(default_factory=set)
    """Every conversation key version registered (by either side)."""
    updated_ms: int = 0


@dataclass
class Person:
    """An emulated customer's X Chat app: its identity and registered key version."""

    chat: Chat
    version: str
    public: dict[str, str]


class ChatWorld:
    """The X Chat state of the emulator (guarded by the emulator's lock)."""

    def __init__(self) -> None:
        self.public_keys: dict[str, list[dict[str, str]]] = {}
        self.people: dict[str, Person] = {}
        self.conversations: dict[str, Conversation] = {}
        self.media = media.MediaWorld()  # X Chat media: upload sessions and ciphertext (x_chat_media.py)
        self.sequence = 0
        self.lock = threading.RLock()

    def next_sequence(self) -> str:
        self.sequence += 1
        return str(self.sequence)

    def signing_entries(self, *users: str) -> list[dict[str, str]]:
        return [
            {
                "user_id": user,
                "public_key_version": k["public_key_version"],
                "public_key": k["signing_public_key"],
                "signing_public_key": k["signing_public_key"],
                "identity_public_key": k["public_key"],
                "identity_public_key_signature": k["identity_public_key_signature"],
            }
            for user in users
            for k in self.public_keys.get(user, [])
        ]


class ChatPeople:
    """Mixed into ``XEmulator``: customers using X Chat."""

    chat: ChatWorld
    users: dict[str, dict[str, Any]]
    webhook_url: str
    _lock: threading.RLock
    _webhooks: Any

    def add_chat_customer(self, user_id: str, username: str, name: str, **kwargs: Any) -> None:
        """A customer with an X Chat identity of their own (public keys registered with X)."""
        self.add_user(user_id, username, name, **kwargs)  # type: ignore[attr-defined]
        chat = Chat()
        payload = chat.generate_keypairs()
        key = payload.public_key
        with self._lock:
            version = str(len(self.chat.public_keys.get(user_id, [])) + 1)
            chat.set_identity(user_id, version)
            public = {
                "public_key": key.public_key,
                "public_key_version": version,
                "signing_public_key": key.signing_public_key,
                "identity_public_key_signature": key.identity_public_key_signature,
            }
            self.chat.public_keys.setdefault(user_id, []).append(public)
            self.chat.people[user_id] = Person(chat, version, public)

    def _conversation(self, customer: str) -> Conversation:
        conv = self.chat.conversations.get(customer)
        if conv is None:
            conv = self.chat.conversations[customer] = Conversation(customer)
        return conv

    def customer_sets_keys(self, user_id: str) -> str:
        """The customer's app sets up (or rotates) the conversation key; returns the new version."""
        with self._lock:
            person, brand = self.chat.people[user_id], self.chat.public_keys.get(BRAND_ID)
            if not brand:
                raise RuntimeError("the brand has registered no X Chat public key")
            wanted = [
                {
                    "user_id": BRAND_ID,
                    "public_key": brand[-1]["public_key"],
                    "key_version": brand[-1]["public_key_version"],
                },
                {"user_id": user_id, "public_key": person.public["public_key"], "key_version": person.version},
            ]
            change = person.chat.prepare_conversation_key_change(
                wanted, conversation_id=colon(user_id, BRAND_ID), sender_id=user_id, signing_key_version=person.version
            )
            action = change["action_signatures"][0]
            conv = self._conversation(user_id)
            version = str(change["conversation_key_version"])
            conv.keys[version], conv.latest = bytes(change["conversation_key"]), version
            conv.versions.add(version)
            event = thrift.build_key_change_event(
                sequence_id=self.chat.next_sequence(),
                message_id=str(action["message_id"]),
                sender_id=user_id,
                conversation_id=colon(user_id, BRAND_ID),
                created_at_msec=now_ms(),
                key_change=str(action["encoded_message_event_detail"]),
                signature=thrift.signature_from_json(action),
            )
            self._store(conv, str(action["message_id"]), user_id, event, key_change=True)
            return version

    def customer_chats(self, user_id: str, text: str, *, tamper: bool = False) -> str:
        """The customer writes to the brand in X Chat (keys set up first if the conversation has none);
        returns the message id. ``tamper``: the signature does not verify (altered on the way)."""
        with self._lock:
            conv = self._conversation(user_id)
            if conv.latest is None:
                self.customer_sets_keys(user_id)
            person = self.chat.people[user_id]
            assert conv.latest is not None
            return self._write(conv, person.chat, user_id, person.version, text, tamper=tamper)

    def customer_sends_file(
        self,
        user_id: str,
        data: bytes,
        name: str,
        media_type: str = "image",
        text: str = "",
        *,
        tamper: bool = False,
        declared_size: int | None = None,
    ) -> str:
        """The customer's app sends a file in X Chat: encrypted with chatxdk under the conversation's newest key,
        uploaded (X keeps only the ciphertext) and named in an encrypted message with ``text``. ``tamper``: one
        byte of the stored ciphertext flipped; ``declared_size``: the size the message claims, if not the real one."""
        with self._lock:
            conv = self._conversation(user_id)
            if conv.latest is None:
                self.customer_sets_keys(user_id)
            assert conv.latest is not None
            person, key = self.chat.people[user_id], self.chat.media.new_key()
            blob = bytearray(media.encrypt(person.chat, conv.keys[conv.latest], data))
            if tamper:
                blob[len(blob) // 2] ^= 0x01
            self.chat.media.blobs[(user_id, key)] = bytes(blob)
            described = media.describe(key, data, name, media_type, detect_image_dimensions(data) or (0, 0))
            if declared_size is not None:
                described["filesize_bytes"] = declared_size
            return self._write(conv, person.chat, user_id, person.version, text, attachments=[described])

    def chat_files_received_by(self, user_id: str) -> list[tuple[str, bytes]]:
        """The files the customer's app shows from the brand: each downloaded and decrypted there with the key
        of its message's version; (file name, plaintext) in order."""
        with self._lock:
            conv, person = self.chat.conversations.get(user_id), self.chat.people[user_id]
            found: list[tuple[str, bytes]] = []
            for event in conv.events if conv else []:
                if event["sender_id"] != BRAND_ID or event.get("key_change"):
                    continue
                opened = person.chat.decrypt_event(
                    event["encoded_event"], conv.keys if conv else {}, self.chat.signing_entries(BRAND_ID, user_id)
                )
                if opened.get("verified") is not True:
                    continue
                for item in opened.get("attachments") or []:
                    blob = self.chat.media.blobs[(user_id, item["media_hash_key"])]
                    key = conv.keys[str(opened["key_version"])] if conv else b""
                    found.append((str(item["filename"]), bytes(person.chat.decrypt_stream(blob, key))))
            return found

    def chat_received_by(self, user_id: str) -> list[str]:
        """What the customer's app shows from the brand, decrypted and verified there, in order."""
        return [str(content["text"]) for content in self._brand_messages(user_id)]

    def chat_offers_received_by(self, user_id: str) -> list[tuple[str, list[str]]]:
        """The brand's messages that offered quick replies, as the customer's app shows them: (text, labels)."""
        return [
            (str(content["text"]), [str(o["label"]) for o in offer["options"]])
            for content in self._brand_messages(user_id)
            if (offer := _offer(content))
        ]

    def customer_taps_chat(self, user_id: str, label: str) -> str:
        """The customer taps the quick reply ``label`` of the brand's newest offer: their app sends the label as
        the text with the option's response (its request id, option id and metadata), as chatxdk shapes it."""
        with self._lock:
            request = [offer for c in self._brand_messages(user_id) if (offer := _offer(c))][-1]
            option = next(o for o in request["options"] if o["label"] == label)
            answer = {"request_id": request["id"], "selected_option_id": option["id"], "metadata": option["metadata"]}
            conv, person = self._conversation(user_id), self.chat.people[user_id]
            return self._write(
                conv, person.chat, user_id, person.version, label, quick_reply={"response": {"options": answer}}
            )

    def _brand_messages(self, user_id: str) -> list[dict[str, Any]]:
        """The content of each message from the brand, decrypted and verified in the customer's app, in order."""
        with self._lock:
            conv, person = self.chat.conversations.get(user_id), self.chat.people[user_id]
            if conv is None:
                return []
            found = []
            for event in conv.events:
                if event["sender_id"] != BRAND_ID or event.get("key_change"):
                    continue
                opened = person.chat.decrypt_event(
                    event["encoded_event"], conv.keys, self.chat.signing_entries(BRAND_ID, user_id)
                )
                if opened.get("verified") is True and opened.get("type") == "Message":
                    found.append(dict(opened["content"]))
            return found

    def brand_chats_from_app(self, user_id: str, text: str, chat: Chat, version: str) -> str:
        """Someone answers from the brand's own X app (outside Slack): ``chat`` holds the brand's identity, as
        the app does once unlocked. Returns the message id; X delivers it as ``chat.sent``."""
        with self._lock:
            conv = self._conversation(user_id)
            assert conv.latest is not None, "the conversation has no key yet"
            return self._write(conv, chat, BRAND_ID, version, text)

    def _write(
        self,
        conv: Conversation,
        chat: Chat,
        sender: str,
        version: str,
        text: str,
        *,
        tamper: bool = False,
        attachments: list[dict[str, Any]] | None = None,
        quick_reply: dict[str, Any] | None = None,
    ) -> str:
        """A message encrypted and signed by ``sender``'s app under the conversation's newest key, as X stores
        it; ``tamper``: one byte of its ECDSA signature flipped on the way."""
        assert conv.latest is not None, "the conversation has no key yet"
        sent = chat.encrypt_message(
            colon(conv.customer, BRAND_ID),
            text,
            sender_id=sender,
            signing_key_version=version,
            conversation_key=conv.keys[conv.latest],
            conversation_key_version=conv.latest,
            attachments=attachments,
            quick_reply=quick_reply,
        )
        signature = thrift.parse_message_event_signature(sent.encoded_event_signature)
        if tamper:
            raw = bytearray(base64.b64decode((signature.signature or "") + "=" * (-len(signature.signature or "") % 4)))
            raw[5] ^= 0xFF
            signature = dataclasses.replace(signature, signature=base64.b64encode(bytes(raw)).decode().rstrip("="))
        event = thrift.build_message_event(
            sequence_id=self.chat.next_sequence(),
            message_id=sent.message_id,
            sender_id=sender,
            conversation_id=colon(conv.customer, BRAND_ID),
            created_at_msec=now_ms(),
            message_create_event=sent.encrypted_content,
            signature=signature,
        )
        self._store(conv, sent.message_id, sender, event)
        return sent.message_id

    def chat_events(self, user_id: str) -> list[dict[str, Any]]:
        with self._lock:
            conv = self.chat.conversations.get(user_id)
            return [dict(e) for e in conv.events] if conv else []

    def _store(
        self, conv: Conversation, message_id: str, sender: str, encoded: str, *, key_change: bool = False
    ) -> None:
        ms = now_ms()
        event = {
            "id": message_id,
            "sender_id": sender,
            "conversation_id": f"{min(conv.customer, BRAND_ID, key=int)}-{max(conv.customer, BRAND_ID, key=int)}",
            "created_at": iso(ms),
            "encoded_event": encoded,
            "key_change": key_change,
            "sequence": event_sequence(encoded),
        }
        conv.events.append(event)
        conv.updated_ms = max(ms, conv.updated_ms + 1)
        if self.webhook_url and not key_change:
            key_event = next((e["encoded_event"] for e in reversed(conv.events) if e["key_change"]), None)
            self._webhooks.put({"_chat": chat_delivery(event, key_event)})


def _offer(content: dict[str, Any]) -> dict[str, Any] | None:
    """The quick-reply request (its ``id`` and ``options``) a decrypted message offers, if it offers one."""
    offer = ((content.get("quick_reply") or {}).get("request") or {}).get("options")
    return offer if isinstance(offer, dict) else None


def chat_delivery(event: dict[str, Any], key_event: str | None) -> dict[str, Any]:
    """The X Activity API body of a ``chat.received`` (customer's) or ``chat.sent`` (brand's) event."""
    payload = {"encoded_event": event["encoded_event"]}
    if key_event is not None:
        payload["conversation_key_change_event"] = key_event
    return {
        "data": {
            "event_uuid": str(uuid.uuid4()),
            "filter": {"user_id": BRAND_ID},
            "tag": "",
            "event_type": "chat.sent" if event["sender_id"] == BRAND_ID else "chat.received",
            "payload": payload,
        }
    }


def event_sequence(encoded: str) -> str:
    return thrift.parse_event(encoded).sequence_id or "0"
