"""Reasoning on chat completions, through the openai SDK, for every provider family:
`reasoning_effort` and OpenRouter's `reasoning` object become each provider's thinking
controls, the reasoning comes back as OpenRouter and DeepSeek return it, and a model that
cannot reason answers 400 rather than silently ignoring the request."""

from __future__ import annotations

import openai
import pytest

from tests.apigateway.conftest import UPSTREAM_KEY
from tests.fakes.anthropic import signature

QUESTION = "Why is the sky blue?"
THOUGHT = f"Thinking about: {QUESTION}"
WEATHER_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def ask(**extra) -> dict:
    return {"messages": [{"role": "user", "content": QUESTION}], **extra}


def extra_of(model) -> dict:
    return model.model_extra or {}


# --- Anthropic --------------------------------------------------------------------------


def test_reasoning_effort_makes_claude_think_and_returns_the_thinking(tenant, fake_anthropic):
    completion = tenant.client().chat.completions.create(
        model="claude-sonnet-4", reasoning_effort="high", temperature=0.5, max_tokens=8000, **ask()
    )
    sent = fake_anthropic.requests[-1].json()
    assert sent["thinking"]["type"] == "enabled"
    assert 1024 <= sent["thinking"]["budget_tokens"] < sent["max_tokens"] == 8000
    assert "temperature" not in sent  # Anthropic takes none with thinking
    message = completion.choices[0].message
    assert message.content == f"Echo: {QUESTION}"
    extra = extra_of(message)
    assert extra["reasoning_content"] == extra["reasoning"] == THOUGHT
    assert extra["reasoning_details"] == [
        {
            "type": "reasoning.text",
            "text": THOUGHT,
            "signature": signature(THOUGHT),
            "format": "anthropic-claude-v1",
            "index": 0,
        }
    ]
    assert completion.usage.completion_tokens_details.reasoning_tokens == len(THOUGHT.split())


def test_claude_thinking_streams_as_reasoning_deltas(tenant, fake_anthropic):
    stream = tenant.client().chat.completions.create(
        model="claude-sonnet-4",
        reasoning_effort="low",
        stream=True,
        stream_options={"include_usage": True},
        **ask(),
    )
    reasoning, reasoning_content, content, signatures = [], [], [], []
    usage = None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            extra = extra_of(choice.delta)
            reasoning.append(extra.get("reasoning") or "")
            reasoning_content.append(extra.get("reasoning_content") or "")
            content.append(choice.delta.content or "")
            for detail in extra.get("reasoning_details") or []:
                if detail.get("signature"):
                    signatures.append(detail["signature"])
    assert "".join(reasoning).strip() == "".join(reasoning_content).strip() == THOUGHT
    assert "".join(content) == f"Echo: {QUESTION}"
    assert signatures == [signature(THOUGHT)]
    assert fake_anthropic.requests[-1].json()["thinking"]["type"] == "enabled"
    assert usage is not None and usage.completion_tokens >= len(THOUGHT.split())


def test_reasoning_details_sent_back_rebuild_the_thinking_for_tool_use(tenant, fake_anthropic):
    client = tenant.client()
    first = client.chat.completions.create(
        model="claude-sonnet-4",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=WEATHER_TOOLS,
        reasoning_effort="medium",
    )
    said = first.choices[0].message
    assert said.tool_calls and extra_of(said)["reasoning_details"]
    second = client.chat.completions.create(
        model="claude-sonnet-4",
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [call.model_dump() for call in said.tool_calls],
                "reasoning_details": extra_of(said)["reasoning_details"],
            },
            {"role": "tool", "tool_call_id": said.tool_calls[0].id, "content": "sunny"},
        ],
        tools=WEATHER_TOOLS,
        reasoning_effort="medium",
    )
    assert second.choices[0].message.content == "The tool said: sunny"
    replayed = fake_anthropic.requests[-1].json()["messages"][1]["content"]
    assert replayed[0]["type"] == "thinking" and replayed[1]["type"] == "tool_use"


def test_exclude_thinks_without_returning_the_text(tenant, fake_anthropic):
    completion = tenant.client().chat.completions.create(
        model="claude-sonnet-4",
        extra_body={"reasoning": {"effort": "low", "exclude": True}},
        **ask(),
    )
    assert fake_anthropic.requests[-1].json()["thinking"]["type"] == "enabled"
    extra = extra_of(completion.choices[0].message)
    assert not {"reasoning", "reasoning_content", "reasoning_details"} & extra.keys()
    assert completion.usage.completion_tokens_details.reasoning_tokens == len(THOUGHT.split())


def test_a_reasoning_max_tokens_is_claudes_budget(tenant, fake_anthropic):
    tenant.client().chat.completions.create(
        model="claude-sonnet-4",
        max_tokens=5000,
        extra_body={"reasoning": {"max_tokens": 2048}},
        **ask(),
    )
    sent = fake_anthropic.requests[-1].json()
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert sent["max_tokens"] == 5000


def test_a_budget_that_leaves_no_room_for_the_answer_is_a_400(tenant, fake_anthropic):
    with pytest.raises(openai.BadRequestError) as caught:
        tenant.client().chat.completions.create(
            model="claude-sonnet-4",
            max_tokens=2000,
            extra_body={"reasoning": {"max_tokens": 4000}},
            **ask(),
        )
    assert "max_tokens" in caught.value.message
    assert fake_anthropic.requests == []


@pytest.mark.parametrize("model", ["claude-3-5-sonnet", "gpt-4o", "gemini-2.0-flash"])
def test_a_model_that_cannot_reason_is_a_400_not_a_silent_drop(
    tenant, fake_anthropic, fake_openai, fake_gemini, model
):
    with pytest.raises(openai.BadRequestError) as caught:
        tenant.client().chat.completions.create(model=model, reasoning_effort="low", **ask())
    assert caught.value.body["param"] == "reasoning_effort"
    assert "reason" in caught.value.message
    assert not (fake_anthropic.requests or fake_openai.requests or fake_gemini.requests)


def test_effort_none_on_a_model_that_cannot_reason_is_no_reasoning(tenant, fake_openai):
    tenant.client().chat.completions.create(model="gpt-4o", reasoning_effort="none", **ask())
    assert "reasoning_effort" not in fake_openai.requests[-1].json()


# --- OpenAI and OpenAI-compatible ---------------------------------------------------------


def test_the_reasoning_object_becomes_openais_reasoning_effort(tenant, fake_openai):
    completion = tenant.client().chat.completions.create(
        model="o4-mini", extra_body={"reasoning": {"effort": "high"}}, **ask()
    )
    sent = fake_openai.requests[-1].json()
    assert sent["reasoning_effort"] == "high" and "reasoning" not in sent
    assert completion.usage.completion_tokens_details.reasoning_tokens == 256


def test_reasoning_effort_passes_through_to_openai_reasoning_models(tenant, fake_openai):
    tenant.client().chat.completions.create(model="o4-mini", reasoning_effort="minimal", **ask())
    assert fake_openai.requests[-1].json()["reasoning_effort"] == "minimal"


@pytest.fixture
def deepseek(providers, fake_openai):
    providers["deepseek"] = {"api_key": UPSTREAM_KEY, "base_url": fake_openai.base_url + "/v1"}
    return fake_openai


def test_deepseek_chat_thinks_when_asked_and_returns_both_reasoning_fields(tenant, deepseek):
    completion = tenant.client().chat.completions.create(
        model="deepseek-chat", reasoning_effort="high", **ask()
    )
    sent = deepseek.requests[-1].json()
    assert sent["thinking"] == {"type": "enabled"} and sent["reasoning_effort"] == "high"
    extra = extra_of(completion.choices[0].message)
    assert extra["reasoning_content"] == extra["reasoning"] == THOUGHT
    assert completion.usage.completion_tokens_details.reasoning_tokens == len(THOUGHT.split())


def test_deepseek_effort_none_turns_thinking_off(tenant, deepseek):
    tenant.client().chat.completions.create(
        model="deepseek-reasoner", reasoning_effort="none", **ask()
    )
    sent = deepseek.requests[-1].json()
    assert sent["thinking"] == {"type": "disabled"} and "reasoning_effort" not in sent


def test_a_deepseek_reasoner_stream_carries_reasoning_in_both_fields(tenant, deepseek):
    stream = tenant.client().chat.completions.create(
        model="deepseek-reasoner", stream=True, **ask()
    )
    reasoning, reasoning_content = [], []
    for chunk in stream:
        for choice in chunk.choices:
            extra = extra_of(choice.delta)
            reasoning.append(extra.get("reasoning") or "")
            reasoning_content.append(extra.get("reasoning_content") or "")
    assert "".join(reasoning).strip() == "".join(reasoning_content).strip() == THOUGHT


# --- Gemini -------------------------------------------------------------------------------


def test_gemini_thinks_with_a_budget_and_returns_its_thoughts(tenant, fake_gemini):
    completion = tenant.client().chat.completions.create(
        model="gemini-2.5-flash", reasoning_effort="medium", max_tokens=2000, **ask()
    )
    config = fake_gemini.requests[-1].json()["generationConfig"]
    assert config["thinkingConfig"]["includeThoughts"] is True
    assert 0 < config["thinkingConfig"]["thinkingBudget"] < 2000
    message = completion.choices[0].message
    assert message.content == f"Echo: {QUESTION}"
    assert extra_of(message)["reasoning"] == extra_of(message)["reasoning_content"] == THOUGHT
    thoughts = len(THOUGHT.split())
    assert completion.usage.completion_tokens_details.reasoning_tokens == thoughts
    assert completion.usage.completion_tokens == len(message.content.split()) + thoughts


def test_gemini_thoughts_stream_as_reasoning_deltas(tenant, fake_gemini):
    stream = tenant.client().chat.completions.create(
        model="gemini-2.5-pro", reasoning_effort="low", stream=True, **ask()
    )
    reasoning, content = [], []
    for chunk in stream:
        for choice in chunk.choices:
            reasoning.append(extra_of(choice.delta).get("reasoning") or "")
            content.append(choice.delta.content or "")
    assert "".join(reasoning) == THOUGHT
    assert "".join(content) == f"Echo: {QUESTION}"


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"reasoning": "high"}, "reasoning"),
        ({"reasoning": {"effort": "high", "max_tokens": 2000}}, "reasoning"),
        ({"reasoning": {"max_tokens": 0}}, "reasoning"),
        ({"reasoning": {"exclude": "yes"}}, "reasoning"),
        ({"reasoning": {"effort": "low"}, "reasoning_effort": "high"}, "reasoning"),
        ({"reasoning": {"budget": 5}}, "reasoning"),
    ],
)
def test_malformed_reasoning_controls_are_400s(tenant, fake_anthropic, extra, param):
    with pytest.raises(openai.BadRequestError) as caught:
        tenant.client().chat.completions.create(model="claude-sonnet-4", **ask(), extra_body=extra)
    assert caught.value.body["param"] == param
    assert fake_anthropic.requests == []


def test_anthropics_own_thinking_field_on_chat_is_a_400_not_a_silent_drop(tenant, fake_anthropic):
    with pytest.raises(openai.BadRequestError) as caught:
        tenant.client().chat.completions.create(
            model="claude-sonnet-4",
            extra_body={"thinking": {"type": "enabled", "budget_tokens": 2048}},
            **ask(),
        )
    assert caught.value.body["param"] == "thinking"
    assert fake_anthropic.requests == []
