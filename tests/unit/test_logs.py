"""bridge.logs: whatever a record carries, it is written as exactly one line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from bridge import logs
from bridge.store.db import Database


def _record(message: str, arg: str) -> logging.LogRecord:
    return logging.LogRecord("bridge.test", logging.INFO, __file__, 1, "%s %s", (message, arg), None)


@given(st.text(), st.text())
def test_a_text_record_is_one_line(message: str, arg: str) -> None:
    line = logs.formatter("text").format(_record(message, arg))
    assert len(line.splitlines()) == 1
    assert not any(ord(c) < 0x20 and c != "\t" for c in line)  # no terminal escapes either


@given(st.text(), st.text())
def test_a_json_record_is_one_line_and_keeps_the_message(message: str, arg: str) -> None:
    line = logs.formatter("json").format(_record(message, arg))
    assert len(line.splitlines()) == 1
    assert json.loads(line)["message"] == f"{message} {arg}"


@given(st.text(), st.text())
def test_escaping_keeps_different_values_apart(a: str, b: str) -> None:
    assert (logs.escape(a) == logs.escape(b)) == (a == b)


def test_a_failed_statement_does_not_carry_its_values_into_the_logs(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'd.db'}")
    try:
        with pytest.raises(OperationalError) as caught, db.session() as s:
            s.exec(text("INSERT INTO missing VALUES (:text)"), params={"text": "my card is 4111"})  # type: ignore[call-overload]
        assert "4111" not in str(caught.value)
    finally:
        db.dispose()
