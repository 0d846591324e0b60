"""Schema migrations (alembic), run by ``dmbridge migrate`` and at ``serve`` start-up."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from bridge.store.db import Database

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(db: Database) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    cfg = alembic_config(db.url)
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # several processes starting at once migrate one at a time
            connection.execute(text("SELECT pg_advisory_xact_lock(7415002)"))
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
