"""The X Chat connector: reconciliation reads, opening sealed events, encrypted sends, profiles.

Webhook deliveries and reconciliation reads both give *sealed* events (``bridge.domain.SealedEvent``);
the core stores them and later hands them to :meth:`XChatConnector.open`, which may read keys from X.
Keys are held in memory: the public keys of users, and each conversation's keys by version, recovered
from the conversation's key-change events (``meta.conversation_key_events``) whenever a version is
missing.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

from bridge.domain import (
    Batch,
    Customer,
    InboundMessage,
    Limits,
    Opened,
    OutboundMessage,
    Platform,
    SealedEvent,
    SendResult,
)
from bridge.errors import AuthFailed, NotStarted, Rejected
from connectors.x.convert import customer_from_user
from connectors.xchat import convert, crypto, media
from connectors.xchat.api import ChatApi
from connectors.xchat.crypto import ConversationKeys, Identity

log = logging.getLogger(__name__)

MAX_CHARS = 10_000
MAX_CONVERSATIONS = 20  # conversations whose events one reconciliation pass reads (each read is charged)
MAX_EVENT_PAGES = 3  # pages of one conversation's events per pass
MAX_CONVERSATION_PAGES = 5
EPOCH = "1970-01-01T00:00:00+00:00"  # pages of the inbox per pass


class XChatConnector:
    name = "xchat"
    platform = Platform.X
    limits = Limits(max_chars=MAX_CHARS, files=media.LIMITS)

    def __init__(
        self,
        api: ChatApi,
        identity: Callable[[], Identity],
        *,
        max_conversations: int = MAX_CONVERSATIONS,
    ) -> None:
        """``identity`` loads the brand's stored identity (``bridge.x_chat_keys.load``); it is called at start."""
        self.api, self._load, self.max_conversations = api, identity, max_conversations
        self._identity: Identity | None = None
        self._username: str | None = None
        self._signing: dict[str, list[dict[str, str]]] = {}
        self._public: dict[str, list[dict[str, Any]]] = {}
        self._keys: dict[str, ConversationKeys] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------ identity

    @property
    def account(self) -> str:
        if self._username is None:
            raise NotStarted("X Chat connector not started")
        return self._username

    @property
    def calls(self) -> dict[str, int]:
        """The Chat API calls made, by kind (what X bills; ``bridge.x_costs``)."""
        return self.api.calls

    @property
    def identity(self) -> Identity:
        if self._identity is None:
            raise NotStarted("X Chat connector not started")
        return self._identity

    def start(self) -> None:
        user_id, username = self.api.me()
        identity = self._load()
        if identity.user_id != user_id:
            raise AuthFailed(f"the stored X Chat identity is user {identity.user_id}'s, the credential is {user_id}'s")
        self._identity, self._username = identity, username

    # ------------------------------------------------------------------------------------------------ keys

    def _public_keys(self, user_id: str, *, fresh: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            known = None if fresh else self._public.get(user_id)
        if known is None:
            known = self.api.public_keys(user_id)
            entries = [e for k in known if (e := crypto.signing_entry(user_id, k)) is not None]
            with self._lock:
                self._public[user_id], self._signing[user_id] = known, entries
        return known

    def _signing_keys(self, *users: str) -> list[dict[str, str]]:
        for user in users:
            self._public_keys(user)
        with self._lock:
            return [e for u in users for e in self._signing.get(u, [])]

    def _conversation_keys(self, conversation: str, *, reload: bool = False) -> ConversationKeys:
        with self._lock:
            held = self._keys.get(conversation)
        if held is not None and not reload:
            return held
        page = self.api.events(conversation, max_results=1)
        key_events = [e for e in (page.get("meta") or {}).get("conversation_key_events") or [] if isinstance(e, str)]
        me = self.identity.user_id
        found = crypto.extract_keys(self.identity, key_events, self._signing_keys(me, convert.other(conversation, me)))
        return self._remember(conversation, found)

    # --------------------------------------------------------------------------------------------- inbound

    def poll(self, cursor: str | None) -> Batch:
        """Reconciliation: the conversations active since ``cursor`` (X's ``updated_at``), and their newest
        events down to that time, as sealed events. The first pass only sets the mark."""
        me = self.identity.user_id
        mark = _when(cursor) if cursor else None
        changed: list[str] = []
        newest, token = mark, None
        for _ in range(MAX_CONVERSATION_PAGES):
            page = self.api.conversations(token)
            reached = False
            for conv in page.get("data") or []:
                updated = _when(conv.get("updated_at")) if isinstance(conv, dict) else None
                if updated is None:
                    continue
                newest = updated if newest is None or updated > newest else newest
                if mark is not None and updated <= mark:
                    reached = True  # newest first: the rest are older too
                    continue
                canonical = convert.canonical(str(conv.get("id") or ""), me)
                if canonical is not None and mark is not None:
                    changed.append(canonical)
            token = (page.get("meta") or {}).get("next_token")
            if mark is None or reached or not token or len(changed) >= self.max_conversations:
                break
        if mark is None:  # the first pass: history stays unmirrored; with none, everything from now on counts
            return Batch(messages=(), cursor=_stamp(newest) if newest else EPOCH)
        sealed: list[SealedEvent] = []
        for conversation in changed[: self.max_conversations]:
            sealed.extend(self._recent(conversation, since=mark))
        return Batch(messages=(), cursor=_stamp(newest) if newest else cursor, sealed=tuple(reversed(sealed)))

    def _recent(self, conversation: str, *, since: datetime) -> list[SealedEvent]:
        """The conversation's events newer than ``since``, newest first."""
        found: list[SealedEvent] = []
        token: str | None = None
        for _ in range(MAX_EVENT_PAGES):
            page = self.api.events(conversation, token)
            for event in page.get("data") or []:
                when = _when(event.get("created_at")) if isinstance(event, dict) else None
                if when is not None and when <= since:
                    return found
                sealed = convert.sealed_from_history(event, me=self.identity.user_id, account=self.account)
                if sealed is not None:
                    found.append(sealed)
            token = (page.get("meta") or {}).get("next_token")
            if not token:
                break
        return found

    def open(self, events: list[SealedEvent]) -> list[Opened]:
        """Decrypt sealed events. Raises RetryLater / AuthFailed when X cannot be asked for a key (the core
        tries them all later); an event that can never be opened comes back with its ``error``."""
        me = self.identity.user_id
        results = []
        for event in events:
            try:
                customer_id = convert.other(event.conversation, me)
            except ValueError:
                results.append(Opened(event.event_id, error="not a one-to-one conversation of ours"))
                continue
            try:
                results.append(self._open_one(event, me, customer_id))
            except Rejected as exc:  # X refused a read this event needs (its conversation, a public key)
                results.append(Opened(event.event_id, error=f"cannot be opened: {exc.reason}"))
        return results

    def _open_one(self, event: SealedEvent, me: str, customer_id: str) -> Opened:
        try:
            sender = convert.header(event.encoded_event).sender_id
        except ValueError as exc:
            return Opened(event.event_id, error=f"cannot be opened: {exc}")
        if sender not in (me, customer_id):  # checked first: a third party's signing key is never looked up
            return Opened(event.event_id, error="sent by someone outside the conversation")
        try:
            opened = self._decrypt(event, me, customer_id)
        except ValueError as exc:
            if crypto.failure(exc) != crypto.BAD_SIGNATURE:
                return Opened(event.event_id, error=f"cannot be opened: {_short(exc)}")
            # not the customer's words for sure: the thread says so, and shows nothing of it
            return Opened(event.event_id, message=self._unverified(event, customer_id))
        if opened.get("type") == "KeyChange":
            found = crypto.extract_keys(self.identity, [event.encoded_event], self._signing_keys(me, customer_id))
            self._remember(event.conversation, found)
            return Opened(event.event_id)
        if str(opened.get("sender_id") or "") not in (me, customer_id):
            return Opened(event.event_id, error="sent by someone outside the conversation")
        message = convert.to_message(
            opened,
            event_id=event.event_id,
            conversation=event.conversation,
            me=me,
            account=self.account,
            customer=Customer(id=customer_id, name=customer_id),
        )
        return Opened(event.event_id, message=message)

    def _decrypt(self, event: SealedEvent, me: str, customer_id: str) -> dict[str, Any]:
        """Open with what we hold; when a key is missing (a rotation we have not seen) or a signature does not
        verify (new signing keys), read the conversation's key events and the public keys again, once."""
        keys = self._conversation_keys(event.conversation)
        try:
            return crypto.decrypt(self.identity, event.encoded_event, keys.keys, self._signing_keys(me, customer_id))
        except ValueError as first:
            if crypto.failure(first) == crypto.UNREADABLE:
                raise
        self._public_keys(customer_id, fresh=True)
        keys = self._conversation_keys(event.conversation, reload=True)
        return crypto.decrypt(self.identity, event.encoded_event, keys.keys, self._signing_keys(me, customer_id))

    def _remember(self, conversation: str, found: ConversationKeys) -> ConversationKeys:
        with self._lock:
            held = self._keys.setdefault(conversation, ConversationKeys())
            held.keys.update(found.keys)
            if found.latest is not None:
                held.latest = max(found.latest, held.latest or found.latest, key=int)
            return held

    def _unverified(self, event: SealedEvent, customer_id: str) -> InboundMessage:
        return InboundMessage(
            platform=Platform.X,
            account=self.account,
            remote_id=event.event_id,
            conversation=event.conversation,
            customer=Customer(id=customer_id, name=customer_id),
            text="",
            sent_at=datetime.now(UTC),
            via="xchat",
            unverified=True,
        )

    # -------------------------------------------------------------------------------------------- outbound

    def _send_keys(self, conversation: str, customer_id: str) -> tuple[str, bytes]:
        """The newest conversation key, made and registered with X when the conversation has none yet."""
        keys = self._conversation_keys(conversation)
        if keys.latest is None:
            keys = self._conversation_keys(conversation, reload=True)
        if keys.latest is not None and keys.latest in keys.keys:
            return keys.latest, keys.keys[keys.latest]
        me = self.identity.user_id
        public = [
            {"user_id": user, "public_key": k["public_key"], "key_version": k["public_key_version"]}
            for user in (me, customer_id)
            for k in self._public_keys(user, fresh=True)[-1:]
        ]
        if len(public) != 2:
            raise Rejected("X refused: this user has not set up X Chat (no public key)")
        change = crypto.new_conversation_keys(self.identity, conversation, public)
        self.api.add_keys(customer_id, crypto.keys_request(change))
        version, key = str(change["conversation_key_version"]), bytes(change["conversation_key"])
        self._remember(conversation, ConversationKeys(keys={version: key}, latest=version))
        return version, key

    def send(self, message: OutboundMessage) -> SendResult:
        me = self.identity.user_id
        conversation = convert.canonical(message.conversation, me)
        if conversation is None:
            raise Rejected("X Chat replies go to one-to-one conversations only")
        try:  # before any call: a refused offer must not have set up keys or uploaded a file
            offer = (
                convert.quick_reply_request(message.quick_replies, uuid.uuid4().hex) if message.quick_replies else None
            )
        except ValueError as exc:
            raise Rejected(str(exc)) from exc
        version, key = self._send_keys(conversation, convert.other(conversation, me))
        attachments = None
        if message.file is not None:  # encrypted with the same conversation key as the text, uploaded first
            encryptor = crypto.stream_encryptor(self.identity, key)
            attachments = [media.upload(self.api, conversation, message.file, encryptor)]
        body = crypto.encrypt(self.identity, conversation, message.text, key, version, attachments, offer)
        self.api.send(conversation, body)
        return SendResult(remote_id=body["message_id"], conversation=conversation)

    def fetch_file(self, account: str, conversation: str, ref: str, sink: IO[bytes], cap: int) -> int:
        """A customer's file (``media.MediaRef``) downloaded and decrypted chunk by chunk into ``sink``, with the
        conversation key of the version it was encrypted under (held, or read again from the key events)."""
        try:
            found = media.parse_ref(ref)
        except ValueError as exc:
            raise Rejected("it is not an X Chat file") from exc
        if convert.canonical(conversation, self.identity.user_id) != found.conversation:
            raise Rejected("its reference names another conversation")
        if found.size > cap:  # as the sender declared it: no download at all
            raise Rejected(media.too_large(found.size, cap))
        keys = self._conversation_keys(found.conversation)
        if found.key_version not in keys.keys:
            keys = self._conversation_keys(found.conversation, reload=True)
        key = keys.keys.get(found.key_version)
        if key is None:
            raise Rejected("the conversation key it was encrypted with is not one we hold")
        with self.api.media(found.conversation, found.media_hash_key) as resp:
            media.check_length(resp.headers.get("content-length", ""), cap)
            decryptor = crypto.stream_decryptor(self.identity, key)
            return media.decrypt_into(self.api.chunks(resp), decryptor, sink, cap)

    def find_sent(self, message: OutboundMessage, *, since: float, known: set[str]) -> SendResult | None:
        """Our message with this text among the conversation's newest events, sent at or after ``since``."""
        me = self.identity.user_id
        conversation = convert.canonical(message.conversation, me)
        if conversation is None:
            return None
        page = self.api.events(conversation)
        for event in page.get("data") or []:
            if not isinstance(event, dict) or str(event.get("sender_id") or "") != me:
                continue
            when = _when(event.get("created_at"))
            sealed = convert.sealed_from_history(event, me=self.identity.user_id, account=self.account)
            if sealed is None or (when is not None and when.timestamp() < since - 5):
                continue
            opened = self.open([sealed])[0].message
            if opened is None or (message.file is not None and not opened.files):
                continue
            if opened.text == message.text and opened.remote_id not in known:
                return SendResult(remote_id=opened.remote_id, conversation=conversation)
        return None

    def profile(self, account: str, customer_id: str) -> Customer:
        return customer_from_user(self.api.user(customer_id), customer_id)


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _stamp(when: datetime) -> str:
    return when.isoformat()


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
