"""Anthropic models through the gateway with the openai SDK, against the fake Anthropic."""

import httpx
import pytest

from tests.apigateway.conftest import ANTHROPIC_KEY

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkY"
    "AAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


def test_chat_is_translated_both_ways(tenant, fake_anthropic):
    completion = tenant.client().chat.completions.create(
        model="claude-3-5-sonnet",
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Hello Claude"},
        ],
        temperature=1.7,
    )
    assert completion.choices[0].message.content == "Echo: Hello Claude"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "claude-3-5-sonnet"
    assert completion.usage.completion_tokens == 3
    sent = fake_anthropic.requests[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == ANTHROPIC_KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert tenant.key not in sent.body.decode() and tenant.key not in str(sent.headers)
    body = sent.json()
    assert body["model"] == "claude-3-5-sonnet-20241022"
    assert body["system"] == "You are a helpful assistant."
    assert body["max_tokens"] == 8192  # the model's maximum: what credit was reserved for
    assert body["temperature"] == 1  # Anthropic accepts 0..1: clamped


def test_max_tokens_becomes_a_length_stop(tenant):
    completion = tenant.client().chat.completions.create(
        model="claude-3-5-sonnet",
        messages=[{"role": "user", "content": "one two three four five"}],
        max_tokens=2,
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == "Echo: one"


def test_image_parts_are_sent_as_image_blocks(tenant, fake_anthropic):
    tenant.client().chat.completions.create(
        model="claude-3-5-sonnet",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": PIXEL}},
                ],
            }
        ],
    )
    blocks = fake_anthropic.requests[-1].json()["messages"][0]["content"]
    assert blocks[1]["type"] == "image"
    assert blocks[1]["source"]["type"] == "base64"
    assert blocks[1]["source"]["media_type"] == "image/png"


@pytest.mark.parametrize("include_usage", [False, True])
def test_streaming_events_become_chunks(tenant, include_usage):
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    chunks = list(
        tenant.client().chat.completions.create(
            model="claude-3-5-sonnet",
            messages=[{"role": "user", "content": "one two three"}],
            stream=True,
            **extra,
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({chunk.id for chunk in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: one two three"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    if include_usage:
        assert chunks[-1].choices == []
        assert chunks[-1].usage.completion_tokens == 4
        assert chunks[-1].usage.prompt_tokens == 3
    else:
        assert all(chunk.usage is None for chunk in chunks)


def test_tool_use_and_tool_results_round_trip(tenant, fake_anthropic):
    client = tenant.client()
    first = client.chat.completions.create(
        model="claude-3-5-sonnet",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=TOOLS,
        tool_choice="required",
    )
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert call.function.arguments.replace(" ", "") == '{"city":"Paris"}'
    assert fake_anthropic.requests[-1].json()["tool_choice"] == {"type": "any"}
    second = client.chat.completions.create(
        model="claude-3-5-sonnet",
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
        tools=TOOLS,
    )
    assert second.choices[0].message.content == "The tool said: sunny"
    sent = fake_anthropic.requests[-1].json()["messages"]
    assert sent[1]["content"][0]["type"] == "tool_use"
    assert sent[2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": call.id,
        "content": "sunny",
    }


def test_streamed_tool_calls(tenant):
    chunks = list(
        tenant.client().chat.completions.create(
            model="claude-3-5-sonnet",
            messages=[{"role": "user", "content": "weather in Paris?"}],
            tools=TOOLS,
            stream=True,
        )
    )
    calls = [
        c.choices[0].delta.tool_calls for c in chunks if c.choices and c.choices[0].delta.tool_calls
    ]
    assert calls[0][0].function.name == "get_weather"
    arguments = "".join(call[0].function.arguments or "" for call in calls)
    assert arguments.replace(" ", "") == '{"city":"Paris"}'
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_provider_overload_is_retried_then_503(tenant, fake_anthropic):
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    fake_anthropic.fail_next(529, overloaded, times=3)
    response = httpx.post(
        f"{tenant.url}/v1/chat/completions",
        json={"model": "claude-3-5-sonnet", "messages": [{"role": "user", "content": "x"}]},
        headers={"authorization": f"Bearer {tenant.key}"},
    )
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "api_error"
    assert "retry-after" in response.headers
    assert len(fake_anthropic.requests) == 3


def test_embeddings_are_not_offered_for_chat_models(tenant):
    response = httpx.post(
        f"{tenant.url}/v1/embeddings",
        json={"model": "claude-3-5-sonnet", "input": "x"},
        headers={"authorization": f"Bearer {tenant.key}"},
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
