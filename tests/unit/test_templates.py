import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.templates import VARIABLES, TemplateContext, render, validate

CTX = TemplateContext(
    customer_name="Maria López",
    customer_handle="maria_l",
    agent_name="Sam Rivera",
    platform="X",
    conversation=12,
    brand="Acme",
)


def test_every_variable_renders() -> None:
    text = " ".join("{" + v + "}" for v in VARIABLES)
    validate(text)
    assert render(text, CTX.values()) == "Maria Maria López @maria_l Sam Rivera Sam X 12 Acme soon soon"


def test_handle_falls_back_to_the_name() -> None:
    ctx = TemplateContext("Page Visitor", None, "Kim", "Messenger", 3, "Acme")
    assert render("{handle}", ctx.values()) == "Page Visitor"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Hi {firstname}", "unknown variable {firstname}"),
        ("Hi {first_name!r}", "not a variable"),
        ("Hi {first_name:>10}", "not a variable"),
        ("Hi {0}", "not a variable"),
        ("Hi {", "Known variables"),
        ("   ", "needs some text"),
    ],
)
def test_bad_templates_are_refused_with_the_known_variables(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")) as info:
        validate(text)
    if "variable" in message:
        assert "{agent_first_name}" in str(info.value)


def test_literal_braces() -> None:
    validate("Use {{code}} please, {first_name}")
    assert render("Use {{code}} please, {first_name}", CTX.values()) == "Use {code} please, Maria"


@given(st.text(max_size=300))
def test_a_template_that_validates_always_renders(text: str) -> None:
    try:
        validate(text)
    except ValueError:
        return
    assert isinstance(render(text, CTX.values()), str)
