"""``dmbridge export`` on both databases: what it writes for a conversation, a customer and a date range, and what
it refuses."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bridge.cli import app
from bridge.domain import Batch
from bridge.inbound import ingest
from bridge.store.db import Database
from tests.store.test_retention import T0, msg


@pytest.fixture
def stored(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    db = Database(db_url)
    with db.session() as s:
        batch = Batch(messages=(msg("m1", "Where is my <b>order</b>?\n=SUM(A1)"), msg("m2", "Thanks")), cursor=None)
        ingest(s, "x", "acme", batch, lambda _a: "C1", now=T0)
    db.dispose()
    monkeypatch.setenv("DATABASE_URL", db_url)
    return db_url


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["export", *args])
    return result.exit_code, result.stdout, result.stderr


def test_a_conversation_as_jsonl_one_line_per_message(stored: str) -> None:
    code, out, _ = run("--conversation", "1")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [m["text"] for m in lines] == ["Where is my <b>order</b>?\n=SUM(A1)", "Thanks"]
    assert len(out.splitlines()) == 2  # a line break inside a message never splits its record


def test_a_customer_as_csv_with_formula_cells_made_inert(stored: str) -> None:
    code, out, _ = run("--customer", "42", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 2 and not any(str(v).startswith("=") for row in rows for v in row.values())


def test_a_date_range_as_html_to_a_file_escaped(stored: str, tmp_path: Path) -> None:
    out_file = tmp_path / "t.html"
    code, _, err = run("--since", "2000-01-01", "--until", "2100-01-01", "--format", "html", "-o", str(out_file))
    assert code == 0 and "exported 1 conversation(s)" in err
    page = out_file.read_text(encoding="utf-8")
    assert "&lt;b&gt;order&lt;/b&gt;" in page and "<b>order</b>" not in page and "<script" not in page


def test_nothing_to_say_or_a_bad_format_or_date_is_refused(stored: str) -> None:
    assert run()[0] == 2
    assert run("--conversation", "1", "--format", "pdf")[0] == 2
    code, _, err = run("--since", "yesterday-ish")
    assert code == 2 and "dmbridge:" in err
    assert run("--conversation", "99")[1] == ""  # no such conversation: nothing, not an error
