"""Records: conversations exported as JSONL, CSV or a readable HTML transcript (``dmbridge export``, ``/dm export``).

What is exported is what the database still holds: texts the retention job emptied are not messages any more,
and an erased customer's conversations carry no content. Customer text is hostile: the HTML escapes every
string (``html.escape`` with quotes) and has no script, no link and no remote resource; the CSV neutralises
cells a spreadsheet would run as a formula (a leading ``= + - @``, tab or CR gets a ``'``).
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from sqlmodel import Session

from bridge.domain import Platform
from bridge.store import records
from bridge.store.tables import Conversation

FORMATS = ("jsonl", "csv", "html")
CSV_FIELDS = ("conversation", "platform", "account", "customer_id", "customer_name", "at", "who", "author", "text")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_BREAKS = ("\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")  # str.splitlines' others


@dataclass(frozen=True)
class Message:
    at: float
    who: str  # customer | brand | agent | template
    author: str  # the agent's Slack id for agent and template messages, else ""
    text: str


@dataclass(frozen=True)
class Record:
    """One conversation and its messages, as exported."""

    number: int
    platform: str
    account: str
    customer_id: str
    customer_name: str
    customer_handle: str | None
    status: str
    inquiry_type: str | None
    created_at: float
    messages: list[Message] = field(default_factory=list)


def collect(
    s: Session,
    *,
    number: int | None = None,
    customer: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> list[Record]:
    """The conversations asked for, with their messages (within ``[since, until)`` when a range is given)."""
    found = records.conversations(s, number=number, customer=customer, since=since, until=until)
    return [record_of(c, records.messages(s, c.id or 0, since, until)) for c in found]


def record_of(conv: Conversation, rows: Iterable[tuple[float, str, str, str]]) -> Record:
    return Record(
        number=conv.id or 0,
        platform=conv.platform,
        account=conv.account,
        customer_id=conv.customer_id,
        customer_name=conv.customer_name,
        customer_handle=conv.customer_handle,
        status=conv.status,
        inquiry_type=conv.inquiry_type,
        created_at=conv.created_at,
        messages=[Message(*row) for row in rows],
    )


def _iso(ts: float, tz: tzinfo) -> str:
    return datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")


def to_jsonl(recs: list[Record], tz: tzinfo) -> str:
    """One JSON object per message (with its conversation's fields), one per line (the characters some readers
    take as line breaks are escaped, so a line is always one record)."""
    return "".join(_one_line(json.dumps(row, ensure_ascii=False)) + "\n" for row in _rows(recs, tz))


def _one_line(text: str) -> str:
    for char in _BREAKS:
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def to_csv(recs: list[Record], tz: tzinfo) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\r\n")  # RFC 4180: a lone CR is quoted
    writer.writeheader()
    for row in _rows(recs, tz):
        writer.writerow({k: safe_cell(str(row[k])) if isinstance(row[k], str) else row[k] for k in CSV_FIELDS})
    return out.getvalue()


def safe_cell(text: str) -> str:
    """A CSV cell a spreadsheet shows as text, never runs (OWASP's CSV injection advice)."""
    return "'" + text if text.startswith(_FORMULA) else text


def _rows(recs: list[Record], tz: tzinfo) -> Iterable[dict[str, object]]:
    for rec in recs:
        for m in rec.messages:
            yield {
                "conversation": rec.number,
                "platform": rec.platform,
                "account": rec.account,
                "customer_id": rec.customer_id,
                "customer_name": rec.customer_name,
                "at": _iso(m.at, tz),
                "who": m.who,
                "author": m.author,
                "text": m.text,
            }


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;color:#1d1c1d}"
    ".m{margin:.6rem 0;padding:.5rem .8rem;border-radius:.5rem;white-space:pre-wrap;overflow-wrap:anywhere}"
    ".customer{background:#f4f4f4}.agent,.template,.brand{background:#e8f1fb;margin-left:3rem}"
    ".meta{font-size:.8rem;color:#616061}"
)


def to_html(recs: list[Record], tz: tzinfo, title: str = "dmbridge transcript") -> str:
    """A self-contained page: every string escaped, no script, no link, no remote resource (a strict CSP too)."""
    e = _escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
    ]
    for rec in recs:
        handle = f" (@{e(rec.customer_handle)})" if rec.customer_handle else ""
        label = Platform(rec.platform).label if rec.platform in Platform._value2member_map_ else rec.platform
        parts.append(f"<h2>#{rec.number} · {e(label)} · {e(rec.customer_name)}{handle}</h2>")
        parts.append(
            f'<p class="meta">Account {e(rec.account)} · customer id {e(rec.customer_id)} · status {e(rec.status)}'
            + (f" · type {e(rec.inquiry_type)}" if rec.inquiry_type else "")
            + f" · opened {e(_iso(rec.created_at, tz))}</p>"
        )
        if not rec.messages:
            parts.append('<p class="meta">No stored messages (retention or erasure may have emptied them).</p>')
        for m in rec.messages:
            who = {"customer": rec.customer_name, "brand": f"@{rec.account} (outside Slack)"}.get(m.who, m.author)
            kind = " (template)" if m.who == "template" else ""
            parts.append(
                f'<div class="m {e(m.who)}"><div class="meta">{e(who)}{kind} · {e(_iso(m.at, tz))}</div>'
                f"{e(m.text)}</div>"
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def render(recs: list[Record], fmt: str, tz: tzinfo) -> str:
    if fmt == "jsonl":
        return to_jsonl(recs, tz)
    if fmt == "csv":
        return to_csv(recs, tz)
    if fmt == "html":
        return to_html(recs, tz)
    raise ValueError(f"format {fmt!r}: one of {', '.join(FORMATS)}")
