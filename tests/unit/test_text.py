from hypothesis import given
from hypothesis import strategies as st

from bridge.text import is_safe_cut, slack_escape, slack_escaped_len, split_text, utf8_len


def test_escape_makes_mentions_inert() -> None:
    hostile = "<!channel> <!here> <@U0LEAD> <!subteam^S1> <https://evil.example|click> & co"
    out = slack_escape(hostile)
    assert "<" not in out and ">" not in out
    assert out.startswith("&lt;!channel&gt;")
    assert "&amp; co" in out


def test_split_prefers_paragraphs_then_words() -> None:
    text = "a" * 70 + "\n\n" + "b" * 40
    assert split_text(text, 100) == ["a" * 70 + "\n\n", "b" * 40]
    words = "word " * 30
    pieces = split_text(words, 42)
    assert all(p.endswith(" ") for p in pieces[:-1])


def test_split_keeps_emoji_sequences_whole() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # ZWJ family
    text = "x" * 9 + family + "y"
    pieces = split_text(text, 10)
    assert "".join(pieces) == text
    assert all(family in p or "\u200d" not in p for p in pieces)
    flag_pair = "\U0001f1e9\U0001f1ea" * 3  # three flags
    pieces = split_text(flag_pair, 3)
    assert all(len(p) % 2 == 0 for p in pieces)


def test_split_by_escaped_cost() -> None:
    text = "<" * 10
    pieces = split_text(text, 8, slack_escaped_len)
    assert [len(p) for p in pieces] == [2, 2, 2, 2, 2]


@given(st.text(min_size=0, max_size=400), st.integers(min_value=4, max_value=60))
def test_split_is_lossless_and_bounded(text: str, limit: int) -> None:
    pieces = split_text(text, limit)
    assert "".join(pieces) == text
    assert all(len(p) <= limit for p in pieces)
    assert all(p for p in pieces) or text == ""


@given(st.text(min_size=1, max_size=200), st.integers(min_value=4, max_value=40))
def test_split_by_bytes_is_bounded(text: str, limit: int) -> None:
    pieces = split_text(text, limit, utf8_len)
    assert "".join(pieces) == text
    assert all(len(p.encode()) <= limit for p in pieces)


@given(
    st.text(
        alphabet=st.sampled_from(["a", " ", "\u0301", "\u200d", "\U0001f469", "\U0001f3fd"]), min_size=1, max_size=120
    ),
    st.integers(min_value=6, max_value=30),
)
def test_split_cuts_on_grapheme_boundaries_when_possible(text: str, limit: int) -> None:
    pieces = split_text(text, limit)
    pos = 0
    for p in pieces[:-1]:
        pos += len(p)
        # a cut inside a grapheme only happens when the grapheme alone exceeds the window
        if not is_safe_cut(text, pos):
            assert len(p) == limit
