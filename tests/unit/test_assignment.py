from hypothesis import given
from hypothesis import strategies as st

from bridge.desk import pick_assignee

users = st.lists(st.sampled_from([f"U{i:02d}" for i in range(12)]), max_size=12)


def test_rotates_in_roster_order_after_the_last_pick() -> None:
    roster = ["U3", "U1", "U2"]
    assert pick_assignee(roster, set(), {}, 5, None) == "U1"
    assert pick_assignee(roster, set(), {}, 5, "U1") == "U2"
    assert pick_assignee(roster, set(), {}, 5, "U3") == "U1"
    assert pick_assignee(roster, {"U2"}, {}, 5, "U1") == "U3"
    assert pick_assignee(roster, set(), {"U2": 5}, 5, "U1") == "U3"
    assert pick_assignee(roster, {"U1", "U2", "U3"}, {}, 5, None) is None
    assert pick_assignee([], set(), {}, 5, None) is None


@given(
    users,
    st.sets(st.sampled_from([f"U{i:02d}" for i in range(12)])),
    st.dictionaries(st.sampled_from([f"U{i:02d}" for i in range(12)]), st.integers(0, 6)),
    st.integers(1, 5),
    st.one_of(st.none(), st.sampled_from([f"U{i:02d}" for i in range(12)])),
)
def test_pick_is_deterministic_eligible_and_none_only_when_nobody_is(
    roster: list[str], away: set[str], counts: dict[str, int], capacity: int, last: str | None
) -> None:
    pick = pick_assignee(roster, away, counts, capacity, last)
    assert pick == pick_assignee(list(reversed(roster)), set(away), dict(counts), capacity, last)
    eligible = {u for u in roster if u not in away and counts.get(u, 0) < capacity}
    if pick is None:
        assert not eligible
    else:
        assert pick in eligible


@given(
    st.lists(st.sampled_from([f"U{i:02d}" for i in range(8)]), min_size=1, max_size=8, unique=True), st.integers(1, 4)
)
def test_rotation_is_fair_until_everyone_is_full(roster: list[str], capacity: int) -> None:
    counts: dict[str, int] = {}
    last = None
    for _ in range(len(roster) * capacity):
        last = pick_assignee(roster, set(), counts, capacity, last)
        assert last is not None
        counts[last] = counts.get(last, 0) + 1
        assert max(counts.values()) - min(counts.get(u, 0) for u in roster) <= 1
    assert pick_assignee(roster, set(), counts, capacity, last) is None
