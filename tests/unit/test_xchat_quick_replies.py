"""X Chat quick replies (connectors/xchat/convert.py): the offer as chatxdk takes it, and the tapped option's
metadata read from any decrypted content without raising."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.csat import quick_replies
from connectors.xchat.convert import QUICK_REPLY_METADATA, quick_reply_request, tapped

json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


def test_the_survey_offer_has_each_payload_as_metadata() -> None:
    offer = quick_reply_request(quick_replies(9), "r1")
    options = offer["request"]["options"]
    assert options["id"] == "r1"
    assert [(o["id"], o["label"], o["metadata"]) for o in options["options"]] == [
        (str(n), title, payload) for n, (title, payload) in enumerate(quick_replies(9), 1)
    ]


@pytest.mark.parametrize(
    "options",
    [
        tuple((f"{n}", f"p{n}") for n in range(21)),  # more than 20
        (("x" * 37, "p"),),  # a label over 36 characters
        (("", "p"),),  # an empty label
        (("ok", "m" * (QUICK_REPLY_METADATA + 1)),),  # metadata over 1,000
    ],
)
def test_an_offer_over_the_limits_is_refused(options: tuple[tuple[str, str], ...]) -> None:
    with pytest.raises(ValueError):
        quick_reply_request(options, "r1")


def test_the_tapped_metadata_is_read_from_a_response_only() -> None:
    answer = {"response": {"options": {"request_id": "r1", "selected_option_id": "4", "metadata": "csat:9:4"}}}
    assert tapped({"text": "4", "quick_reply": answer}) == "csat:9:4"
    assert tapped({"text": "4"}) == ""
    assert tapped({"quick_reply": {"request": {"options": {"id": "r1", "options": []}}}}) == ""  # an offer
    too_long = {"response": {"options": {"metadata": "m" * (QUICK_REPLY_METADATA + 1)}}}
    assert tapped({"quick_reply": too_long}) == ""


@given(json)
def test_any_content_gives_a_string_and_never_raises(content: Any) -> None:
    value = tapped(content if isinstance(content, dict) else {"quick_reply": content})
    assert isinstance(value, str)
