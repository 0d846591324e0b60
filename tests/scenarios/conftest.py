from __future__ import annotations

from collections.abc import Iterator

import pytest

from bridge.sandbox.harness import Sandbox, start_sandbox
from bridge.sandbox.server import OffsetClock


@pytest.fixture
def box() -> Iterator[Sandbox]:
    sandbox = start_sandbox()
    try:
        yield sandbox
    finally:
        sandbox.close()


@pytest.fixture
def clock() -> OffsetClock:
    """The bridge's clock, movable by the test."""
    return OffsetClock()
