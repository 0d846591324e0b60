"""The ``lead`` table's queries on both databases (bridge/store/leads.py)."""

from __future__ import annotations

from bridge.store import leads
from bridge.store.db import Database
from bridge.store.tables import Conversation, Lead


def _lead(db: Database, n: int, stage: str, created: float, updated: float, value: int | None = None) -> None:
    with db.session() as s:
        conv = Conversation(
            platform="x", account="acme", remote_id=f"{n}-7", customer_id=str(n), customer_name=f"C{n}",
            channel="C1", created_at=created,
        )  # fmt: skip
        s.add(conv)
        s.flush()
        assert conv.id is not None
        s.add(Lead(conversation_id=conv.id, stage=stage, value_minor=value, currency="EUR" if value else None,
                   created_at=created, updated_at=updated, updated_by="U1"))  # fmt: skip


def test_listing_puts_the_pipeline_in_order_then_the_newest_change(db_url: str) -> None:
    db = Database(db_url)
    _lead(db, 1, "won", 10.0, 90.0)
    _lead(db, 2, "new", 20.0, 30.0)
    _lead(db, 3, "qualified", 30.0, 50.0)
    _lead(db, 4, "new", 40.0, 60.0)
    _lead(db, 5, "lost", 50.0, 95.0)
    _lead(db, 6, "meeting", 60.0, 70.0)
    with db.read() as s:
        shown = [(lead.stage, conv.customer_name) for lead, conv in leads.listing(s)]
        first_two = [conv.customer_name for _, conv in leads.listing(s, limit=2)]
    assert first_two == ["C4", "C2"]
    assert shown == [
        ("new", "C4"),
        ("new", "C2"),
        ("qualified", "C3"),
        ("meeting", "C6"),
        ("won", "C1"),
        ("lost", "C5"),
    ]
    db.dispose()


def test_created_between_is_half_open_and_values_are_exact_big_integers(db_url: str) -> None:
    db = Database(db_url)
    _lead(db, 1, "won", 100.0, 100.0, value=9_007_199_254_740_993)  # beyond a float's exact integers
    _lead(db, 2, "new", 200.0, 200.0)
    _lead(db, 3, "new", 300.0, 300.0)
    with db.read() as s:
        found = leads.created_between(s, 100.0, 300.0)
        assert sorted(conv.customer_name for _, conv in found) == ["C1", "C2"]
        assert next(lead.value_minor for lead, _ in found if lead.stage == "won") == 9_007_199_254_740_993
        got = leads.get(s, found[0][1].id or 0)
        assert got is not None and got.conversation_id == found[0][1].id
        assert leads.get(s, 999_999) is None
    db.dispose()
