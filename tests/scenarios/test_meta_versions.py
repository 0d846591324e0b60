"""The Graph version is whatever META_GRAPH_URL says; the Meta emulator serves every /vNN.N prefix, as Graph does."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bridge.config import Settings
from bridge.domain import Platform
from bridge.errors import AuthFailed
from bridge.sandbox.harness import MESSENGER_CUSTOMER, PAGE_ID, PAGE_TOKEN, start_meta
from bridge.sandbox.meta import VERSION, MetaEmulator
from connectors.meta import convert
from connectors.meta.graph import Graph


@pytest.fixture
def meta() -> Iterator[MetaEmulator]:
    emulator = start_meta()
    try:
        yield emulator
    finally:
        emulator.stop()


def test_default_graph_version_is_current() -> None:
    assert Settings(_env_file=None).meta_graph_url.endswith("/" + VERSION)  # type: ignore[call-arg]
    assert VERSION == "v26.0"


@pytest.mark.parametrize("version", ["v23.0", "v26.0", "v21.0"])
def test_product_graph_client_works_under_a_non_default_version(meta: MetaEmulator, version: str) -> None:
    graph = Graph(f"{meta.http.url}/{version}")
    try:
        assert graph.get(Platform.MESSENGER, "app", PAGE_TOKEN)["id"] == meta.app_id
        assert graph.get(Platform.MESSENGER, "me", PAGE_TOKEN) == {"id": PAGE_ID, "name": "Acme Support"}
        meta.message_event(MESSENGER_CUSTOMER, "hi")  # the customer wrote just now: the 24-hour window is open
        body = convert.send_body(MESSENGER_CUSTOMER, "Hello from " + version, convert.Response())
        assert graph.post(Platform.MESSENGER, f"{PAGE_ID}/messages", PAGE_TOKEN, body)["message_id"]
        assert meta.received_by(MESSENGER_CUSTOMER) == ["Hello from " + version]
        with pytest.raises(AuthFailed):
            graph.get(Platform.MESSENGER, "me", "not-a-token")
    finally:
        graph.close()


def test_only_version_prefixes_are_graph_paths(meta: MetaEmulator) -> None:
    headers = {"Authorization": f"Bearer {PAGE_TOKEN}"}
    assert httpx.get(f"{meta.http.url}/app", headers=headers).status_code == 404
    assert httpx.get(f"{meta.http.url}/21.0/app", headers=headers).status_code == 404
    assert httpx.get(f"{meta.http.url}/v24.0/app", headers=headers).status_code == 200


def test_page_subscription_round_trip(meta: MetaEmulator) -> None:
    url = f"{meta.graph_url}/{PAGE_ID}/subscribed_apps"
    headers = {"Authorization": f"Bearer {PAGE_TOKEN}"}
    assert httpx.get(url, headers=headers).json() == {"data": []}
    bad = httpx.post(url, headers=headers, params={"subscribed_fields": "messages,mesages"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == 100
    ok = httpx.post(url, headers=headers, params={"subscribed_fields": "messages,message_echoes"})
    assert ok.json() == {"success": True}
    [app] = httpx.get(url, headers=headers).json()["data"]
    assert app["id"] == meta.app_id and app["subscribed_fields"] == ["messages", "message_echoes"]
    assert httpx.get(url, headers={"Authorization": "Bearer nope"}).json()["error"]["code"] == 190
