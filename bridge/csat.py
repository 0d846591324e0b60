"""CSAT (pure): the survey's quick replies and reading an answer.

An answer is a score from 1 to 5, written as a digit ("4", "4/5", "4. thanks!"), star emoji ("⭐⭐⭐⭐ great"),
a number emoji ("4️⃣"), or the payload of one of our quick replies (``CSAT:{survey}:{score}``, checked against
the survey it belongs to: a payload naming another survey or another score range counts for nothing). A plain
digit must stand alone or be followed by punctuation or a new line before any comment, so "2 items are missing"
is a message, not a score.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_ANSWER_CHARS = 2_000
"""A longer message is never an answer (it is a message for the team)."""
_PAYLOAD = re.compile(r"CSAT:(\d{1,18}):([1-5])")
_STARS = re.compile(r"([⭐★🌟]{1,5})(?![⭐★🌟])\s*(.*)", re.DOTALL)
_KEYCAP = re.compile(r"([1-5])\u20e3(?!\d)\s*(.*)", re.DOTALL)
_DIGIT = re.compile(
    r"([1-5])(?:\s*(?:/|out of|of)\s*5)?(?:\s*stars?|\s*[⭐★🌟]{1,5})?(?:\s*[.!,:;)\-–—]+\s*(?!\d)|\s*\n\s*|\s*$)(.*)",
    re.DOTALL | re.IGNORECASE,
)
_SEPARATORS = " \t\r\n.!,:;-–—"


@dataclass(frozen=True)
class Answer:
    score: int
    comment: str = ""


def payload(survey: int, score: int) -> str:
    return f"CSAT:{survey}:{score}"


def quick_replies(survey: int) -> tuple[tuple[str, str], ...]:
    """(title, payload) for 1 to 5; titles within Meta's 20 characters."""
    return tuple((f"{n} {'⭐' * n}", payload(survey, n)) for n in range(1, 6))


def parse(text: str, quick_reply: str = "", survey: int | None = None) -> Answer | None:
    """The score in a customer's message, or None when it is not an answer."""
    if quick_reply and survey is not None:
        m = _PAYLOAD.fullmatch(quick_reply)
        if m and int(m.group(1)) == survey:
            return Answer(int(m.group(2)))
    if len(text) > MAX_ANSWER_CHARS:
        return None
    said = text.replace("\ufe0f", "").strip()
    for pattern in (_STARS, _KEYCAP, _DIGIT):
        m = pattern.match(said)
        if m:
            score = len(m.group(1)) if pattern is _STARS else int(m.group(1))
            return Answer(score, m.group(2).lstrip(_SEPARATORS).rstrip())
    return None


def stars(score: int) -> str:
    """How the card and the thread show a score: ``⭐ 4/5``."""
    return f"⭐ {score}/5"
