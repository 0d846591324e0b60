"""dmbridge.toml refuses keys it does not define, names them by their full path, and suggests the near one."""

from __future__ import annotations

import json
import re
import tempfile
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import BaseModel

from bridge.errors import ConfigError
from bridge.toml_config import (
    Assignment,
    BusinessHoursConfig,
    FileConfig,
    GenericSource,
    MetaFile,
    MetaPage,
    Retention,
    Route,
    SlaConfig,
    Team,
)

ROOT = Path(__file__).resolve().parents[2]
SLA = {"name": "standard", "first_response": "2h"}

# (a document holding the table, the path to it in that document, the path as the error names it, its model)
TABLES: list[tuple[dict[str, Any], tuple[str | int, ...], str, type[BaseModel]]] = [
    ({}, (), "", FileConfig),
    ({"assignment": {}}, ("assignment",), "assignment.", Assignment),
    ({"teams": {"legal": {"usergroup": "S0LEGAL"}}}, ("teams", "legal"), "teams.legal.", Team),
    ({"routes": [{"connector": "x", "channel": "C1"}]}, ("routes", 0), "routes[0].", Route),
    ({"sla": [dict(SLA)]}, ("sla", 0), "sla[0].", SlaConfig),
    (
        {"sla": [dict(SLA), {**SLA, "name": "vip", "business_hours": {"mon": ["09:00-17:00"]}}]},
        ("sla", 1, "business_hours"),
        "sla[1].business_hours.",
        BusinessHoursConfig,
    ),
    ({"meta": {}}, ("meta",), "meta.", MetaFile),
    ({"meta": {"pages": [{"id": "1"}, {"id": "2"}]}}, ("meta", "pages", 1), "meta.pages[1].", MetaPage),
    (
        {"generic": {"sources": [{"name": "shop", "secret_env": "S", "callback_url": "https://a.example/"}]}},
        ("generic", "sources", 0),
        "generic.sources[0].",
        GenericSource,
    ),
    ({"retention": {}}, ("retention",), "retention.", Retention),
]


def to_toml(doc: dict[str, Any], prefix: str = "") -> str:
    """A TOML document for ``doc`` (strings, numbers, booleans, lists of those, tables, arrays of tables)."""
    lines = [
        f"{k} = {json.dumps(v, ensure_ascii=False)}"
        for k, v in doc.items()
        if not isinstance(v, dict) and not (isinstance(v, list) and v and isinstance(v[0], dict))
    ]
    for key, value in doc.items():
        if isinstance(value, dict):
            lines += [f"[{prefix}{key}]", to_toml(value, f"{prefix}{key}.")]
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:
                lines += [f"[[{prefix}{key}]]", to_toml(item, f"{prefix}{key}.")]
    return "\n".join(lines) + "\n"


def load_text(text: str) -> FileConfig:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "dmbridge.toml"
        path.write_text(text, encoding="utf-8")
        return FileConfig.load(path)


def refusal(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_text(text)
    return str(caught.value)


def with_key(doc: dict[str, Any], where: tuple[str | int, ...], key: str, value: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(doc))
    table: Any = doc
    for part in where:
        table = table[part]
    table[key] = value
    return doc


def test_an_unknown_top_level_table_is_refused_with_the_table_meant() -> None:
    message = refusal('[asignment]\nmode = "round_robin"\nusergroup = "S0AGENTS"\n')
    assert re.fullmatch(r"unknown key 'asignment' in \S*dmbridge\.toml; did you mean 'assignment'\?", message)
    assert refusal('brandt = "Acme"\n').endswith("did you mean 'brand'?")


def test_an_unknown_nested_key_is_named_by_its_full_path() -> None:
    message = refusal("[assignment]\ncapacty = 4\n")
    assert re.fullmatch(r"unknown key 'assignment\.capacty' in \S*dmbridge\.toml; did you mean 'capacity'\?", message)
    assert "unknown key 'teams.legal.chanel'" in refusal('[teams.legal]\nusergroup = "S0LEGAL"\nchanel = "C0LEGAL"\n')
    assert "'sla[0].business_hours.thur'" in refusal(
        '[[sla]]\nname = "s"\nfirst_response = "2h"\n[sla.business_hours]\nthur = ["09:00-17:00"]\n'
    )


def test_a_key_with_no_close_match_lists_the_keys_of_its_table() -> None:
    message = refusal('[assignment]\ncolour = "blue"\n')
    assert "did you mean" not in message
    assert message.endswith("; the keys there are mode, usergroup, capacity")
    assert "unknown key 'assignment.colour'" in message


def test_unknown_keys_come_first_and_other_problems_are_still_said() -> None:
    message = refusal('[[sla]]\nnme = "standard"\nfirst_response = "2h"\n[retention]\nbatch = 0\n')
    lines = message.splitlines()
    assert lines[0].startswith("unknown key 'sla[0].nme'") and lines[0].endswith("did you mean 'name'?")
    assert any("sla[0].name: Field required" in line for line in lines[1:])
    assert any("retention.batch:" in line for line in lines[1:])


def test_every_table_refuses_a_key_of_its_own_with_a_suggestion() -> None:
    for doc, where, shown, model in TABLES:
        key = next(iter(model.model_fields))
        typo = key + "x"
        message = refusal(to_toml(with_key(doc, where, typo, "1")))
        assert f"unknown key '{shown}{typo}'" in message, (shown, message)
        assert message.endswith(f"did you mean '{key}'?"), (shown, message)


@st.composite
def typos(draw: st.DrawFn) -> tuple[int, str, str]:
    """A table, one of its keys, and a one-letter slip of it (dropped, doubled, stray or swapped letter)."""
    index = draw(st.integers(0, len(TABLES) - 1))
    key = draw(st.sampled_from(sorted(TABLES[index][3].model_fields)))
    at = draw(st.integers(0, len(key) - 1))
    slip = draw(st.sampled_from(["drop", "double", "stray", "swap"]))
    if slip == "drop":
        typo = key[:at] + key[at + 1 :]
    elif slip == "double":
        typo = key[:at] + key[at] + key[at:]
    elif slip == "stray":
        typo = key[:at] + draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz_")) + key[at:]
    else:
        assume(len(key) >= 3 and at < len(key) - 1)
        typo = key[:at] + key[at + 1] + key[at] + key[at + 2 :]
    assume(typo not in TABLES[index][3].model_fields)
    return index, key, typo


@given(typos())
def test_a_slip_of_any_key_is_refused_and_a_key_of_that_table_suggested(case: tuple[int, str, str]) -> None:
    index, _key, typo = case
    doc, where, shown, model = TABLES[index]
    message = refusal(to_toml(with_key(doc, where, typo, "1")))
    found = re.search(rf"unknown key '{re.escape(shown + typo)}' in \S+; did you mean '(\w+)'\?", message)
    assert found, message
    assert found.group(1) in model.model_fields


def test_a_dropped_letter_is_mended_to_the_key_it_came_from() -> None:
    for doc, where, shown, model in TABLES:
        for key in model.model_fields:
            for at in range(len(key)):
                typo = key[:at] + key[at + 1 :]
                if typo in model.model_fields or (shown, key) == ("sla[1].business_hours.", "thu"):
                    continue  # "tu" is as near to "tue"
                assert refusal(to_toml(with_key(doc, where, typo, "1"))).endswith(f"did you mean '{key}'?")


ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"]
DURATIONS = ["30s", "15m", "2h", "3d", "forever"]


@given(
    brand=st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=30),
    timezone=st.sampled_from(ZONES),
    capacity=st.integers(1, 500),
    mode=st.sampled_from(["manual", "round_robin"]),
    events=st.sampled_from(DURATIONS),
    every=st.sampled_from(DURATIONS[:-1]),
    batch=st.integers(1, 10_000),
    channels=st.lists(st.from_regex(r"C[A-Z0-9]{2,10}", fullmatch=True), max_size=3),
)
def test_valid_configs_load_unchanged(
    brand: str, timezone: str, capacity: int, mode: str, events: str, every: str, batch: int, channels: list[str]
) -> None:
    doc: dict[str, Any] = {
        "brand": brand,
        "timezone": timezone,
        "agents": "S0AGENTS",
        "assignment": {"mode": mode, "usergroup": "S0AGENTS", "capacity": capacity},
        "routes": [{"connector": "x", "account": f"a{i}", "channel": c} for i, c in enumerate(channels)],
        "retention": {"events": events, "every": every, "batch": batch},
    }
    loaded = load_text(to_toml(doc))
    assert (loaded.brand, loaded.timezone, loaded.agents) == (brand, timezone, "S0AGENTS")
    assert (loaded.assignment.mode, loaded.assignment.capacity) == (mode, capacity)
    assert [(r.account, r.channel) for r in loaded.routes] == [(f"a{i}", c) for i, c in enumerate(channels)]
    assert (loaded.retention.events, loaded.retention.every, loaded.retention.batch) == (events, every, batch)


def toml_blocks(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [
        textwrap.dedent(indent + body)
        for indent, body in re.findall(r"^([ \t]*)```toml\n(.*?)^[ \t]*```", text, flags=re.MULTILINE | re.DOTALL)
    ]


def merged(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """``b`` read as more of the same file as ``a``: tables extend, arrays of tables append."""
    out = dict(a)
    for key, value in b.items():
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = merged(out[key], value)
        elif isinstance(out.get(key), list) and isinstance(value, list):
            out[key] = out[key] + value
        else:
            assert out.get(key, value) == value, f"the snippets disagree on {key!r}"
            out[key] = value
    return out


README_BLOCKS = toml_blocks(ROOT / "README.md")
DESIGN_BLOCKS = toml_blocks(ROOT / "docs" / "design.md")


@pytest.mark.parametrize("count", range(1, len(README_BLOCKS) + 1))
def test_the_readme_snippets_load(count: int) -> None:
    """Each snippet, read with the ones before it (an SLA escalates to a team an earlier snippet defines)."""
    doc: dict[str, Any] = {}
    for block in README_BLOCKS[:count]:
        doc = merged(doc, tomllib.loads(block))
    loaded = load_text(to_toml(doc))
    assert loaded.model_dump(exclude_defaults=True)


def test_the_readme_snippets_say_what_they_show() -> None:
    doc: dict[str, Any] = {}
    for block in README_BLOCKS:
        doc = merged(doc, tomllib.loads(block))
    loaded = load_text(to_toml(doc))
    assert len(README_BLOCKS) >= 5
    assert (loaded.brand, loaded.admins, loaded.assignment.capacity) == ("Acme", "S0DESKLEADS", 8)
    assert loaded.policies()[0].name == "standard" and loaded.policies()[0].hours is not None
    assert [p.id for p in loaded.meta.pages] == ["209384756102938", "17841405309211844"]
    assert [s.name for s in loaded.generic.sources] == ["shop"] and loaded.retention.batch == 500


@pytest.mark.parametrize("block", DESIGN_BLOCKS)
def test_the_design_snippets_load(block: str) -> None:
    assert load_text(block).model_dump(exclude_defaults=True)
