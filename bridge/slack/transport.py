"""slack_sdk's WebClient over kept-alive connections.

slack_sdk's synchronous WebClient sends each call with ``urllib.request.urlopen``: a new TCP connection and a new
TLS handshake for every Web API call (a round trip or two to Slack and a few milliseconds of CPU each), and it has
no setting to keep connections. ``PooledWebClient`` keeps slack_sdk for everything it does (the typed methods,
how each method's arguments are encoded, the headers, the answer's parsing and errors) and replaces only the one
step that moves the bytes: the request slack_sdk built goes out on a pooled ``httpx.Client``, and the answer
comes back in the shape slack_sdk reads (an error status as urllib's ``HTTPError``, which slack_sdk turns into
``SlackApiError`` with the status, headers and body). A connection Slack closed while idle fails as an
``httpx`` error, which ``bridge.errors`` already sorts into sent or not sent.
"""

from __future__ import annotations

import http.client
import io
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackRequestError

from bridge import tls


def _message(headers: httpx.Headers) -> http.client.HTTPMessage:
    """The answer's headers as urllib gives them (slack_sdk reads ``get_content_charset()`` and ``items()``)."""
    message = http.client.HTTPMessage()
    for name, value in headers.multi_items():
        message[name] = value
    return message


class PooledWebClient(WebClient):
    """A ``WebClient`` whose calls share kept-alive connections (thread-safe: one pool for every thread)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # a proxy given here is used for every call; else httpx reads HTTPS_PROXY / HTTP_PROXY and NO_PROXY from
        # the environment as urllib did (slack_sdk copies the proxy variable into ``self.proxy``, but a proxy
        # passed to httpx would ignore NO_PROXY); cookies are refused, as urllib kept none
        self.http = httpx.Client(
            verify=self.ssl or tls.system(),
            timeout=self.timeout,
            proxy=kwargs.get("proxy"),
            cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),
        )

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        if not url.lower().startswith(("https://", "http://")):  # slack_sdk refuses other schemes too
            raise SlackRequestError(f"Invalid URL detected: {url}")
        body = req.data
        if body is not None and not isinstance(body, bytes):
            raise SlackRequestError("request body is not bytes")
        headers = {name: str(value) for name, value in req.header_items()}
        resp = self.http.request(req.get_method(), req.full_url, content=body, headers=headers)
        message = _message(resp.headers)
        if resp.status_code >= 400:
            raise HTTPError(req.full_url, resp.status_code, resp.reason_phrase, message, io.BytesIO(resp.content))
        if message.get_content_type() == "application/gzip":  # admin.analytics.getFile, as slack_sdk reads it
            return {"status": resp.status_code, "headers": message, "body": resp.content}
        charset = message.get_content_charset() or "utf-8"
        return {"status": resp.status_code, "headers": message, "body": resp.content.decode(charset)}

    def close(self) -> None:
        self.http.close()
