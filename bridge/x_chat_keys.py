"""The brand account's X Chat identity: made once, its private blob sealed in the database.

``dmbridge x-chat setup`` makes the identity with ``chatxdk`` (``generate_keypairs``), registers its
public keys with X (``POST /2/users/{id}/public_keys``), and stores the private key blob
(``export_keys``) sealed with Fernet under ``DMBRIDGE_SECRET_KEY``, in the table ``x_chat_identity``:
every process of the install can then ``load`` it. The blob never appears in the clear outside memory,
never in a log, and is never printed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.exc import OperationalError, ProgrammingError

from bridge.errors import ConfigError
from bridge.store import x_chat
from bridge.store.db import Database
from connectors.xchat.api import ChatApi
from connectors.xchat.crypto import Identity, new_identity


def new_secret_key() -> str:
    """A fresh value for ``DMBRIDGE_SECRET_KEY`` (``dmbridge x-chat keygen``)."""
    return Fernet.generate_key().decode()


def _fernet(secret_key: str) -> Fernet:
    if not secret_key:
        raise ConfigError("DMBRIDGE_SECRET_KEY is not set: it seals the X Chat keys (`dmbridge x-chat keygen`)")
    try:
        return Fernet(secret_key.encode())
    except (ValueError, TypeError) as exc:
        raise ConfigError("DMBRIDGE_SECRET_KEY is not a key `dmbridge x-chat keygen` makes (32 bytes, base64)") from exc


def seal(blob: bytes, secret_key: str) -> str:
    return _fernet(secret_key).encrypt(blob).decode()


def unseal(sealed: str, secret_key: str) -> bytes:
    try:
        return _fernet(secret_key).decrypt(sealed.encode())
    except InvalidToken as exc:
        raise ConfigError("the X Chat keys cannot be opened with this DMBRIDGE_SECRET_KEY (a different key?)") from exc


@dataclass(frozen=True)
class Status:
    ok: bool
    detail: str


def load(db: Database, secret_key: str) -> Identity:
    """The stored identity, ready to decrypt and sign; ConfigError says why not."""
    try:
        with db.read() as s:
            row = x_chat.identity(s)
    except (OperationalError, ProgrammingError):  # a database from before X Chat: not migrated yet
        row = None
    if row is None:
        raise ConfigError("no X Chat identity is stored: run `dmbridge x-chat setup`")
    return Identity.load(row.user_id, row.key_version, unseal(row.sealed, secret_key))


def status(db: Database, secret_key: str) -> Status:
    """For ``doctor`` and ``x-chat status``: can this process open the stored identity?"""
    try:
        identity = load(db, secret_key)
    except ConfigError as exc:
        return Status(False, str(exc))
    return Status(True, f"X Chat identity of user {identity.user_id}, public key version {identity.key_version}")


def setup(db: Database, api: ChatApi, secret_key: str, *, replace: bool = False, now: float | None = None) -> Status:
    """Make the brand's identity, register its public keys with X and store it sealed.

    Refuses to replace a stored identity unless ``replace``: a new identity cannot read conversations
    whose keys were wrapped for the old one until the customers' apps set up new keys.
    """
    _fernet(secret_key)  # refuse before anything is registered with X
    user_id, _username = api.me()
    with db.read() as s:
        existing = x_chat.identity(s)
    if existing is not None and not replace:
        return Status(False, f"an X Chat identity for user {existing.user_id} is stored already (--replace)")
    identity, registration = new_identity(user_id)
    version = api.register_public_key(user_id, registration)
    identity = identity.with_version(version)
    sealed = seal(identity.export(), secret_key)
    with db.session() as s:
        x_chat.save_identity(s, user_id, version, sealed, time.time() if now is None else now)
    return Status(True, f"X Chat identity of user {user_id} registered, public key version {version}")


def restore(
    db: Database,
    api: ChatApi,
    secret_key: str,
    pin: str,
    *,
    chat_factory: Callable[[str], Any] | None = None,
    now: float | None = None,
) -> Status:
    """Take over an identity set up elsewhere (the X app's PIN-protected key backup, held by Juicebox realms):
    unlock it with its PIN, check it is the key X holds, then store it sealed like ``setup`` does.

    ``chat_factory`` builds chatxdk's ``Chat`` from the backup configuration X publishes with the public key
    (``juicebox_config``, passed verbatim as chatxdk recommends)."""
    from chat_xdk import Chat, guesses_remaining

    _fernet(secret_key)
    user_id, _username = api.me()
    keys = [k for k in api.public_keys(user_id, backup=True) if k.get("juicebox_config")]
    if not keys:
        return Status(False, f"X holds no key backup for user {user_id}: use `dmbridge x-chat setup` instead")
    newest = max(
        keys,
        key=lambda k: (
            int(str(k.get("public_key_version") or "0")) if str(k.get("public_key_version") or "").isdigit() else 0
        ),
    )
    version = str(newest.get("public_key_version") or "")
    chat = (chat_factory or Chat)(json.dumps(newest["juicebox_config"]))
    try:
        chat.unlock(pin)
    except ValueError as exc:
        left = guesses_remaining(exc)
        if left is not None:
            raise ConfigError(
                f"wrong PIN: {left} guesses left (at 0 the backup is locked for good)"
                if left
                else "wrong PIN: the backup is now locked"
            ) from exc
        raise ConfigError(f"the key backup could not be unlocked: {str(exc).splitlines()[0][:200]}") from exc
    if not chat.matches_registered_key(str(newest.get("public_key") or "")):
        return Status(False, f"the unlocked keys are not public key version {version} that X holds")
    chat.set_identity(user_id, version)
    identity = Identity(user_id, version, chat)
    sealed = seal(identity.export(), secret_key)
    with db.session() as s:
        x_chat.save_identity(s, user_id, version, sealed, time.time() if now is None else now)
    return Status(True, f"X Chat identity of user {user_id} restored from its key backup, public key version {version}")
