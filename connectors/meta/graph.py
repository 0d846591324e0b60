"""The Graph API over httpx, at the configured ``META_GRAPH_URL``; failures leave as dmbridge errors."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO, Any

import httpx

from bridge import tls
from bridge.domain import Platform
from bridge.errors import RetryLater, changes_state, unreachable
from connectors.meta import convert


class Graph:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 15.0,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        # the token goes in the Authorization header, so URLs (which httpx logs) carry no secret
        self.client = httpx.Client(
            base_url=base_url.rstrip("/") + "/", timeout=timeout, transport=transport, verify=tls.verifying()
        )
        self.clock = clock

    def get(self, platform: Platform, path: str, token: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        return self._call(platform, "GET", path, token, params=params)

    def post(self, platform: Platform, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(platform, "POST", path, token, json=body)

    def post_file(
        self, platform: Platform, path: str, token: str, form: dict[str, str], file: tuple[str, IO[bytes], str]
    ) -> dict[str, Any]:
        """A multipart POST: ``form`` fields and the file as ``filedata`` (name, open file, MIME type), streamed."""
        return self._call(platform, "POST", path, token, data=form, files={"filedata": file})

    def _call(self, platform: Platform, method: str, path: str, token: str, **kwargs: Any) -> dict[str, Any]:
        try:
            resp = self.client.request(method, path.lstrip("/"), headers={"Authorization": f"Bearer {token}"}, **kwargs)
        except httpx.HTTPError as exc:
            # a send that timed out or was cut may have been delivered: the retry waits for a late answer
            # (there is no check before it, README "Running more than one instance"); one never connected cannot
            raise unreachable("Meta", exc, changes=changes_state(method)) from exc
        if resp.status_code >= 400:
            raise convert.error_for(
                platform,
                resp.status_code,
                resp.content,
                {k.lower(): v for k, v in resp.headers.items()},
                self.clock(),
                changes=changes_state(method),
            )
        try:
            data = resp.json()
        except ValueError as exc:
            raise RetryLater(f"Meta answered {resp.status_code} with a body that is not JSON") from exc
        if not isinstance(data, dict):
            raise RetryLater("Meta answered with an unexpected body")
        return data

    def close(self) -> None:
        self.client.close()
