"""Gemini models through the gateway with the openai SDK, against the fake Gemini."""

import httpx
import pytest

from tests.apigateway.conftest import GEMINI_KEY

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
]


def test_chat_is_translated_both_ways(tenant, fake_gemini):
    completion = tenant.client().chat.completions.create(
        model="gemini-2.5-flash",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello Gemini"},
        ],
        temperature=1.5,
        max_tokens=50,
    )
    assert completion.choices[0].message.content == "Echo: Hello Gemini"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gemini-2.5-flash"
    assert completion.usage.prompt_tokens > 0
    sent = fake_gemini.requests[-1]
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == GEMINI_KEY
    assert tenant.key not in sent.body.decode() and tenant.key not in str(sent.headers)
    body = sent.json()
    assert body["systemInstruction"]["parts"][0]["text"] == "Be brief."
    assert body["generationConfig"]["temperature"] == 1.5


@pytest.mark.parametrize("include_usage", [False, True])
def test_streaming_is_translated_to_chunks(tenant, fake_gemini, include_usage):
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    chunks = list(
        tenant.client().chat.completions.create(
            model="gemini-2.5-flash",
            messages=[{"role": "user", "content": "one two three"}],
            stream=True,
            **extra,
        )
    )
    assert fake_gemini.requests[-1].query == "alt=sse"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({chunk.id for chunk in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: one two three"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    if include_usage:
        assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 4
    else:
        assert all(chunk.usage is None for chunk in chunks)


def test_function_calling_round_trip(tenant):
    client = tenant.client()
    first = client.chat.completions.create(
        model="gemini-2.5-flash",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=TOOLS,
    )
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city":"Paris"}'
    second = client.chat.completions.create(
        model="gemini-2.5-flash",
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
        tools=TOOLS,
    )
    assert second.choices[0].message.content.startswith("The tool said:")
    assert "sunny" in second.choices[0].message.content


def test_embeddings(tenant, fake_gemini):
    result = tenant.client().embeddings.create(
        model="gemini-embedding-001", input=["alpha", "beta"], dimensions=16
    )
    assert [len(item.embedding) for item in result.data] == [16, 16]
    assert result.usage.prompt_tokens > 0
    assert fake_gemini.requests[-1].path.endswith(":batchEmbedContents")


def test_a_wrong_operator_key_is_502(tenant, providers):
    providers["gemini"]["api_key"] = "wrong"
    response = httpx.post(
        f"{tenant.url}/v1/chat/completions",
        json={"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}]},
        headers={"authorization": f"Bearer {tenant.key}"},
    )
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "api_error"
    assert "wrong" not in response.text
