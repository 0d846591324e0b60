"""What X's pay-per-use API costs today: calls counted by kind, kept per UTC day in ``x_usage``.

X bills reads per resource returned, writes per request and X Activity API webhook events per event
delivered (docs.x.com, "X API pay-per-usage pricing", 2026: DM Event read $0.010, User read $0.010,
DM Interaction create $0.015; webhook events at the price of their event type). Prices change; the
Developer Console has the bill — this is the estimate ``/healthz`` and ``dmbridge doctor`` show beside
``X_DAILY_BUDGET_USD``. Each process adds its own calls to the day's rows (``flush``), so several
``serve`` processes on one database add up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from bridge.store.common import insert_ignore
from bridge.store.db import Database
from bridge.store.tables import XUsage

PRICES_USD = {"events_read": 0.010, "read": 0.010, "send": 0.015, "chat_event": 0.010}
"""Per event read, per other read (a user, public keys), per send, per ``chat.received``/``chat.sent`` event."""


def day_of(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


def add(session: Session, day: str, counts: Mapping[str, int]) -> None:
    for kind, n in sorted(counts.items()):
        if n <= 0:
            continue
        insert_ignore(session, XUsage, dict(day=day, kind=kind, count=0))
        session.execute(
            update(XUsage).where(col(XUsage.day) == day, col(XUsage.kind) == kind).values(count=XUsage.count + n)
        )


def today(session: Session, now: float) -> dict[str, int]:
    rows = session.exec(select(XUsage).where(col(XUsage.day) == day_of(now))).all()
    return {r.kind: r.count for r in rows}


def total(counts: list[dict[str, int]]) -> dict[str, int]:
    """Several connectors' counts by kind, added up."""
    found: dict[str, int] = {}
    for one in counts:
        for kind, n in list(one.items()):
            found[kind] = found.get(kind, 0) + n
    return found


def estimate(counts: Mapping[str, int]) -> float:
    return round(sum(PRICES_USD.get(kind, 0.0) * n for kind, n in counts.items()), 3)


def summary(counts: Mapping[str, int], budget: float) -> dict[str, object]:
    """``/healthz``'s ``x_spend``: today's estimate, the budget (0: none), and the counts behind it."""
    spent = estimate(counts)
    found: dict[str, object] = {"today_usd": spent, "calls": dict(sorted(counts.items()))}
    if budget > 0:
        found |= {"budget_usd": budget, "over_budget": spent > budget}
    return found


class Meter:
    """Counts of this process not yet written: ``take`` them from the connector's ``calls`` and the webhook
    deliveries, ``flush`` adds them to today's row (a scheduler job, and at stop)."""

    def __init__(self, db: Database, sources: Callable[[], Mapping[str, int]], clock: Callable[[], float]) -> None:
        self.db, self.sources, self.clock = db, sources, clock
        self.written: dict[str, int] = {}
        self.deliveries = 0

    def flush(self) -> None:
        now = dict(self.sources())
        now["chat_event"] = now.get("chat_event", 0) + self.deliveries
        delta = {k: v - self.written.get(k, 0) for k, v in now.items() if v > self.written.get(k, 0)}
        if not delta:
            return
        with self.db.session() as s:
            add(s, day_of(self.clock()), delta)
        self.written = now
