from hypothesis import given
from hypothesis import strategies as st

from connectors.x.convert import new_high_water, other_participant, read_page, to_message

ME = "1460987654321098752"


def page(ids: list[int], next_token: str | None = None) -> dict:
    data = [
        {
            "id": str(i),
            "event_type": "MessageCreate",
            "text": f"m{i}",
            "sender_id": "1290011223344556677",
            "dm_conversation_id": f"1290011223344556677-{ME}",
            "created_at": "2026-08-20T14:03:11.000Z",
        }
        for i in sorted(ids, reverse=True)
    ]
    body: dict = {
        "data": data,
        "meta": {"result_count": len(data)},
        "includes": {"users": [{"id": "1290011223344556677", "name": "J Doe", "username": "jdoe"}]},
    }
    if next_token:
        body["meta"]["next_token"] = next_token
    return body


def test_high_water_compares_ids_as_integers() -> None:
    # "999…" > "1000…" as strings, but not as snowflakes
    p = read_page(page([999_999_999_999_999_999, 1_000_000_000_000_000_001]), 999_999_999_999_999_999)
    assert [e["id"] for e in p.events] == ["1000000000000000001"]
    assert not p.all_new


def test_whole_new_page_means_look_further() -> None:
    p = read_page(page([5, 6, 7], next_token="t"), 4)
    assert p.all_new and p.next_token == "t"
    assert new_high_water(4, [p]) == 7
    assert not read_page({"meta": {"result_count": 0}}, 4).all_new


@given(st.sets(st.integers(min_value=1, max_value=10**19), max_size=30), st.integers(min_value=0, max_value=10**19))
def test_only_newer_events_are_taken(ids: set[int], mark: int) -> None:
    p = read_page(page(list(ids)), mark)
    assert {int(e["id"]) for e in p.events} == {i for i in ids if i > mark}
    assert new_high_water(mark, [p]) == max([mark, *ids])


def test_conversion_and_brand_sent_messages() -> None:
    body = page([10])
    users = {u["id"]: u for u in body["includes"]["users"]}
    msg = to_message(body["data"][0], me=ME, account="acme", users=users)
    assert msg is not None and not msg.from_brand
    assert msg.customer.name == "J Doe" and msg.customer.profile_url == "https://x.com/jdoe"
    mine = dict(body["data"][0], sender_id=ME)
    sent = to_message(mine, me=ME, account="acme", users=users)
    assert sent is not None and sent.from_brand and sent.customer.id == "1290011223344556677"
    assert other_participant("123", ME) is None
