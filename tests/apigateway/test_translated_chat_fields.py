"""Chat completion fields that Anthropic's and Gemini's wire formats have no place for, through
the openai SDK: a value that asks for something (logprobs, legacy functions, a logit bias, a
sampler of the local servers) is a 400 naming the field before anything is sent to them,
never an answer that silently lacks it. Their neutral values still pass."""

from __future__ import annotations

import openai
import pytest

HELLO = [{"role": "user", "content": "Hello there"}]
FUNCTIONS = [{"name": "get_weather", "parameters": {"type": "object", "properties": {}}}]
TRANSLATED = ["claude-3-5-sonnet", "gemini-2.5-flash"]


@pytest.mark.parametrize("model", TRANSLATED)
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("logprobs", True),
        ("top_logprobs", 2),
        ("logit_bias", {"50256": -100}),
        ("functions", FUNCTIONS),
        ("function_call", "auto"),
        ("top_k", 40),
        ("min_p", 0.1),
        ("repetition_penalty", 1.1),
    ],
)
def test_a_field_the_provider_cannot_take_is_a_400_not_a_silent_drop(
    tenant, fake_anthropic, fake_gemini, model, field, value
):
    with pytest.raises(openai.BadRequestError) as caught:
        tenant.client().chat.completions.create(
            model=model, messages=HELLO, extra_body={field: value}
        )
    assert caught.value.body["param"] == field
    assert caught.value.body["code"] == "unsupported_parameter"
    assert field in caught.value.message and model in caught.value.message
    assert not fake_anthropic.requests and not fake_gemini.requests


@pytest.mark.parametrize("model", TRANSLATED)
def test_neutral_values_are_taken(tenant, fake_anthropic, fake_gemini, model):
    completion = tenant.client().chat.completions.create(
        model=model,
        messages=HELLO,
        extra_body={"logprobs": False, "logit_bias": {}, "functions": None, "top_k": None},
    )
    assert completion.choices[0].message.content
