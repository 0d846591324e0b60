"""HMAC-SHA256 signatures as webhook senders compute them, checked on the raw bytes in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac


def hex_sha256(secret: str, data: bytes) -> str:
    """``sha256=<hex>`` (Meta's X-Hub-Signature-256, dmbridge's generic webhook)."""
    return "sha256=" + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def base64_sha256(secret: str, data: bytes) -> str:
    """``sha256=<base64>`` (X's CRC answer and x-twitter-webhooks-signature)."""
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), data, hashlib.sha256).digest()).decode()


def same(expected: str, given: str | None) -> bool:
    """Constant-time comparison; a missing header never matches."""
    if not given:
        return False
    return hmac.compare_digest(expected.encode(), given.strip().encode())
