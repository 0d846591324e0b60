"""TLS contexts shared by every HTTP client the bridge makes.

Building a verifying context loads a whole CA bundle: about 1.5 MB of memory and 15–30 ms of CPU each time.
httpx builds one per client and Python's urllib (under slack_sdk's WebClient) one per request, so a serving
process paid that for each of its clients at start and again for every Slack call. These are built once per CA
setting and reused; the setting is read when asked, so a changed ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` takes
effect for clients made after it."""

from __future__ import annotations

import os
import ssl
from functools import lru_cache

import certifi


@lru_cache(maxsize=8)
def _context(cafile: str | None, capath: str | None, system: bool) -> ssl.SSLContext:
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    return ssl.create_default_context() if system else ssl.create_default_context(cafile=certifi.where())


def _setting() -> tuple[str | None, str | None]:
    cafile = os.environ.get("SSL_CERT_FILE") or None
    return cafile, None if cafile else os.environ.get("SSL_CERT_DIR") or None


def verifying() -> ssl.SSLContext:
    """What httpx verifies with by default (``SSL_CERT_FILE``, else ``SSL_CERT_DIR``, else certifi's bundle), built
    once: pass as ``httpx.Client(verify=verifying())``."""
    return _context(*_setting(), system=False)


def system() -> ssl.SSLContext:
    """What Python's urllib verifies with by default (the ``SSL_CERT_*`` settings, else the system's CAs), built
    once: for slack_sdk's ``WebClient(ssl=...)``."""
    return _context(*_setting(), system=True)
