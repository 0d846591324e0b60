"""The DM playbook's figures read from the database (``bridge.playbook_metrics`` computes them): ``/dm stats``,
``dmbridge stats [--format csv]``, the App Home and the weekly digest. The ``csat`` table is another part's
(migration 0011): read only when it is there, with the columns it needs; otherwise no CSAT is shown."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import inspect, text
from sqlmodel import Session

from bridge.context import Context
from bridge.deliveries import ChannelNotice
from bridge.playbook_metrics import Facts, Figures, compute, render_text
from bridge.reports import ConversationFacts, build_report
from bridge.sla_runner import timelines
from bridge.store import desk as store
from bridge.store import leads as lead_store
from bridge.store import outbox
from bridge.store.db import Database
from bridge.toml_config import FileConfig


def csat_scores(s: Session, since: float, until: float) -> dict[int, list[int]] | None:
    """Scores answered in ``[since, until)`` per conversation; None when there is no readable ``csat`` table."""
    bind = s.get_bind()
    try:
        columns = {c["name"] for c in inspect(bind).get_columns("csat")}
    except Exception:  # no such table (yet): CSAT is simply not shown
        return None
    if not {"conversation_id", "score", "answered_at"} <= columns:
        return None
    rows = s.execute(
        text(
            "SELECT conversation_id, score FROM csat WHERE score IS NOT NULL "
            "AND answered_at >= :since AND answered_at < :until"
        ),
        {"since": since, "until": until},
    ).all()
    found: dict[int, list[int]] = {}
    for conv_id, score in rows:
        found.setdefault(int(conv_id), []).append(int(score))
    return found


def figures(db: Database, days: int, now: float) -> tuple[dict[str, dict[str, Figures]], bool]:
    """The figures for the last ``days`` days, and whether CSAT could be read."""
    since, until = now - days * 86_400, now
    with db.read() as s:
        convs = {c.id: c for c in store.active_between(s, since, until) if c.id is not None}
        leads = {lead.conversation_id: lead for lead, conv in lead_store.created_between(s, since, until)}
        for lead, conv in lead_store.created_between(s, since, until):
            convs.setdefault(lead.conversation_id, conv)
        found = timelines(s, [c for c in convs if c is not None])
        scores = csat_scores(s, since, until)
    facts = []
    for conv_id, conv in convs.items():
        assert conv_id is not None
        timeline = [ConversationFacts(conv_id, conv.assignee, None, found.get(conv_id, []))]
        report = build_report(timeline, _dt(since), _dt(until), ZoneInfo("UTC"))
        lead_row = leads.get(conv_id)
        facts.append(
            Facts(
                platform=conv.platform,
                inquiry_type=conv.inquiry_type,
                agent=conv.assignee,
                opened=since <= conv.created_at < until,
                resolved=conv.status == "resolved",
                first_response=tuple(report.first_response),
                next_response=tuple(report.next_response),
                csat=tuple((scores or {}).get(conv_id, [])),
                lead_stage=lead_row.stage if lead_row else None,
                lead_value=lead_row.value_minor if lead_row else None,
                lead_currency=lead_row.currency if lead_row else None,
            )
        )
    return compute(facts), scores is not None


def playbook_text(db: Database, days: int, now: float) -> str:
    found, with_csat = figures(db, days, now)
    return render_text(found, with_csat)


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def post_digest(db: Database, file: FileConfig, channel: str, now: float) -> bool:
    """The weekly digest (``[digest]``) queued for the channel, once per ISO week whichever process runs it."""
    from bridge.sla_runner import report_text

    week = datetime.fromtimestamp(now, file.tz).strftime("%G-W%V")
    notice = ChannelNotice(f"digest:{week}", None, channel, f"*Weekly digest*\n{report_text(db, file, 7, now)}")
    with db.session() as s:
        return outbox.enqueue(s, notice, now)


def schedule_digest(scheduler: BaseScheduler, ctx: Context) -> None:
    """``[digest]``: a weekly cron job in the desk's timezone (its time read from the bridge's clock)."""
    digest = ctx.toml.digest
    if digest is None:
        return
    channel = digest.channel or ctx.settings.dmbridge_channel
    hour, minute = digest.time.split(":")

    def run() -> None:
        if post_digest(ctx.db, ctx.toml, channel, ctx.clock()):
            ctx.wake_slack.set()

    scheduler.add_job(
        run,
        "cron",
        day_of_week=digest.weekday[:3],
        hour=int(hour),
        minute=int(minute),
        timezone=ctx.toml.tz,
        id="digest",
        max_instances=1,
        coalesce=True,
    )
