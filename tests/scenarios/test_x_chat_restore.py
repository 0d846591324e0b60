"""``dmbridge x-chat setup --from-backup``: take over the identity the X app made, from its PIN-protected backup.

The backup itself lives with Juicebox realms, which cannot be reached from here: the realm is stood in for by
a chatxdk ``Chat`` that holds the keys the app registered and opens them only for the right PIN, answering a
wrong one the way chatxdk does (``Invalid PIN: guesses_remaining=N``). Everything else is real: X's published
``juicebox_config``, the key match, the sealing, and a connector that then decrypts with the restored keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chat_xdk import Chat

from bridge import x_chat_keys
from bridge.errors import ConfigError
from bridge.sandbox.x import BRAND_ID, XEmulator
from bridge.store import migrate
from bridge.store.db import Database
from connectors.xchat import convert
from connectors.xchat.api import ChatApi
from connectors.xchat.connector import XChatConnector

PIN = "2580"
REALMS = {"realms": [{"id": "0102", "address": "https://juicebox.example/"}], "register_threshold": 1}


class Realm:
    """The app's key backup: the identity's blob, released for the right PIN."""

    def __init__(self, blob: bytes, guesses: int = 5) -> None:
        self.blob, self.guesses, self.configs = blob, guesses, []  # type: ignore[var-annotated]

    def chat(self, config: str) -> Any:
        self.configs.append(json.loads(config))
        realm, chat = self, Chat()

        class Unlocking:
            def unlock(self, pin: str) -> None:
                if pin != PIN:
                    realm.guesses -= 1
                    raise ValueError(f"Invalid PIN: guesses_remaining={realm.guesses}")
                chat.import_keys(realm.blob)

            def __getattr__(self, name: str) -> Any:
                return getattr(chat, name)

        return Unlocking()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[XEmulator, Database, ChatApi, Realm]]:
    x = XEmulator()
    x.start()
    db = Database(f"sqlite:///{tmp_path / 'restore.db'}")
    migrate.upgrade(db)
    api = ChatApi(x.api_url, user_bearer_token=x.user_bearer_token)
    app_identity, registration = x_chat_keys.new_identity(BRAND_ID)  # what the X app did on the phone
    version = api.register_public_key(BRAND_ID, registration)
    x.chat.public_keys[BRAND_ID][-1]["juicebox_config"] = REALMS  # type: ignore[assignment]
    realm = Realm(app_identity.export())
    try:
        yield x, db, api, realm
    finally:
        assert version
        db.dispose()
        x.stop()


def test_the_apps_identity_is_restored_sealed_and_decrypts(world: tuple[XEmulator, Database, ChatApi, Realm]) -> None:
    x, db, api, realm = world
    key = x_chat_keys.new_secret_key()
    result = x_chat_keys.restore(db, api, key, PIN, chat_factory=realm.chat)
    assert result.ok, result.detail
    assert realm.configs == [REALMS]  # X's juicebox_config, passed verbatim
    connector = XChatConnector(api, lambda: x_chat_keys.load(db, key))
    connector.start()
    x.add_chat_customer("2001", "maria", "Maria")
    x.customer_chats("2001", "written to the keys the app made")
    sealed = [convert.sealed(e["encoded_event"], me=BRAND_ID, account="acme_help") for e in x.chat_events("2001")]
    texts = [o.message.text for o in connector.open(sealed) if o.message is not None]
    assert texts == ["written to the keys the app made"]


def test_a_wrong_pin_says_how_many_guesses_are_left_and_stores_nothing(
    world: tuple[XEmulator, Database, ChatApi, Realm],
) -> None:
    _x, db, api, realm = world
    key = x_chat_keys.new_secret_key()
    with pytest.raises(ConfigError, match="wrong PIN: 4 guesses left"):
        x_chat_keys.restore(db, api, key, "0000", chat_factory=realm.chat)
    assert not x_chat_keys.status(db, key).ok


def test_no_backup_at_x_points_to_setup(world: tuple[XEmulator, Database, ChatApi, Realm]) -> None:
    x, db, api, realm = world
    x.chat.public_keys[BRAND_ID][-1].pop("juicebox_config")
    result = x_chat_keys.restore(db, api, x_chat_keys.new_secret_key(), PIN, chat_factory=realm.chat)
    assert not result.ok and "x-chat setup" in result.detail
