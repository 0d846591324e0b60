"""``dmbridge outbox list|show|retry|drop``: look at and unstick deliveries (no message text is printed)."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from bridge.config import Settings
from bridge.store import outbox
from bridge.store.db import Database
from bridge.store.tables import Outbox

outbox_app = typer.Typer(no_args_is_help=True, help="Deliveries waiting, in flight or failed: list, show, retry, drop.")

STATES = {
    "waiting": (outbox.PENDING, outbox.SENDING, outbox.FAILED),
    "pending": (outbox.PENDING,),
    "sending": (outbox.SENDING,),
    "failed": (outbox.FAILED,),
    "sent": (outbox.SENT,),
}


def _db() -> Database:
    return Database(Settings().database_url)


def _age(since: float, now: float) -> str:
    s = max(0, int(now - since))
    return (
        f"{s // 86400}d{s % 86400 // 3600}h"
        if s >= 86400
        else f"{s // 3600}h{s % 3600 // 60}m"
        if s >= 3600
        else f"{s // 60}m{s % 60}s"
    )


def _line(row: Outbox, now: float) -> str:
    flag = " uncertain" if row.uncertain else ""
    return (
        f"#{row.id}  {row.target:8} {row.kind:14} {row.state:8} tries={row.attempts}{flag}  "
        f"age={_age(row.created_at, now)}  conv={row.conversation_id or '-'}  {row.last_error or ''}"
    ).rstrip()


@outbox_app.command("list")
def list_rows(
    state: Annotated[
        str, typer.Option(help="waiting (pending+sending+failed), pending, sending, failed or sent")
    ] = "waiting",
    target: Annotated[str | None, typer.Option(help="slack or platform")] = None,
    limit: int = 50,
) -> None:
    """The oldest rows in a state, one a line."""
    if state not in STATES:
        typer.echo(f"dmbridge: --state is one of {', '.join(STATES)}", err=True)
        raise typer.Exit(2)
    db, now = _db(), time.time()
    with db.read() as s:
        rows = outbox.listing(s, states=STATES[state], target=target, limit=limit)
    db.dispose()
    for row in rows:
        typer.echo(_line(row, now))
    if not rows:
        typer.echo(f"dmbridge: no {state} deliveries")


@outbox_app.command("show")
def show(row_id: int) -> None:
    """One row in full, except the message text (its length is shown)."""
    db, now = _db(), time.time()
    with db.read() as s:
        row = s.get(Outbox, row_id)
    db.dispose()
    if row is None:
        typer.echo(f"dmbridge: no outbox row #{row_id}", err=True)
        raise typer.Exit(1)
    payload = json.loads(row.payload)
    typer.echo(_line(row, now))
    for name in ("dedupe_key", "lane", "next_attempt_at", "claimed_by", "claimed_at", "result"):
        typer.echo(f"  {name}: {getattr(row, name)}")
    shown = {k: (f"<{len(str(v))} characters>" if k in ("text", "blocks") else v) for k, v in payload.items()}
    typer.echo(f"  payload: {json.dumps(shown, ensure_ascii=False)}")


def _act(row_id: int, verb: str) -> None:
    db = _db()
    with db.session() as s:
        problem = outbox.operator_retry(s, row_id, time.time()) if verb == "retry" else outbox.operator_drop(s, row_id)
    db.dispose()
    if problem:
        typer.echo(f"dmbridge: cannot {verb} #{row_id}: {problem} (only pending or failed rows)", err=True)
        raise typer.Exit(1)
    typer.echo(f"dmbridge: #{row_id} {'queued again' if verb == 'retry' else 'dropped'}")


@outbox_app.command("retry")
def retry(row_id: int) -> None:
    """Send a failed (or waiting) row again now, with a fresh attempt count."""
    _act(row_id, "retry")


@outbox_app.command("drop")
def drop(row_id: int) -> None:
    """Give a pending or failed row up for good; the next one of its conversation can then go."""
    _act(row_id, "drop")
