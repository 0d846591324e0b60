"""Opt-out words (pure): is a customer's message exactly one of ``[opt_out] words``?

Case, whitespace and punctuation are ignored ("Stop!", " STOP ", "opt-out" match "stop" and "opt out");
anything more than the word ("stop sending me the wrong size") is an ordinary message. A message far longer
than any word is refused before it is normalised, so a 10,000-character message costs nothing.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

MAX_CHARS = 100
"""Longer messages are never an opt-out (the longest default is a few words)."""


def normalise(text: str) -> str:
    """Case-folded, punctuation and symbols as spaces, whitespace collapsed."""
    kept = (" " if unicodedata.category(c)[0] in "PSZC" else c for c in unicodedata.normalize("NFC", text).casefold())
    return " ".join("".join(kept).split())


def is_opt_out(text: str, words: Iterable[str]) -> bool:
    if len(text) > MAX_CHARS:
        return False
    said = normalise(text)
    return bool(said) and said in {normalise(w) for w in words}
