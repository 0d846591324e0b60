"""Hostile input to `dmbridge doctor`: names and errors that come from the platforms reach the operator's
terminal; escape sequences in them must not act there (a Page name can clear the screen or retitle it)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from test_doctor import PUBLIC, World, world  # noqa: F401  (the fixture; tests/scenarios is on sys.path)
from typer.testing import CliRunner

from bridge import doctor
from bridge.cli import app
from bridge.sandbox.harness import PAGE_ID

HOSTILE = "Acme\x1b]0;pwned\x07\x1b[2J\r\n✅ everything fine"


def test_page_name_with_escape_sequences_is_printed_inert(world: World) -> None:  # noqa: F811
    world.meta.accounts[PAGE_ID].name = HOSTILE
    out = CliRunner().invoke(app, ["doctor", "--config", str(world.toml), "--url", PUBLIC], env=world.env())
    assert out.exit_code == 0, out.output
    assert "\x1b" not in out.output and "\x07" not in out.output and "\r" not in out.output
    line = next(x for x in out.output.splitlines() if "Meta token" in x)
    assert "Acme\\x1b]0;pwned\\x07\\x1b[2J\\x0d\\x0a✅ everything fine" in line  # one line, shown, not obeyed


@given(st.text())
def test_printable_leaves_nothing_a_terminal_would_act_on(text: str) -> None:
    shown = doctor.printable(text)
    assert shown.isprintable()
    if text.isprintable():
        assert shown == text
