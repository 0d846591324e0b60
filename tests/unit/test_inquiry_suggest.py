"""The pure parts of inquiry types and suggested replies: keywords, the classifier's abstentions, ranking."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bridge.commands import SetType, parse_slash, parse_thread
from bridge.inquiry import KeywordRules, Model, suggest
from bridge.slack.type_blocks import suggestion_actions, type_actions
from bridge.suggest import Suggester

RULES = {"service": ["refund", "order"], "sales": ["price", "in stock"], "spam": ["配信"]}
EXAMPLES = [
    ("where is my order it has not arrived", "service"),
    ("my parcel is late, tracking shows nothing", "service"),
    ("the package never came", "service"),
    ("how much does the blue jacket cost", "sales"),
    ("do you ship to canada and what is the price", "sales"),
    ("is the large size in stock", "sales"),
]
TEMPLATES = [("refund", "Your refund is on its way"), ("hours", "We are open 9 to 5"), ("size", "See the size guide")]


def test_keywords_whole_words_any_case_any_script() -> None:
    rules = KeywordRules.of(RULES)
    assert rules.match("REFUND please!") == "service"
    assert rules.match("refunding") is None
    assert rules.match("Is it IN\n STOCK?") == "sales"
    assert rules.match("配信停止") == "spam"


def test_model_learns_and_abstains() -> None:
    model = Model.train(EXAMPLES)
    assert model.predict("my order has not arrived yet") == "service"
    assert model.predict("how much is the red jacket") == "sales"
    assert Model.train(EXAMPLES[:3]).predict("where is my order") is None  # one type only


@given(st.text(alphabet="qxzjkvw0189#$%", max_size=40))
def test_classifier_abstains_on_garbage(text: str) -> None:
    assert Model.train(EXAMPLES).predict(text) is None
    assert suggest(text, {}, Model.train(EXAMPLES)) is None


def test_classifier_abstains_on_empty() -> None:
    assert suggest("", RULES, Model.train(EXAMPLES)) is None
    assert suggest("   ", RULES, None) is None


@given(st.text(max_size=300))
def test_ranking_is_deterministic_and_bounded(text: str) -> None:
    one, two = Suggester(TEMPLATES, [("refund me", "refund")]), Suggester(list(reversed(TEMPLATES)))
    ranked = one.rank(text)
    assert ranked == one.rank(text) and len(ranked) <= 3
    assert [s.name for s in two.rank(text)] == [s.name for s in Suggester(TEMPLATES).rank(text)]


def test_ranking_finds_the_template_and_uses_past_choices() -> None:
    assert Suggester(TEMPLATES).rank("I want a refund")[0].name == "refund"
    assert Suggester([]).rank("anything") == []
    prior = Suggester(TEMPLATES, [("quand ouvrez-vous", "hours")] * 3)
    assert prior.rank("quand ouvrez-vous demain")[0].name == "hours"


def test_type_commands_parse() -> None:
    assert parse_thread("<@B1> type Sales", "B1") == SetType("sales")
    assert parse_slash("type #12 service").command == SetType("service")  # type: ignore[union-attr]


def test_blocks_stay_within_slack_limits() -> None:
    types = [(f"t{i}", ":x:") for i in range(150)]
    block = type_actions(None, "t1", types)
    assert block is not None and len(block["elements"][-1]["options"]) == 100
    assert block["elements"][0]["action_id"] == "conv_type_confirm"
    buttons = suggestion_actions(["a" * 200, "b", "c", "d"])
    assert buttons is not None and len(buttons["elements"]) == 3
    assert all(len(b["text"]["text"]) <= 75 for b in buttons["elements"])
    assert suggestion_actions([]) is None
