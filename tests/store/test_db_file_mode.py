"""The SQLite file holds customer messages: it and its -wal/-shm are readable by their owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from bridge.store.db import Database
from bridge.store.migrate import upgrade
from bridge.store.tables import SlackEvent


def modes(directory: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir() if p.name.startswith("dmbridge.db")}


def test_a_new_database_and_its_wal_and_shm_are_created_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask, under which SQLite alone creates 0644 files
    try:
        db = Database(f"sqlite:///{tmp_path / 'data' / 'dmbridge.db'}")
        upgrade(db)
        with db.session() as s:
            s.add(SlackEvent(dedupe_key="k", kind="message", payload="{}", received_at=1.0))
        found = modes(tmp_path / "data")
        db.dispose()
    finally:
        os.umask(old)
    assert set(found) >= {"dmbridge.db", "dmbridge.db-wal", "dmbridge.db-shm"}
    assert all(mode == 0o600 for mode in found.values()), found


def test_an_existing_world_readable_database_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "dmbridge.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    db.dispose()
    for name in ("dmbridge.db", "dmbridge.db-wal", "dmbridge.db-shm"):
        if (tmp_path / name).exists():
            os.chmod(tmp_path / name, 0o644)
    Database(f"sqlite:///{path}").dispose()
    assert all(mode == 0o600 for mode in modes(tmp_path).values()), modes(tmp_path)
