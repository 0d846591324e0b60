"""``dmbridge templates import/export`` against a real database file."""

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bridge.cli import app


def test_import_checks_everything_first_then_export_round_trips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'd.db'}")
    runner = CliRunner()
    bad = tmp_path / "bad.yml"
    bad.write_text('thanks: "Thanks {first_name}!"\nbroken: "Hi {nope}"\n', encoding="utf-8")
    result = runner.invoke(app, ["templates", "import", str(bad)])
    assert result.exit_code == 2 and "broken: unknown variable {nope}" in result.output
    good = tmp_path / "good.yml"
    texts = {"thanks": "Thanks {first_name}! — {agent_first_name}", "bye": "Bye {name},\nsee you on {platform}.\n"}
    good.write_text(yaml.safe_dump(texts, allow_unicode=True), encoding="utf-8")
    result = runner.invoke(app, ["templates", "import", str(good)])
    assert result.exit_code == 0 and "2 new" in result.output
    assert runner.invoke(app, ["templates", "import", str(good)]).output.count("2 replaced") == 1
    out = tmp_path / "out.yml"
    assert runner.invoke(app, ["templates", "export", str(out)]).exit_code == 0
    assert yaml.safe_load(out.read_text(encoding="utf-8")) == texts
