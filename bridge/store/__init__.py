"""Persistence: SQLModel tables and one module per aggregate."""
