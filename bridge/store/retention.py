"""The retention job: content older than ``[retention]`` allows is emptied; rows and dedupe keys stay.

What is pruned (``bridge.toml_config.Retention``):

- processed Slack events: ``slack_event.payload`` → ``{}`` after ``events``
  (default 7d); the row stays (``dedupe_key``, ``event_id``, times, outcome);
- sent deliveries: ``outbox.payload`` → ``{}`` after ``outbox`` (30d); the row
  stays (``dedupe_key``, kind, lane, state, ``result``, i.e. the Slack ts);
- customers' messages: ``inbound_event.text`` → ``""`` after ``messages``
  (90d); the row stays (``(platform, account, remote_id)``, times);
- message bodies in the audit trail: ``audit.detail`` of ``relay`` and
  ``template`` rows → ``""`` after ``messages``; who did what when stays;
- what the type suggestions and suggested replies learn from (``type_example``,
  ``template_choice``: a customer message each) → deleted after ``messages``;
  a CSAT answer's comment → ``NULL`` after ``messages`` (the score stays).

Because the unique keys stay, a replayed Slack event or platform message
after pruning still inserts nothing. Pending, sending and failed deliveries
are never pruned (they may still be sent or retried), nor unprocessed events.

Each run works in bounded batches (``batch`` rows per transaction, at most
``MAX_BATCHES`` per table per run), selected through partial indexes over
the rows that still hold content (``tables.UNPRUNED``), so a run costs the
same however much pruned history there is. The updates re-check their
predicate, so several processes running the job at once do the same work
twice at worst, never anything wrong. The clock is passed in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, text, update
from sqlmodel import col, select

from bridge.store.db import Database
from bridge.store.tables import (
    UNPRUNED,
    Audit,
    CsatSurvey,
    InboundEvent,
    Outbox,
    SlackEvent,
    TemplateChoice,
    TypeExample,
)
from bridge.toml_config import Retention

log = logging.getLogger(__name__)

MAX_BATCHES = 100  # per table per run: 50,000 rows an hour at the defaults, so a backlog clears in steps
DAY = 86400.0


@dataclass(frozen=True)
class _Target:
    name: str
    model: Any
    age: Any  # the column compared with the cutoff
    emptied: dict[str, str]  # column → its pruned value
    period: str  # which [retention] duration applies


TARGETS = (
    _Target("slack_event", SlackEvent, SlackEvent.processed_at, {"payload": "{}"}, "events"),
    _Target("outbox", Outbox, Outbox.created_at, {"payload": "{}"}, "outbox"),
    _Target("inbound_event", InboundEvent, InboundEvent.stored_at, {"text": ""}, "messages"),
    _Target("audit", Audit, Audit.at, {"detail": ""}, "messages"),
)


def prunable(target: _Target, cutoff: float, batch: int) -> Any:
    """The ids of up to ``batch`` rows still holding content and older than ``cutoff``, oldest first, read
    through the partial index (the query repeats the index's own predicate, so the planner can use it)."""
    return (
        select(target.model.id)
        .where(text(UNPRUNED[target.name]), col(target.age) < cutoff)
        .order_by(col(target.age))
        .limit(batch)
    )


def prune_batch(db: Database, target: _Target, cutoff: float, batch: int) -> int:
    """Empty the content of up to ``batch`` rows older than ``cutoff``; how many were emptied."""
    with db.session() as s:
        ids = list(s.exec(prunable(target, cutoff, batch)).all())
        if not ids:
            return 0
        result = s.execute(
            update(target.model)
            .where(col(target.model.id).in_(ids), text(UNPRUNED[target.name]))
            .values(**target.emptied)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def prune(db: Database, policy: Retention, now: float, max_batches: int = MAX_BATCHES) -> dict[str, int]:
    """One run of the job: per table, how many rows were emptied."""
    done: dict[str, int] = {}
    for target in TARGETS:
        period = policy.seconds(target.period)  # type: ignore[arg-type]
        if period is None:
            continue
        total = 0
        for _ in range(max_batches):
            n = prune_batch(db, target, now - period, policy.batch)
            total += n
            if n < policy.batch:
                break
        done[target.name] = total
    period = policy.seconds("messages")
    if period is not None:  # learning material: small tables, deleted outright
        with db.session() as s:
            for model in (TypeExample, TemplateChoice):
                gone = int(s.execute(delete(model).where(col(model.created_at) < now - period)).rowcount)  # type: ignore[attr-defined]
                if gone:
                    done[str(model.__tablename__)] = gone
            old = col(CsatSurvey.answered_at) < now - period
            said = s.execute(update(CsatSurvey).where(old, col(CsatSurvey.comment).is_not(None)).values(comment=None))
            if said.rowcount:  # type: ignore[attr-defined]
                done["csat"] = int(said.rowcount)  # type: ignore[attr-defined]
    return done


class RetentionJob:
    """What the scheduler runs every ``[retention] every`` (bridge/app.py)."""

    def __init__(self, db: Database, policy: Retention, clock: Callable[[], float]) -> None:
        self.db, self.policy, self.clock = db, policy, clock

    def run(self) -> dict[str, int]:
        done = prune(self.db, self.policy, self.clock())
        if any(done.values()):
            log.info("retention: emptied %s", ", ".join(f"{n} {name}" for name, n in done.items() if n))
        return done
