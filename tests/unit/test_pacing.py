from hypothesis import given
from hypothesis import strategies as st

from bridge.domain import Pacer


def test_burst_then_one_per_second() -> None:
    p = Pacer(rate=1.0, burst=3)
    for _ in range(3):
        assert p.wait("C1", 100.0) == 0
        p.take("C1", 100.0)
    assert p.wait("C1", 100.0) == 1.0
    assert p.wait("C2", 100.0) == 0  # channels are independent
    assert p.wait("C1", 101.0) == 0


def test_pause_honours_retry_after() -> None:
    p = Pacer(rate=1.0, burst=3)
    p.pause("C1", 130.0)
    assert p.wait("C1", 100.0) == 30.0


@given(st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=60))
def test_never_faster_than_rate_plus_burst(gaps: list[float]) -> None:
    p = Pacer(rate=1.0, burst=3)
    now, sent, start = 0.0, 0, 0.0
    for gap in gaps:
        now += gap
        now += p.wait("C", now)
        p.take("C", now)
        sent += 1
    assert sent <= 3 + (now - start) * 1.0 + 1e-6
