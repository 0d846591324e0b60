"""Pure text handling: Slack escaping and lossless splitting.

Customer text reaches Slack only through :func:`slack_escape`, which makes
``<!channel>``, ``<@U…>``, ``<!subteam^…>`` and ``<https://x|label>`` inert.
:func:`split_text` cuts long texts into contiguous pieces that join back to
the original, preferring paragraph, line and word boundaries and never cutting
inside a grapheme (combining marks, ZWJ sequences, skin tones, flags).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator

_SLACK_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def slack_escape(text: str) -> str:
    """Escape the three control characters of Slack mrkdwn, and nothing else."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_escaped_len(ch: str) -> int:
    """Cost of one character once escaped for Slack."""
    return len(_SLACK_ESCAPES.get(ch, ch))


def utf8_len(ch: str) -> int:
    """Cost of one character in UTF-8 bytes (Instagram counts bytes)."""
    return len(ch.encode("utf-8"))


def _joins_previous(ch: str) -> bool:
    """True when ``ch`` must stay with the character before it."""
    cp = ord(ch)
    return (
        unicodedata.combining(ch) != 0
        or unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or cp == 0x200D  # zero-width joiner
        or 0xFE00 <= cp <= 0xFE0F  # variation selectors
        or 0x1F3FB <= cp <= 0x1F3FF  # skin tone modifiers
        or 0xE0020 <= cp <= 0xE007F  # tag characters (subdivision flags)
    )


def is_safe_cut(text: str, pos: int) -> bool:
    """May ``text`` be cut between ``pos - 1`` and ``pos``?"""
    if pos <= 0 or pos >= len(text):
        return True
    if _joins_previous(text[pos]) or ord(text[pos - 1]) == 0x200D:
        return False
    # Regional indicators pair up into flags: cut only after an even run.
    if _is_regional(text[pos]) and _is_regional(text[pos - 1]):
        run = 0
        i = pos - 1
        while i >= 0 and _is_regional(text[i]):
            run += 1
            i -= 1
        return run % 2 == 0
    return True


def _is_regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def split_text(
    text: str, limit: int, cost: Callable[[str], int] | None = None, can_cut: Callable[[str, int], bool] = is_safe_cut
) -> list[str]:
    """Split ``text`` into pieces whose cost is at most ``limit`` each.

    The pieces are contiguous slices: ``"".join(pieces) == text``. A cut is
    placed after a paragraph break, else a line break, else a space, within
    the second half of the window; failing that at the last grapheme boundary;
    only a single grapheme longer than ``limit`` is ever cut inside. ``can_cut`` decides where a cut
    may go (graphemes by default; :func:`mrkdwn_safe_cut` also keeps Slack markup whole).
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    if not text:
        return [""]
    return list(_pieces(text, limit, cost or (lambda _ch: 1), can_cut))


def _pieces(text: str, limit: int, measure: Callable[[str], int], can_cut: Callable[[str, int], bool]) -> Iterator[str]:
    """The pieces of :func:`split_text`, one at a time (a caller wanting the first reads no further)."""
    start = 0
    n = len(text)
    while start < n:
        used = 0
        end = start
        while end < n:
            c = measure(text[end])
            if used + c > limit:
                break
            used += c
            end += 1
        if end >= n:
            yield text[start:]
            return
        if end == start:  # one character costs more than the limit: it still has to go somewhere
            end = start + 1
        piece = text[start : _best_cut(text, start, end, can_cut)]
        yield piece
        start += len(piece)


def _best_cut(text: str, start: int, end: int, can_cut: Callable[[str, int], bool]) -> int:
    """The cut position in ``(start, end]`` for a window ending at ``end``."""
    floor = start + max(1, (end - start) // 2)
    window = text[start:end]
    for sep in ("\n\n", "\n", " "):
        i = window.rfind(sep)
        if i >= 0 and start + i + len(sep) >= floor:
            cut = start + i + len(sep)
            if can_cut(text, cut):
                return cut
    cut = end
    while cut > start + 1 and not can_cut(text, cut):
        cut -= 1
    return cut if can_cut(text, cut) else end


def mrkdwn_safe_cut(text: str, pos: int) -> bool:
    """A grapheme boundary that is not inside ``&amp;``-style entities nor ``<…>`` markup (links, mentions)."""
    if not is_safe_cut(text, pos):
        return False
    lo = max(0, pos - MAX_MARKUP)
    if text.rfind("<", lo, pos) > text.rfind(">", lo, pos):
        return False
    amp = text.rfind("&", max(0, pos - 4), pos)
    return amp < 0 or text.rfind(";", amp, pos) >= 0 or not _ENTITY.match(text, amp)


MAX_MARKUP = 1000  # longest ``<…>`` we write (a link with its label)
_ENTITY = re.compile(r"&(amp|lt|gt);")
ELLIPSIS = "…"


def clip(
    text: str, limit: int, cost: Callable[[str], int] | None = None, can_cut: Callable[[str, int], bool] = is_safe_cut
) -> str:
    """``text`` if it fits ``limit``, else its first piece and a visible "…" (never inside a grapheme)."""
    measure = cost or (lambda _ch: 1)
    used = 0
    for ch in text:  # stop measuring at the limit: a 60,000-character text costs no more than a short one
        used += measure(ch)
        if used > limit:
            break
    else:
        return text
    return next(_pieces(text, max(1, limit - 1), measure, can_cut)).rstrip() + ELLIPSIS


def clip_escaped(text: str, limit: int) -> str:
    """Customer text escaped for mrkdwn in at most ``limit`` characters, cut visibly when longer."""
    return slack_escape(clip(text, limit, slack_escaped_len))
