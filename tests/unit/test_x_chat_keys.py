"""The brand's X Chat identity at rest (bridge.x_chat_keys): sealed with Fernet under DMBRIDGE_SECRET_KEY,
refused with a reason when the key is wrong, missing or malformed, reported by ``status`` on any database,
and never written in the clear — not in the table, not in a log record."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import select

from bridge import x_chat_keys
from bridge.errors import ConfigError
from bridge.sandbox.x import BRAND_ID, XEmulator
from bridge.store import migrate
from bridge.store.db import Database
from bridge.store.tables import XChatIdentity
from connectors.xchat.api import ChatApi

SECRET = x_chat_keys.new_secret_key()
MALFORMED_KEYS = {
    "words": "not-a-key",
    "33-bytes": "A" * 44,
    "31-bytes": "A" * 42 + "==",
    "not-ascii": "é" * 44,
    "cut-short": SECRET[:-2],
    "unpadded": SECRET.rstrip("="),
    "16-bytes": base64.urlsafe_b64encode(b"k" * 16).decode(),
}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'keys.db'}")
    migrate.upgrade(database)
    yield database
    database.dispose()


@pytest.fixture
def bare_db(tmp_path: Path) -> Iterator[Database]:
    """A database nobody migrated (a bridge from before X Chat, or a wrong DATABASE_URL)."""
    database = Database(f"sqlite:///{tmp_path / 'bare.db'}")
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def emu() -> Iterator[XEmulator]:
    x = XEmulator()
    x.start()
    try:
        yield x
    finally:
        x.stop()


def api(emu: XEmulator) -> ChatApi:
    return ChatApi(emu.api_url, user_bearer_token=emu.user_bearer_token)


def stored(db: Database) -> list[XChatIdentity]:
    with db.read() as s:
        return list(s.exec(select(XChatIdentity)).all())


def spellings(blob: bytes) -> list[str]:
    """The ways a 64-byte key blob could show up in text."""
    return [
        blob.hex(),
        blob.hex().upper(),
        base64.b64encode(blob).decode(),
        base64.b64encode(blob).decode().rstrip("="),
        base64.urlsafe_b64encode(blob).decode().rstrip("="),
        repr(blob),
        str(list(blob)),
    ]


# --- seal / unseal -----------------------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=1, max_size=256))
def test_seal_then_unseal_gives_the_blob_back(blob: bytes) -> None:
    sealed = x_chat_keys.seal(blob, SECRET)
    assert sealed.startswith("gAAAA")  # a Fernet token (version byte 0x80), text-safe
    assert x_chat_keys.unseal(sealed, SECRET) == blob
    assert x_chat_keys.seal(blob, SECRET) != sealed  # a fresh IV each time
    if len(blob) >= 8:
        assert not any(s in sealed for s in spellings(blob))


def test_a_different_secret_key_refuses_with_a_reason() -> None:
    sealed = x_chat_keys.seal(b"\x01" * 64, SECRET)
    with pytest.raises(ConfigError, match="DMBRIDGE_SECRET_KEY") as refused:
        x_chat_keys.unseal(sealed, x_chat_keys.new_secret_key())
    assert "cannot be opened" in str(refused.value)
    assert SECRET not in str(refused.value)


def test_a_tampered_token_refuses_with_a_reason() -> None:
    sealed = x_chat_keys.seal(b"\x01" * 64, SECRET)
    flipped = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    with pytest.raises(ConfigError, match="DMBRIDGE_SECRET_KEY"):
        x_chat_keys.unseal(flipped, SECRET)
    with pytest.raises(ConfigError, match="DMBRIDGE_SECRET_KEY"):
        x_chat_keys.unseal("not a token at all", SECRET)


def test_an_empty_key_refuses_and_says_how_to_make_one() -> None:
    with pytest.raises(ConfigError, match="DMBRIDGE_SECRET_KEY is not set") as refused:
        x_chat_keys.seal(b"blob", "")
    assert "x-chat keygen" in str(refused.value)
    with pytest.raises(ConfigError, match="DMBRIDGE_SECRET_KEY is not set"):
        x_chat_keys.unseal(x_chat_keys.seal(b"blob", SECRET), "")


@pytest.mark.parametrize("key", MALFORMED_KEYS.values(), ids=MALFORMED_KEYS.keys())
def test_a_malformed_key_refuses_and_is_not_echoed(key: str) -> None:
    for attempt in (
        lambda: x_chat_keys.seal(b"blob", key),
        lambda: x_chat_keys.unseal(x_chat_keys.seal(b"blob", SECRET), key),
    ):
        with pytest.raises(ConfigError, match="DMBRIDGE_SECRET_KEY") as refused:
            attempt()
        assert key.strip() not in str(refused.value)


def test_new_secret_keys_are_fresh_fernet_keys() -> None:
    keys = {x_chat_keys.new_secret_key() for _ in range(5)}
    assert len(keys) == 5
    assert all(len(base64.urlsafe_b64decode(k)) == 32 for k in keys)


# --- status and load on databases without an identity -------------------------------------------------------------


def test_status_on_an_empty_migrated_database_says_to_run_setup(db: Database) -> None:
    state = x_chat_keys.status(db, SECRET)
    assert not state.ok and "dmbridge x-chat setup" in state.detail
    with pytest.raises(ConfigError, match="dmbridge x-chat setup"):
        x_chat_keys.load(db, SECRET)


def test_status_on_a_database_never_migrated_says_to_run_setup(bare_db: Database) -> None:
    state = x_chat_keys.status(bare_db, SECRET)
    assert not state.ok and "dmbridge x-chat setup" in state.detail
    with pytest.raises(ConfigError, match="dmbridge x-chat setup"):
        x_chat_keys.load(bare_db, SECRET)


# --- setup against the X emulator --------------------------------------------------------------------------------


def test_setup_stores_only_the_sealed_blob_and_logs_nothing_of_it(
    db: Database, emu: XEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        result = x_chat_keys.setup(db, api(emu), SECRET)
        state = x_chat_keys.status(db, SECRET)
        identity = x_chat_keys.load(db, SECRET)
    assert result.ok and state.ok, (result, state)
    assert identity.user_id == BRAND_ID and f"user {BRAND_ID}" in state.detail
    assert identity.key_version in [k["public_key_version"] for k in emu.chat.public_keys[BRAND_ID]]
    blob = identity.export()
    assert len(blob) == 64

    [row] = stored(db)
    assert row.user_id == BRAND_ID and row.key_version == identity.key_version
    assert row.sealed.startswith("gAAAA") and x_chat_keys.unseal(row.sealed, SECRET) == blob
    assert not any(s in row.sealed for s in spellings(blob))
    assert SECRET not in row.sealed

    secrets = [SECRET, *spellings(blob), row.sealed]
    assert caplog.records  # the capture did see the calls to X
    for record in caplog.records:
        text = record.getMessage() + repr(record.args) + (record.exc_text or "")
        assert not any(s in text for s in secrets), record.getMessage()[:200]
    for text in (result.detail, state.detail):
        assert not any(s in text for s in secrets)


def test_setup_refuses_a_malformed_key_before_registering_anything(db: Database, emu: XEmulator) -> None:
    before = len(emu.chat.public_keys.get(BRAND_ID, []))
    with pytest.raises(ConfigError, match="DMBRIDGE_SECRET_KEY"):
        x_chat_keys.setup(db, api(emu), "not-a-key")
    with pytest.raises(ConfigError, match="DMBRIDGE_SECRET_KEY is not set"):
        x_chat_keys.setup(db, api(emu), "")
    assert len(emu.chat.public_keys.get(BRAND_ID, [])) == before
    assert stored(db) == []


def test_a_stored_identity_is_kept_unless_replaced_and_a_wrong_key_cannot_load_it(db: Database, emu: XEmulator) -> None:
    assert x_chat_keys.setup(db, api(emu), SECRET).ok
    [first] = stored(db)
    again = x_chat_keys.setup(db, api(emu), SECRET)
    assert not again.ok and "--replace" in again.detail
    assert stored(db) == [first]

    other = x_chat_keys.new_secret_key()
    state = x_chat_keys.status(db, other)
    assert not state.ok and "DMBRIDGE_SECRET_KEY" in state.detail
    with pytest.raises(ConfigError, match="DMBRIDGE_SECRET_KEY"):
        x_chat_keys.load(db, other)
    for bad in ("", "not-a-key"):
        assert not x_chat_keys.status(db, bad).ok

    replaced = x_chat_keys.setup(db, api(emu), SECRET, replace=True)
    assert replaced.ok
    [row] = stored(db)
    assert row.sealed != first.sealed
    assert x_chat_keys.load(db, SECRET).export() != x_chat_keys.unseal(first.sealed, SECRET)
