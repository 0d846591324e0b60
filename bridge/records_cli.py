"""``dmbridge export``: conversations as JSONL, CSV or an HTML transcript, by conversation, customer or dates."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from bridge.config import ConfigError, Settings
from bridge.toml_config import FileConfig


def _moment(value: str | None, file: FileConfig) -> float | None:
    """``2026-12-01`` or ``2026-12-01T09:00`` in the desk's timezone."""
    if value is None:
        return None
    when = datetime.fromisoformat(value)
    return (when if when.tzinfo else when.replace(tzinfo=file.tz)).timestamp()


def export(
    conversation: Annotated[int | None, typer.Option("--conversation", help="a conversation's number")] = None,
    customer: Annotated[str | None, typer.Option("--customer", help="a customer's platform id or handle")] = None,
    since: Annotated[str | None, typer.Option("--since", help="YYYY-MM-DD[THH:MM], desk timezone")] = None,
    until: Annotated[str | None, typer.Option("--until", help="YYYY-MM-DD[THH:MM], exclusive")] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl, csv or html")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file (default: stdout)")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="dmbridge.toml")] = None,
) -> None:
    """Export conversations and their messages as retention kept them (README, "Records")."""
    from bridge import export as records
    from bridge.store.db import Database

    if fmt not in records.FORMATS:
        typer.echo(f"dmbridge: --format {fmt!r}: one of {', '.join(records.FORMATS)}", err=True)
        raise typer.Exit(2)
    if conversation is None and customer is None and since is None and until is None:
        typer.echo("dmbridge: say what to export: --conversation, --customer or --since/--until", err=True)
        raise typer.Exit(2)
    try:
        file = FileConfig.load(config)
        lo, hi = _moment(since, file), _moment(until, file)
    except (ConfigError, ValueError) as exc:
        typer.echo(f"dmbridge: {exc}", err=True)
        raise typer.Exit(2) from exc
    db = Database(Settings().database_url)
    try:
        with db.read() as s:
            found = records.collect(s, number=conversation, customer=customer, since=lo, until=hi)
    finally:
        db.dispose()
    text = records.render(found, fmt, file.tz)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"dmbridge: exported {len(found)} conversation(s) to {output}", err=True)


def register(app: typer.Typer) -> None:
    app.command()(export)
