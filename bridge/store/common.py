"""Dialect-neutral helpers shared by the aggregate modules."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel

_STATEMENTS: dict[tuple[str, str], Any] = {}


def insert_ignore(session: Session, model: type[SQLModel], values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True when a row was inserted."""
    dialect = session.get_bind().dialect.name
    table = model.__table__  # type: ignore[attr-defined]
    stmt = _STATEMENTS.get((table.name, dialect))
    if stmt is None:
        # one statement object per table and dialect, values bound at execution: building and
        # cache-keying a fresh statement per row was the biggest cost of ingesting a message
        key = next(iter(table.primary_key.columns))
        insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
        # RETURNING tells reliably on both dialects (psycopg reports rowcount -1 here)
        stmt = _STATEMENTS[(table.name, dialect)] = insert.on_conflict_do_nothing().returning(key)
    return session.execute(stmt, values).first() is not None
