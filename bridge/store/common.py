"""Dialect-neutral helpers shared by the aggregate modules."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel


def insert_ignore(session: Session, model: type[SQLModel], values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True when a row was inserted."""
    dialect = session.get_bind().dialect.name
    table = model.__table__  # type: ignore[attr-defined]
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(table).values(**values).on_conflict_do_nothing()
    else:
        stmt = sqlite.insert(table).values(**values).on_conflict_do_nothing()
    key = next(iter(table.primary_key.columns))
    # RETURNING tells reliably on both dialects (psycopg reports rowcount -1 here)
    return session.execute(stmt.returning(key)).first() is not None
