"""Engines and sessions for SQLite (embedded default) and PostgreSQL (scale-out)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlmodel import Session

log = logging.getLogger(__name__)


def normalise_url(url: str) -> str:
    """``postgresql://`` → the psycopg 3 driver we ship."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""
        if path and path != ":memory:" and not path.startswith("file:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            private_file(Path(path))
        # hide_parameters: a failed statement's error (logged) never carries its values, message text included
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)
        _sqlite_pragmas(engine)
        return engine
    # a server that stops answering (not refusing) fails a new connection within 10 s instead of hanging the
    # caller: /healthz then answers 503 rather than never
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        hide_parameters=True,
        connect_args={"connect_timeout": 10},
    )


def private_file(path: Path) -> None:
    """The database holds customer messages: create it 0600, and make an existing one (and its ``-wal`` and
    ``-shm``, which SQLite creates with the database file's mode) 0600 too."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # O_CREAT's mode applies only when it creates the file
    os.close(fd)
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if candidate.exists() and candidate.stat().st_mode & 0o077:
                os.chmod(candidate, 0o600)
        except OSError as exc:  # not ours to change (another user's file): say so, do not refuse to start
            log.warning("could not make %s private (mode 0600): %s", candidate, exc.strerror)


def _sqlite_pragmas(engine: Engine) -> None:
    """WAL, and BEGIN IMMEDIATE so concurrent writers queue instead of failing mid-transaction."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # readers (Database.read) need no write lock under WAL; writers take it up front
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


READ_ONLY = "dmbridge_read_only"


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


class Database:
    """The one handle on the database that the app passes down."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(url)
        self._reader = self.engine.execution_options(**{READ_ONLY: True})
        # SQLite has one writer at a time. Threads of this process queue for it here, where a release
        # wakes the next at once, instead of in SQLite's busy handler, which sleeps in steps of up to
        # 100 ms (that was most of the acknowledgement latency under load). Other processes still meet
        # busy_timeout.
        self._write_lock: threading.RLock | None = None if is_postgres(self.engine) else threading.RLock()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on error."""
        with self._write_lock or nullcontext(), Session(self.engine, expire_on_commit=False) as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work: on SQLite it does not queue behind writers for the write lock."""
        with Session(self._reader, expire_on_commit=False) as s:
            try:
                yield s
            finally:
                s.expunge_all()  # what was read stays usable; ending the transaction must not expire it
                s.rollback()

    def dispose(self) -> None:
        self.engine.dispose()
