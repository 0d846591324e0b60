"""Users lookup in chunks of at most 100 ids, against the X emulator that refuses more (issue 10 item 5)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bridge.sandbox.x import BRAND_ID, XEmulator
from connectors.x.connector import XConnector

NEW_PARTICIPANTS = 150


@pytest.fixture
def x() -> Iterator[XEmulator]:
    emulator = XEmulator()
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


def connector(x: XEmulator) -> XConnector:
    c = XConnector(
        base_url=x.api_url,
        consumer_key=x.consumer_key,
        consumer_secret=x.consumer_secret,
        access_token=x.access_token,
        access_token_secret=x.access_token_secret,
    )
    c.start()
    return c


def test_a_backlog_with_150_new_participants_is_polled(x: XEmulator) -> None:
    c = connector(x)
    cursor = c.poll(None).cursor
    people = [str(1300000000000000000 + i) for i in range(NEW_PARTICIPANTS)]
    for i, person in enumerate(people):
        x.add_user(person, f"user{i}", f"User {i}")
        x.brand_sends_from_app(person, f"hello {i}")  # only our side spoke: the customer must be looked up
    batch = c.poll(cursor)
    assert len(batch.messages) == NEW_PARTICIPANTS
    assert {m.customer.name for m in batch.messages} == {f"User {i}" for i in range(NEW_PARTICIPANTS)}
    lookups = [r for r in x.requests if r[1] == "/2/users"]
    assert [status for *_, status in lookups] == [200, 200]  # 100 + 50
    assert int(batch.cursor or 0) > int(cursor or 0)


def test_the_emulator_refuses_more_than_100_ids_and_unknown_fields(x: XEmulator) -> None:
    auth = {"Authorization": f"Bearer {x.user_bearer_token}"}
    ids = ",".join(str(1300000000000000000 + i) for i in range(101))
    resp = httpx.get(x.api_url + "/2/users", params={"ids": ids}, headers=auth)
    assert resp.status_code == 400 and resp.json()["title"] == "Invalid Request"
    resp = httpx.get(x.api_url + "/2/users", params={"ids": BRAND_ID, "user.fields": "name,shoe_size"}, headers=auth)
    assert resp.status_code == 400 and resp.json()["errors"][0]["parameters"] == {"user.fields": ["shoe_size"]}
    resp = httpx.get(x.api_url + "/2/dm_events", params={"dm_event.fields": "sender_id"}, headers=auth)
    assert resp.status_code == 400
    resp = httpx.get(x.api_url + "/2/dm_events", params={"since_id": "1"}, headers=auth)
    assert resp.status_code == 400
    resp = httpx.get(
        x.api_url + "/2/dm_events", params={"expansions": "sender_id", "user.fields": "username"}, headers=auth
    )
    assert resp.status_code == 200
