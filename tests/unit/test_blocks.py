import re

from hypothesis import given
from hypothesis import strategies as st

from bridge.slack.blocks import CardView, customer_text, header_card
from bridge.text import slack_escape


def _section_texts(messages: list) -> list[str]:
    return [b["text"]["text"] for m in messages for b in m.blocks if b["type"] == "section"]


def test_card_shows_number_platform_customer_status_assignee() -> None:
    card = header_card(CardView(12, "X", "Maria <!here>", "maria_l", "https://x.com/maria_l", "open", None))
    top = card.blocks[0]["text"]["text"]
    assert "*#12*" in top and "X" in top and "&lt;!here&gt;" in top
    assert "<https://x.com/maria_l|@maria_l>" in top
    context = str(card.blocks[1])
    assert "open" in context and "nobody yet" in context


def test_hostile_customer_text_is_inert() -> None:
    msgs = customer_text("<!channel> <@U0LEAD> <!subteam^S1> <https://evil.example|click>")
    body = _section_texts(msgs)[0]
    assert "<" not in body and ">" not in body
    assert msgs[0].blocks[0]["text"]["verbatim"] is True


@given(st.text(alphabet=st.sampled_from(list("ab <>&\n")), min_size=0, max_size=16000))
def test_customer_text_is_never_truncated(text: str) -> None:
    msgs = customer_text(text)
    sections = _section_texts(msgs)
    assert all(len(s) <= 3000 for s in sections)
    assert all(len([b for b in m.blocks if b["type"] == "section"]) <= 4 for m in msgs)
    if text.strip():  # only whitespace-only pieces are left out: Slack refuses a blank section
        assert re.sub(r"\s", "", "".join(sections)) == re.sub(r"\s", "", slack_escape(text))


def test_outside_slack_label() -> None:
    msgs = customer_text("hi", label="Sent by @acme from the X app, outside Slack")
    assert msgs[0].blocks[-1]["type"] == "context"
