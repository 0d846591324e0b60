"""TLS contexts shared by every HTTP client the bridge makes.

Building a verifying context loads a whole CA bundle: about 1.5 MB of memory and 15–30 ms of CPU each time.
httpx builds one per client and Python's urllib (under slack_sdk's WebClient) one per request, so a serving
process paid that for each of its clients at start and again for every Slack call. These are built once per CA
setting and reused; the setting is read when asked, so a changed ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` takes
effect for clients made after it (a CA bundle updated on disk needs a restart).
"""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Iterable
from functools import lru_cache

import certifi


class SharedContext(ssl.SSLContext):
    """A client context that many connections, in many threads, are made from. httpcore sets the ALPN
    protocols on the context before every new connection; here that is done once, under a lock, and repeating
    the same list changes nothing, so no connection is built while another thread rewrites the context."""

    _lock = threading.Lock()
    _alpn: tuple[str, ...] | None = None

    def set_alpn_protocols(self, alpn_protocols: Iterable[str]) -> None:
        wanted = tuple(alpn_protocols)
        with self._lock:
            if wanted != self._alpn:
                super().set_alpn_protocols(list(wanted))
                self._alpn = wanted


def _client_context() -> SharedContext:
    """What ``ssl.create_default_context()`` makes for verifying servers, as a ``SharedContext``."""
    context = SharedContext(ssl.PROTOCOL_TLS_CLIENT)
    context.verify_mode, context.check_hostname = ssl.CERT_REQUIRED, True
    return context


@lru_cache(maxsize=8)
def _verifying(cafile: str | None, capath: str | None) -> SharedContext:
    context = _client_context()
    if cafile or capath:
        context.load_verify_locations(cafile=cafile, capath=capath)
    else:
        context.load_verify_locations(cafile=certifi.where())
    return context


@lru_cache(maxsize=8)
def _system(_setting: tuple[str | None, str | None]) -> SharedContext:
    context = _client_context()
    context.load_default_certs(ssl.Purpose.SERVER_AUTH)  # OpenSSL's default paths, SSL_CERT_FILE/_DIR included
    return context


def _setting() -> tuple[str | None, str | None]:
    return os.environ.get("SSL_CERT_FILE") or None, os.environ.get("SSL_CERT_DIR") or None


def verifying() -> ssl.SSLContext:
    """What httpx verifies with by default (``SSL_CERT_FILE``, else ``SSL_CERT_DIR``, else certifi's bundle), built
    once: pass as ``httpx.Client(verify=verifying())``."""
    cafile, capath = _setting()
    return _verifying(cafile, None if cafile else capath)


def system() -> ssl.SSLContext:
    """What Python's urllib verifies with by default (the system's CAs, as ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``
    point OpenSSL), built once per setting: for slack_sdk's ``WebClient(ssl=...)``."""
    return _system(_setting())
