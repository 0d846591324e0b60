"""``dmbridge outbox list|show|retry|drop`` against a real database, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from bridge.cli import app
from bridge.deliveries import ChannelNotice
from bridge.store import outbox
from bridge.store.db import Database
from bridge.store.migrate import upgrade
from bridge.store.tables import Outbox


def test_list_show_retry_and_drop(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    db = Database(db_url)
    upgrade(db)
    with db.session() as s:
        for key in ("a", "b", "c"):
            outbox.enqueue(s, ChannelNotice(key, None, "C1", "secret customer words"), 100.0)
        outbox.fail(s, 1, "X refused: gave up after 12 attempts")
        outbox.finish(s, 3, "dm9")
    runner = CliRunner()
    listed = runner.invoke(app, ["outbox", "list"])
    assert listed.exit_code == 0
    assert "#1" in listed.output and "failed" in listed.output and "gave up after 12" in listed.output
    assert "#2" in listed.output and "#3" not in listed.output  # sent rows are not listed unless asked
    assert "#3" in runner.invoke(app, ["outbox", "list", "--state", "sent"]).output
    shown = runner.invoke(app, ["outbox", "show", "1"])
    assert shown.exit_code == 0 and "secret customer words" not in shown.output and "<21 characters>" in shown.output
    assert runner.invoke(app, ["outbox", "retry", "1"]).exit_code == 0
    assert runner.invoke(app, ["outbox", "drop", "2"]).exit_code == 0
    refused = runner.invoke(app, ["outbox", "retry", "3"])
    assert refused.exit_code == 1 and "it is sent" in refused.output
    assert runner.invoke(app, ["outbox", "show", "99"]).exit_code == 1
    with db.read() as s:
        rows = {r.id: r for r in s.exec(select(Outbox)).all()}
    assert (rows[1].state, rows[1].attempts) == ("pending", 0)
    assert "retried by an operator" in (rows[1].last_error or "")
    assert (rows[2].state, rows[2].last_error) == ("failed", "dropped by an operator")
    db.dispose()
