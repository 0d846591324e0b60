"""connectors.meta.graph: which transport failures may have reached Meta."""

from __future__ import annotations

import httpx
import pytest

from bridge.domain import Platform
from bridge.errors import RetryLater
from connectors.meta.graph import Graph


def _graph(error: Exception) -> Graph:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    return Graph("https://graph.example/v21.0", transport=httpx.MockTransport(fail))


@pytest.mark.parametrize(
    ("error", "uncertain"),
    [
        (httpx.ReadTimeout("read"), True),
        (httpx.RemoteProtocolError("cut"), True),
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("connect"), False),
    ],
)
def test_a_send_that_may_have_arrived_is_uncertain(error: Exception, uncertain: bool) -> None:
    with pytest.raises(RetryLater) as caught:
        _graph(error).post(Platform.MESSENGER, "me/messages", "token", {"recipient": {"id": "1"}})
    assert caught.value.uncertain is uncertain


def test_a_failed_read_is_never_uncertain() -> None:
    with pytest.raises(RetryLater) as caught:
        _graph(httpx.ReadTimeout("read")).get(Platform.MESSENGER, "123", "token")
    assert caught.value.uncertain is False
