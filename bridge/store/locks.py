"""Locks between processes that share one database.

PostgreSQL: session advisory locks, each held on a dedicated autocommit
connection; the server releases them when that connection drops, so a killed
holder frees its locks at once. SQLite: ``flock`` on a file beside the
database (processes sharing a SQLite file share a host); the kernel releases
it when the holder dies. ``xact_serialize`` takes a transaction-scoped lock on
PostgreSQL; SQLite needs none because ``BEGIN IMMEDIATE`` already serialises
writers.

Two uses: one poller per connector account at a time, and the liveness of
each process (``instance:{id}``), which tells whether a row left in
``sending`` belongs to a process that is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, text
from sqlmodel import Session

from bridge.store.db import Database, is_postgres


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def xact_serialize(session: Session, name: str) -> None:
    """Hold ``name`` until the transaction ends (PostgreSQL); SQLite's write lock already does this."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(name)})


class ProcessLock:
    """A named lock held by this process until ``release`` or until the process dies."""

    def __init__(self, db: Database, name: str) -> None:
        self.db, self.name = db, name
        self._conn: Connection | None = None
        self._file: IO[Any] | None = None
        self._held = False

    def _lock_path(self) -> Path | None:
        url = self.db.engine.url
        if not url.database or url.database == ":memory:":
            return None
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.name)
        return Path(f"{url.database}.locks") / safe

    def try_acquire(self) -> bool:
        """Take the lock if free (or already ours and still valid); never waits."""
        if self._held and self.still_held():
            return True
        self._drop()
        if is_postgres(self.db.engine):
            conn = self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key(self.name)}).scalar())
            except Exception:
                conn.close()
                raise
            if not got:
                conn.close()
                return False
            self._conn = conn
        else:
            path = self._lock_path()
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                handle = open(path, "a+")  # noqa: SIM115  (kept open while held)
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    handle.close()
                    return False
                self._file = handle
        self._held = True
        return True

    def still_held(self) -> bool:
        """False when the connection carrying a PostgreSQL lock was lost (the lock went with it)."""
        if not self._held:
            return False
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
            except Exception:
                self._drop()
                return False
        return True

    def release(self, *, forget: bool = False) -> None:
        """Give the lock up; ``forget`` also removes SQLite's lock file (for a lock that will not be reused)."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key(self.name)})
        path = self._lock_path() if self._file is not None else None
        self._drop()
        if forget and path is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        self._held = False
