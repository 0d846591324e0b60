"""Customer-supplied links and handles, checked before they reach Slack markup (pure).

A URL goes inside ``<url|label>`` on the card and into ``icon_url``: only ``https`` URLs with a host and
none of ``<``, ``>``, ``|``, whitespace or control characters are kept; anything else is dropped (the
card then shows no link). Handles follow each platform's own rules, so a forged one cannot smuggle
markup into ``https://x.com/{handle}``.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from bridge.domain import Platform

MAX_URL = 2000
# X: "Your username cannot be longer than 15 characters … can only contain alphanumeric characters
# (letters A-Z, numbers 0-9) with the exception of underscores".
X_HANDLE = re.compile(r"[A-Za-z0-9_]{1,15}")
# Instagram: at most 30 characters, letters, numbers, periods and underscores.
INSTAGRAM_HANDLE = re.compile(r"[A-Za-z0-9._]{1,30}")
# Generic sources document none: a short run of visible characters, no markup.
GENERIC_HANDLE = re.compile(r"[^\s<>|&*~`@]{1,64}")


def safe_https_url(url: object) -> str | None:
    """``url`` when it is an https URL that cannot break out of Slack's ``<…|…>``; else None."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        return None
    if any(c in "<>|" or c.isspace() or unicodedata.category(c)[0] in "CZ" for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() != "https" or not parts.hostname or parts.username or parts.password:
        return None
    return url


def valid_handle(platform: Platform | str, handle: object) -> str | None:
    """``handle`` (without "@") when it follows the platform's username rules; else None."""
    if not isinstance(handle, str):
        return None
    name = handle.removeprefix("@")
    if any(unicodedata.category(c)[0] in "CZ" for c in name):  # controls, bidi overrides, odd spaces
        return None
    rule = {Platform.X: X_HANDLE, Platform.INSTAGRAM: INSTAGRAM_HANDLE}.get(Platform(platform), GENERIC_HANDLE)
    return name if rule.fullmatch(name) else None


def profile_url(platform: Platform | str, handle: str | None) -> str | None:
    """The public profile page of a valid handle, where the platform has one."""
    name = valid_handle(platform, handle) if handle else None
    if name is None:
        return None
    base = {Platform.X: "https://x.com/", Platform.INSTAGRAM: "https://www.instagram.com/"}.get(Platform(platform))
    return base + name if base else None
