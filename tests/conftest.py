"""Shared fixtures: database URLs for SQLite and (when reachable, always under CI) PostgreSQL; sandboxes.

A test that starts a sandbox (``box``, ``make_box``), or lives under ``tests/scenarios/``, is marked
``scenario``: ``pytest -m "not scenario"`` runs the fast tier, plain ``pytest`` runs everything.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from bridge.sandbox.harness import Sandbox, start_sandbox
from bridge.sandbox.server import OffsetClock
from bridge.store.db import Database
from bridge.store.migrate import upgrade
from tests.databases import pg_copy
from tests.scenarios.helpers import BoxFactory

SCENARIOS = Path(__file__).parent / "scenarios"

PG_ADMIN = os.environ.get("DMBRIDGE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _pg_reachable() -> str | None:
    try:
        engine = create_engine(PG_ADMIN, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0]


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    problem = _pg_reachable()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is required under CI: {problem}")
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 not reachable ({problem})")
    return PG_ADMIN


@pytest.fixture(scope="session")
def pg_template(pg_admin_url: str) -> Iterator[str]:
    """A database migrated to the newest schema once per run: each test's database is a copy of it (``CREATE
    DATABASE … TEMPLATE``, a file copy), so no test pays for the migrations; the app's own upgrade at start
    finds it current."""
    name = f"dmbridge_template_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(pg_admin_url.rsplit("/", 1)[0] + f"/{name}")
    upgrade(db)
    db.dispose()
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def pg_url(pg_admin_url: str, pg_template: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, at the newest schema and empty of rows, dropped afterwards."""
    with pg_copy(pg_admin_url, pg_template) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'dmbridge.db'}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to the newest schema once per run (each ``db_url`` test starts from a copy)."""
    path = tmp_path_factory.mktemp("template") / "dmbridge.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    db.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on both databases, each at the newest schema and empty of rows."""
    if request.param == "sqlite":
        shutil.copyfile(request.getfixturevalue("sqlite_template"), tmp_path / "dmbridge.db")
        return f"sqlite:///{tmp_path / 'dmbridge.db'}"
    return str(request.getfixturevalue("pg_url"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(SCENARIOS) or "make_box" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.scenario)


@pytest.fixture
def clock() -> OffsetClock:
    """The bridge's clock, movable by the test."""
    return OffsetClock()


@pytest.fixture
def make_box(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BoxFactory]:
    """``make_box(**options)`` starts a sandbox (``start_sandbox``'s options); each is closed after the test.
    Without a ``database_url`` each sandbox gets its own copy of the migrated SQLite template (the bridge's
    upgrade at start finds it current)."""
    started: list[Sandbox] = []

    def make(database_url: str | None = None, **options: Any) -> Sandbox:
        if database_url is None:
            path = tmp_path / f"box-{len(started)}.db"
            shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
            database_url = f"sqlite:///{path}"
        sandbox = start_sandbox(database_url, **options)
        started.append(sandbox)
        return sandbox

    try:
        yield make
    finally:
        for sandbox in reversed(started):
            sandbox.close()


@pytest.fixture
def box(make_box: BoxFactory, clock: OffsetClock, request: pytest.FixtureRequest) -> Sandbox:
    """A started sandbox on the test's clock, with the options of the nearest ``@pytest.mark.sandbox(...)``
    (on the test, its class or its module's ``pytestmark``)."""
    marker = request.node.get_closest_marker("sandbox")
    options: dict[str, Any] = {"clock": clock, **(marker.kwargs if marker else {})}
    return make_box(**options)
