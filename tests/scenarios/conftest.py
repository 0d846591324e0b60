from __future__ import annotations

from collections.abc import Iterator

import pytest

from bridge.sandbox.harness import Sandbox, start_sandbox


@pytest.fixture
def box() -> Iterator[Sandbox]:
    sandbox = start_sandbox()
    try:
        yield sandbox
    finally:
        sandbox.close()
