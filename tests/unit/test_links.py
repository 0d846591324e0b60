"""Customer links and handles: only what cannot break out of Slack markup is kept."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from bridge.domain import Platform, profile_url, safe_https_url, valid_handle
from connectors.meta.convert import customer_from_profile
from connectors.webhook.convert import parse_message
from connectors.x.convert import customer_from_user

MARKUP = ["<", ">", "|", " ", "\n", "\t", "\u202e", "\x00", "<!here>", "&", "javascript:", "https://", "@", "."]
url_ish = st.lists(st.sampled_from(MARKUP) | st.text(max_size=6), max_size=12).map("".join)


@given(st.one_of(url_ish, url_ish.map(lambda s: "https://" + s), st.text()))
def test_a_kept_url_is_https_and_cannot_break_out_of_a_link(url: str) -> None:
    kept = safe_https_url(url)
    if kept is not None:
        assert kept == url and kept.lower().startswith("https://")
        assert not re.search(r"[<>|\s]", kept) and all(c.isprintable() for c in kept)


@given(st.from_regex(r"[a-z0-9-]{1,20}\.example(/[A-Za-z0-9._~%/-]{0,40})?(\?[a-z=&0-9]{0,20})?", fullmatch=True))
def test_ordinary_https_urls_are_kept(rest: str) -> None:
    assert safe_https_url("https://" + rest) == "https://" + rest


def test_the_reported_attacks_are_dropped() -> None:
    for url in [
        "javascript:alert(1)",
        "https://shop.example/u|<!here> Verify your account",
        "<!here>",
        "http://shop.example/u",
        "https://user:pw@shop.example/",
        "https:///nohost",
        "https://a b.example",
        "data:text/html,x",
        "HTTPS://shop.example/<x>",
        "https://shop.example/\u202egnp.exe",
    ]:
        assert safe_https_url(url) is None, url


@given(url_ish)
def test_a_valid_x_handle_is_what_x_allows(handle: str) -> None:
    kept = valid_handle(Platform.X, handle)
    if kept is not None:
        assert re.fullmatch(r"[A-Za-z0-9_]{1,15}", kept)
        assert profile_url(Platform.X, kept) == f"https://x.com/{kept}"
        assert safe_https_url(profile_url(Platform.X, kept)) is not None


@given(st.from_regex(r"[A-Za-z0-9_]{1,15}", fullmatch=True))
def test_real_x_handles_are_kept(handle: str) -> None:
    assert valid_handle(Platform.X, handle) == handle and valid_handle(Platform.X, "@" + handle) == handle


@given(url_ish)
def test_instagram_and_generic_handles(handle: str) -> None:
    ig = valid_handle(Platform.INSTAGRAM, handle)
    if ig is not None:
        assert re.fullmatch(r"[A-Za-z0-9._]{1,30}", ig)
    generic = valid_handle(Platform.GENERIC, handle)
    if generic is not None:
        assert not re.search(r"[\s<>|&*~`@]", generic) and len(generic) <= 64 and generic.isprintable()


def test_forged_handles_are_dropped_at_each_edge() -> None:
    x = customer_from_user(
        {"id": "1", "name": "Eve", "username": "x|<!here>", "profile_image_url": "javascript:alert(1)"}, "1"
    )
    assert (x.handle, x.profile_url, x.avatar_url) == (None, None, None)
    ok = customer_from_user(
        {"id": "1", "name": "Maria", "username": "maria_l", "profile_image_url": "https://pbs.twimg.example/m.jpg"}, "1"
    )
    assert (ok.handle, ok.profile_url, ok.avatar_url) == (
        "maria_l",
        "https://x.com/maria_l",
        "https://pbs.twimg.example/m.jpg",
    )
    ig = customer_from_profile(Platform.INSTAGRAM, "1785", {"username": "tomas.rz/<!here>", "profile_pic": "x"})
    assert (ig.handle, ig.profile_url, ig.avatar_url) == (None, None, None)
    msg = parse_message(
        "shop",
        {
            "conversation_id": "c",
            "message_id": "m",
            "text": "hi",
            "sender": {
                "id": "v",
                "name": "Eve",
                "handle": "<!here>",
                "avatar_url": "javascript:alert(1)",
                "profile_url": "https://shop.example/u|<!here> Verify your account",
            },
        },
        0.0,
    )
    assert (msg.customer.handle, msg.customer.avatar_url, msg.customer.profile_url) == (None, None, None)
