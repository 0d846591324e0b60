"""The Chat API calls, through X's official Python SDK ``xdk`` (typed methods), with its errors translated.

``xdk`` takes the base URL (``X_API_URL``: X, or the emulator) and sends with a ``requests`` session
without a timeout; ours adds one. Its methods raise ``requests.HTTPError`` for any 4xx/5xx, translated
here like the legacy connector's: 401 → AuthFailed (after one refresh of stored OAuth 2.0 tokens), 429 →
RetryLater at the reset, 400/403/404 → Rejected, 5xx and a lost answer → RetryLater (uncertain for a
write, by ``bridge.errors``' one definition).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import requests

from bridge.errors import AuthFailed, Rejected, RetryLater, server_error, unreachable
from connectors.x.api import reset_of
from connectors.x.oauth import with_fresh_token

if TYPE_CHECKING:
    from connectors.x.oauth import AccessTokens

# xdk is imported when a ChatApi is made, not with this module: its generated models are ~23 MB of a serving
# process, which a deployment without X Chat should not carry

T = TypeVar("T")
PAGE = 100  # max_results of the Chat API's lists


class TimeoutSession(requests.Session):
    """A session that gives every request a timeout (``xdk`` passes none)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


def detail(response: requests.Response) -> str:
    """What X said, short: a problem's ``detail``/``title``, or the first ``errors[]`` message."""
    try:
        body = response.json()
    except ValueError:
        return str(response.reason)
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            body = errors[0]
        text = body.get("detail") or body.get("title") or body.get("message")
        if text:
            return str(text)[:300]
    return str(response.reason)


def translate(exc: requests.RequestException, *, changes: bool) -> Exception:
    """The dmbridge error for a failed Chat API call (raise it ``from exc``)."""
    response = exc.response if isinstance(exc, requests.HTTPError) else None
    if response is None:
        return unreachable("X", exc, changes=changes)
    status = response.status_code
    if status == 429:
        return RetryLater("X rate limit reached", retry_at=reset_of(response), rate_limited=True)
    if status == 401:
        return AuthFailed(f"X refused the credential: {detail(response)}")
    if status >= 500:
        return server_error(f"X server error {status}", status, changes=changes)
    if status in (400, 403, 404, 409, 422):
        return Rejected(f"X refused: {detail(response)}")
    return RetryLater(f"X answered {status}")


class ChatApi:
    """The brand account's calls to the Chat API, with an OAuth 2.0 user token."""

    def __init__(
        self,
        base_url: str,
        *,
        user_bearer_token: str = "",
        tokens: AccessTokens | None = None,
        timeout: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        import xdk

        self.client = xdk.Client(base_url=base_url.rstrip("/"), access_token=user_bearer_token or None)
        self.client.session = TimeoutSession(timeout)
        self.tokens, self.clock = tokens, clock
        self.calls: dict[str, int] = {}
        """Calls made by kind (``read``, ``send``, ``events_read``): what X charges for (``bridge.x_costs``)."""

    def _call(self, fn: Callable[[], T], *, changes: bool) -> T:
        """One call; with stored tokens, through ``with_fresh_token`` (a 401 refreshes once and retries once)."""
        if self.tokens is None:
            return self._once(fn, changes=changes)
        return with_fresh_token(
            self.tokens,
            lambda token: setattr(self.client, "access_token", token),
            lambda: self._once(fn, changes=changes),
        )

    def _once(self, fn: Callable[[], T], *, changes: bool) -> T:
        try:
            return fn()
        except requests.RequestException as exc:
            raise translate(exc, changes=changes) from exc
        except ValueError as exc:  # xdk found no credential for the endpoint, or an answer it cannot read
            raise AuthFailed(f"X Chat call not possible: {exc}") from exc

    def _count(self, kind: str, n: int = 1) -> None:
        self.calls[kind] = self.calls.get(kind, 0) + n

    def me(self) -> tuple[str, str]:
        """The brand account's id and username."""
        resp = self._call(lambda: self.client.users.get_me(), changes=False)
        data = _dump(resp).get("data") or {}
        if not data.get("id"):
            raise Rejected("X answered /2/users/me without an id")
        return str(data["id"]), str(data.get("username") or data["id"])

    def user(self, user_id: str) -> dict[str, Any] | None:
        """A user's name, username and avatar (``GET /2/users/{id}``)."""
        resp = self._call(
            lambda: self.client.users.get_by_id(user_id, user_fields=["name", "username", "profile_image_url"]),
            changes=False,
        )
        self._count("read")
        data = _dump(resp).get("data")
        return data if isinstance(data, dict) else None

    def public_keys(self, user_id: str, *, backup: bool = False) -> list[dict[str, Any]]:
        """A user's registered X Chat public keys (every version); ``backup``: with each key's
        ``juicebox_config`` (where its PIN-protected key backup lives)."""
        fields = ["public_key", "public_key_version", "signing_public_key", "identity_public_key_signature"]
        fields += ["juicebox_config"] if backup else []
        resp = self._call(
            lambda: self.client.users.get_public_key(user_id, public_key_fields=fields),
            changes=False,
        )
        self._count("read")
        return [k for k in _dump(resp).get("data") or [] if isinstance(k, dict)]

    def register_public_key(self, user_id: str, registration: dict[str, Any]) -> str:
        """Registers our identity's public keys; X answers the version it assigned."""
        from xdk.chat.models import AddUserPublicKeyRequest

        body = AddUserPublicKeyRequest.model_validate(registration)
        resp = self._call(lambda: self.client.chat.add_user_public_key(user_id, body), changes=True)
        version = (_dump(resp).get("data") or {}).get("public_key_version")
        if not version:
            raise Rejected("X registered the public key without answering its version")
        return str(version)

    def conversations(self, pagination_token: str | None = None) -> dict[str, Any]:
        """One page of the inbox's conversations, most recently active first."""

        def page() -> dict[str, Any]:
            pages: Iterator[Any] = self.client.chat.get_conversations(
                max_results=PAGE,
                pagination_token=pagination_token,
                chat_conversation_fields=["id", "type", "updated_at"],
                expansions=["participant_ids"],
            )
            return _dump(next(iter(pages), None))

        found = self._call(page, changes=False)
        self._count("read")
        return found

    def events(self, conversation: str, pagination_token: str | None = None, max_results: int = PAGE) -> dict[str, Any]:
        """One page of a conversation's events, newest first, with ``meta.conversation_key_events``."""

        def page() -> dict[str, Any]:
            pages: Iterator[Any] = self.client.chat.get_conversation_events(
                conversation,
                max_results=max_results,
                pagination_token=pagination_token,
                chat_message_event_fields=["id", "sender_id", "conversation_id", "created_at", "encoded_event"],
            )
            return _dump(next(iter(pages), None))

        found = self._call(page, changes=False)
        self._count("events_read", len(found.get("data") or []))
        return found

    def add_keys(self, conversation: str, body: dict[str, Any]) -> dict[str, Any]:
        from xdk.chat.models import AddConversationKeysRequest

        request = AddConversationKeysRequest.model_validate(body)
        resp = self._call(lambda: self.client.chat.add_conversation_keys(conversation, request), changes=True)
        return _dump(resp).get("data") or {}

    def send(self, conversation: str, body: dict[str, Any]) -> dict[str, Any]:
        from xdk.chat.models import SendMessageRequest

        request = SendMessageRequest.model_validate(body)
        resp = self._call(lambda: self.client.chat.send_message(conversation, request), changes=True)
        self._count("send")
        return _dump(resp).get("data") or {}

    # ------------------------------------------------------------------------------------------------ media

    def upload_initialize(self, conversation: str, total_bytes: int) -> tuple[str, str]:
        """A media upload session for ``total_bytes`` of ciphertext: its id and the media hash key X gave."""
        from xdk.chat.models import MediaUploadInitializeRequest

        request = MediaUploadInitializeRequest(conversation_id=conversation, total_bytes=total_bytes)
        resp = self._call(lambda: self.client.chat.media_upload_initialize(request), changes=True)
        self._count("media")
        data = _dump(resp).get("data") or {}
        session, key = data.get("session_id"), data.get("media_hash_key")
        if not session or not key:
            raise Rejected("X opened the media upload without a session id or media hash key")
        return str(session), str(key)

    def upload_append(self, session: str, conversation: str, media_hash_key: str, index: int, segment: bytes) -> None:
        """One segment of ciphertext (base64 in the JSON body)."""
        from xdk.chat.models import MediaUploadAppendRequest

        request = MediaUploadAppendRequest(
            conversation_id=conversation,
            media_hash_key=media_hash_key,
            segment_index=index,
            media=base64.b64encode(segment).decode(),
        )
        self._call(lambda: self.client.chat.media_upload_append(session, request), changes=True)

    def upload_finalize(self, session: str, conversation: str, media_hash_key: str, parts: int) -> None:
        from xdk.chat.models import MediaUploadFinalizeRequest

        request = MediaUploadFinalizeRequest(
            conversation_id=conversation, media_hash_key=media_hash_key, num_parts=str(parts)
        )
        resp = self._call(lambda: self.client.chat.media_upload_finalize(session, request), changes=True)
        if (_dump(resp).get("data") or {}).get("success") is not True:
            raise Rejected("X did not finalize the media upload")

    def media(self, conversation: str, media_hash_key: str) -> requests.Response:
        """The encrypted file's response, its body not read yet: read it with ``chunks`` and close it. (``xdk``'s
        ``media_download`` is the same request but reads the whole body into memory.)"""
        url = f"{self.client.base_url}/2/chat/media/{conversation}/{media_hash_key}"

        def get() -> requests.Response:
            resp = self.client.session.get(
                url, headers={"Authorization": f"Bearer {self.client.access_token}"}, stream=True
            )
            try:
                resp.raise_for_status()
            except requests.HTTPError:
                _ = resp.content  # the problem document, read for ``detail`` before the connection goes back
                resp.close()
                raise
            return resp

        found = self._call(get, changes=False)
        self._count("media")
        return found

    @staticmethod
    def chunks(resp: requests.Response, size: int = 64 * 1024) -> Iterator[bytes]:
        """A streamed body in chunks, its failures as dmbridge errors."""
        try:
            yield from resp.iter_content(size)
        except requests.RequestException as exc:
            raise translate(exc, changes=False) from exc


def _dump(model: Any) -> dict[str, Any]:
    """An ``xdk`` response model as the JSON X sent (None and unknown shapes as empty)."""
    if model is None:
        return {}
    if hasattr(model, "model_dump"):
        found = model.model_dump(exclude_none=True, by_alias=True)
        return found if isinstance(found, dict) else {}
    return model if isinstance(model, dict) else {}
