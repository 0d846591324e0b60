"""Leads' argument parsing, export formats and the playbook metrics (pure)."""

from __future__ import annotations

import csv
import html
import io
import json
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.export import Message, Record, safe_cell, to_csv, to_html, to_jsonl
from bridge.leads import MAX_MAJOR, MINOR_UNITS, LeadError, format_money, parse_change, parse_money
from bridge.playbook_metrics import Facts, compute, render_csv, render_text

UTC = ZoneInfo("UTC")


@given(st.integers(0, MAX_MAJOR * 100), st.sampled_from(["EUR", "USD", "GBP"]))
def test_money_round_trips_through_its_text(minor: int, currency: str) -> None:
    shown = format_money(minor, currency)
    amount, code = shown.split(" ")
    assert parse_money(amount, code) == (minor, currency)


@given(st.integers(0, 10**9), st.sampled_from(sorted(MINOR_UNITS)))
def test_any_currency_keeps_its_minor_units(major: int, currency: str) -> None:
    assert parse_money(str(major), currency.lower()) == (major * 10 ** MINOR_UNITS[currency], currency)


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["qualified", "-5", "EUR"], "negative"),
        (["qualified", str(10**30), "EUR"], "more than a lead"),
        (["12", "EURO"], "not a currency"),
        (["bought"], "not a lead stage"),
        (["won", "10.999", "EUR"], "decimal places"),
        (["won", "1.5", "JPY"], "decimal places"),
        (["won", "12"], "Usage"),
        (["won", "1e5", "EUR"], "not an amount"),
        (["won", "NaN", "EUR"], "not an amount"),
        (["NaN", "1", "EUR"], "not a lead stage"),
    ],
)
def test_absurd_lead_input_is_refused_with_the_reason(args: list[str], why: str) -> None:
    with pytest.raises(LeadError, match=why):
        parse_change(args)


def test_lead_changes() -> None:
    assert parse_change([]).stage is None
    assert parse_change(["Won"]).stage == "won"
    change = parse_change(["qualified", "1,200.50", "eur"])
    assert (change.stage, change.value_minor, change.currency) == ("qualified", 120050, "EUR")
    assert parse_change(["300", "KWD"]).value_minor == 300000
    assert Decimal(parse_change(["5", "JPY"]).value_minor or 0) == 5


def _record(texts: list[str]) -> Record:
    msgs = [Message(1_800_000_000.0 + i, "customer" if i % 2 == 0 else "agent", "U1", t) for i, t in enumerate(texts)]
    return Record(1, "x", "acme", "42", "<b>Maria</b>", "maria_l", "open", None, 1_800_000_000.0, msgs)


@given(st.lists(st.text(), min_size=1, max_size=5))
def test_jsonl_and_csv_round_trip_every_text(texts: list[str]) -> None:
    rec = _record(texts)
    assert [json.loads(line)["text"] for line in to_jsonl([rec], UTC).splitlines()] == texts
    rows = list(csv.DictReader(io.StringIO(to_csv([rec], UTC), newline="")))
    assert [r["text"] for r in rows] == [safe_cell(t) for t in texts]


@given(st.lists(st.text(), min_size=1, max_size=5))
def test_html_escapes_everything_the_customer_wrote(texts: list[str]) -> None:
    page = to_html([_record(texts)], UTC)
    for t in texts:
        assert html.escape(t, quote=True) in page
    assert "<script" not in page.lower().replace("&lt;script", "") and "<b>Maria" not in page


def test_csv_cells_never_run_as_formulas() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv([_record(['=HYPERLINK("http://x")', "+1", "-2", "@A1"])], UTC))))
    assert all(r["text"].startswith("'") for r in rows)


def test_metrics_by_group() -> None:
    facts = [
        Facts("x", "sales", "U1", True, True, (60.0,), (120.0,), (5,), "won", 120000, "EUR"),
        Facts("x", "sales", "U1", True, False, (180.0,), (), (3,), "lost"),
        Facts("messenger", None, None, True, True, (), (), (), "qualified"),
        Facts("messenger", None, None, False, True),
    ]
    fig = compute(facts)
    everything = fig["all"]["all"]
    assert (everything.opened, everything.resolved, everything.resolution_rate) == (3, 2, 2 / 3)
    assert everything.csat_average == 4.0 and everything.csat[5] == 1 and everything.csat[3] == 1
    assert (everything.leads, everything.won, everything.conversion) == (3, 1, 1 / 3)
    assert dict(everything.value_won) == {"EUR": 120000}
    assert fig["platform"]["x"].first_response == [60.0, 180.0]
    assert fig["type"]["untyped"].leads == 1 and fig["agent"]["unassigned"].opened == 1
    text = render_text(fig, with_csat=True)
    assert "value won 1,200.00 EUR" in text and "CSAT 4.0/5" in text
    assert "CSAT" not in render_text(fig, with_csat=False)
    rows = list(csv.DictReader(io.StringIO(render_csv(fig))))
    assert {(r["dimension"], r["group"]) for r in rows} >= {("all", "all"), ("platform", "x"), ("agent", "U1")}


@given(st.lists(st.integers(1, 5), min_size=1))
def test_csat_average_is_within_the_scale(scores: list[int]) -> None:
    avg = compute([Facts("x", None, None, True, False, csat=tuple(scores))])["all"]["all"].csat_average
    assert avg is not None and 1 <= avg <= 5 and abs(avg - sum(scores) / len(scores)) < 1e-9
