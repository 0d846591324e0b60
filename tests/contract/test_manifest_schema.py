"""The app manifest (the file and both ``dmbridge manifest`` outputs) against Slack's official manifest schema."""

from __future__ import annotations

from typing import Any

import jsonschema
import yaml
from typer.testing import CliRunner

from bridge import manifest
from bridge.cli import app
from tests.contract.slack_specs import ROOT, spec


def _schema() -> dict[str, Any]:
    return spec("slack/manifest.schema.1.0.0.json")


def _errors(doc: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(_schema())
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def _cli(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["manifest", *args])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = yaml.safe_load(result.output)
    return data


def test_the_manifest_file_validates() -> None:
    doc = yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))
    assert _errors(doc) == []
    assert (ROOT / "bridge" / "manifest.yml").resolve() == (ROOT / "manifest.yml").resolve()


def test_the_http_manifest_output_validates() -> None:
    doc = _cli("--url", "https://x.example")
    assert doc["settings"]["event_subscriptions"]["request_url"] == "https://x.example/slack/events"
    assert _errors(doc) == []


def test_the_socket_mode_manifest_output_validates() -> None:
    doc = _cli("--socket")
    assert doc["settings"]["socket_mode_enabled"] is True
    assert _errors(doc) == []


def test_the_schema_refuses_what_slack_refuses() -> None:
    """The check is live: the old 25-character shortcut name fails it."""
    doc = manifest.render("https://x.example")
    doc["features"]["shortcuts"][3]["name"] = "Resolve, reopen or snooze"
    assert any("shortcuts" in e for e in _errors(doc))


def test_public_channels_need_no_invitation() -> None:
    assert "chat:write.public" in manifest.load()["oauth_config"]["scopes"]["bot"]
