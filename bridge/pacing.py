"""Kept for the modules that still import the pacer from here; it lives in ``bridge.domain``."""

from bridge.domain import Pacer

__all__ = ["Pacer"]
