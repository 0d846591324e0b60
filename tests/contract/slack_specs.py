"""Where the platforms' published specifications are: ``../shared/specs`` beside the repository (or beside the
folder holding a git worktree), or ``$DMBRIDGE_SPECS``. Tests that need them skip with the reason when absent;
CI always has them (there a missing spec fails)."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def specs_dir() -> Path | None:
    candidates = [Path(os.environ["DMBRIDGE_SPECS"])] if os.environ.get("DMBRIDGE_SPECS") else []
    candidates += [p / "shared" / "specs" for p in ROOT.parents]
    return next((c for c in candidates if (c / "slack").is_dir()), None)


@cache
def _load(name: str) -> dict[str, Any]:
    base = specs_dir()
    assert base is not None
    data: dict[str, Any] = json.loads((base / name).read_text(encoding="utf-8"))
    return data


def spec(name: str) -> dict[str, Any]:
    """A spec file under the specs folder, e.g. ``slack/web-api.openapi.json``; skips when it is absent."""
    base = specs_dir()
    if base is None or not (base / name).exists():
        if os.environ.get("CI") == "true":  # CI always has them: a missing spec there is a broken set-up
            pytest.fail(f"{name} not found under CI (../shared/specs or $DMBRIDGE_SPECS)")
        pytest.skip(f"{name} not found (../shared/specs or $DMBRIDGE_SPECS; present under CI)")
    return _load(name)
