"""X Chat media requests against X's OpenAPI: the emulator refuses the uploads X refuses (unknown or missing
fields, a size no chatxdk stream has, another's conversation, segments out of order or off base64, a finalize
whose parts or bytes do not add up, a second finalize, an unknown session) and the download answers only the
conversation's own media; a token without ``media.write`` is refused. The connector's own media requests are
checked with the rest of the flow in ``test_x_chat_spec``."""

from __future__ import annotations

import base64
import os
import time
from typing import Any

import httpx
from chat_xdk import encrypted_stream_size

from bridge.sandbox.x import BRAND_ID
from connectors.xchat import convert
from tests.contract.test_x_chat_spec import JDOE, MARIA, Flow, call, flow, invalid_request, pytestmark, spec

__all__ = ["flow", "pytestmark", "spec"]  # the module's fixtures and skip, shared


def new_upload(flow: Flow, size: int = 100) -> tuple[str, dict[str, Any], bytes]:
    """An upload session of the emulator, its ids as a body, and ``size`` bytes' worth of ciphertext."""
    conversation = str(convert.canonical(MARIA, BRAND_ID))
    total = int(encrypted_stream_size(size))
    resp = call(
        flow, "POST", "/2/chat/media/upload/initialize", {"conversation_id": conversation, "total_bytes": total}
    )
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    ids = {"conversation_id": conversation, "media_hash_key": data["media_hash_key"]}
    return data["session_id"], ids, os.urandom(total)


def test_an_upload_x_would_refuse_is_refused(spec: dict[str, Any], flow: Flow) -> None:
    init = "/2/chat/media/upload/initialize"
    conversation = str(convert.canonical(MARIA, BRAND_ID))
    invalid_request(spec, call(flow, "POST", init, {"conversation_id": conversation, "total_bytes": 10, "x": 1}))
    invalid_request(spec, call(flow, "POST", init, {"conversation_id": conversation, "total_bytes": 1}))  # no stream
    invalid_request(spec, call(flow, "POST", init, {"conversation_id": conversation}))
    assert call(flow, "POST", init, {"conversation_id": f"{MARIA}-{JDOE}", "total_bytes": 100}).status_code == 403
    session, ids, blob = new_upload(flow)
    append = f"/2/chat/media/upload/{session}/append"
    segment = ids | {"media": base64.b64encode(blob[:50]).decode()}
    invalid_request(spec, call(flow, "POST", append, segment | {"segment_index": 1}))  # out of order
    invalid_request(spec, call(flow, "POST", append, segment | {"segment_index": 0, "media": "%%%"}))
    invalid_request(spec, call(flow, "POST", append, segment | {"segment_index": 0, "media_hash_key": "other"}))
    assert call(flow, "POST", append, segment | {"segment_index": 0}).status_code == 200
    finalize = f"/2/chat/media/upload/{session}/finalize"
    invalid_request(spec, call(flow, "POST", finalize, ids | {"num_parts": "1"}))  # bytes short of total_bytes
    rest = ids | {"media": base64.b64encode(blob[50:]).decode(), "segment_index": 1}
    assert call(flow, "POST", append, rest).status_code == 200
    invalid_request(spec, call(flow, "POST", finalize, ids | {"num_parts": "3"}))
    invalid_request(spec, call(flow, "POST", finalize, ids | {"num_parts": 2}))  # a numeric string, says the spec
    assert call(flow, "POST", finalize, ids | {"num_parts": "2"}).status_code == 200
    invalid_request(spec, call(flow, "POST", finalize, ids | {"num_parts": "2"}))  # once
    assert call(flow, "POST", "/2/chat/media/upload/1/append", segment | {"segment_index": 0}).status_code == 404
    got = call(flow, "GET", f"/2/chat/media/{ids['conversation_id']}/{ids['media_hash_key']}")
    assert got.status_code == 200 and got.content == blob
    other = str(convert.canonical(JDOE, BRAND_ID))
    assert call(flow, "GET", f"/2/chat/media/{other}/{ids['media_hash_key']}").status_code == 404


def test_the_media_endpoints_need_media_write(flow: Flow) -> None:
    token = "token-without-media-write"
    flow.x.oauth.access[token] = (time.time() + 3600, "dm.read dm.write tweet.read users.read offline.access")
    resp = httpx.post(
        flow.x.api_url.rstrip("/") + "/2/chat/media/upload/initialize",
        json={"conversation_id": str(convert.canonical(MARIA, BRAND_ID)), "total_bytes": 100},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status_code == 403 and "media.write" in resp.text
