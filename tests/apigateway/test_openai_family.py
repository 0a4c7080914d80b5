"""The official openai SDK against the gateway, against a fake OpenAI-shaped provider."""

import base64
import struct

import openai
import pytest

from billing.models import EntryKind, LedgerEntry
from tests.apigateway.conftest import UPSTREAM_KEY
from usage import pipeline


def test_list_models_shows_only_configured_providers(tenant):
    models = tenant.client().models.list()
    ids = {model.id for model in models.data}
    assert {"gpt-4o", "gpt-4o-mini", "mistral-large-latest", "dall-e-3"} <= ids
    assert "gemini-2.5-flash" in ids
    assert "claude-3-5-sonnet" in ids
    assert "deepseek-chat" not in ids  # no DeepSeek key configured in this test
    gpt = tenant.client().models.retrieve("gpt-4o")
    assert (gpt.id, gpt.object, gpt.owned_by, gpt.created) == (
        "gpt-4o",
        "model",
        "openai",
        1686935002,
    )


def test_chat_completion_round_trip(tenant, fake_openai):
    completion = tenant.client().chat.completions.create(
        model="gpt-4o",
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Hello there!"},
        ],
        temperature=0.2,
    )
    assert completion.choices[0].message.content == "Echo: Hello there!"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-4o"
    assert completion.usage.prompt_tokens == 7
    sent = fake_openai.requests[-1]
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert tenant.key not in str(sent.headers) and tenant.key not in sent.body.decode()
    assert sent.json()["temperature"] == 0.2


def test_a_call_is_charged_to_the_organization_once(tenant):
    response = tenant.client().chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Hello there!"}]
    )
    request_id = response.headers["x-request-id"]
    assert pipeline.pending() == 1
    assert pipeline.drain() == 1
    assert pipeline.drain() == 0
    entry = LedgerEntry.objects.get(reference=f"usage:{request_id}")
    assert entry.kind == EntryKind.USAGE
    # 2 prompt tokens at $2.50/M + 3 completion tokens at $10/M = 5,000 + 30,000 nano-dollars
    assert entry.amount_nanos == -35_000
    assert response.headers["x-nexeon-cost"] == "0.000035"


def test_streaming_relays_chunks_with_one_id_and_no_usage_unless_asked(tenant):
    stream = tenant.client().chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "one two three"}], stream=True
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({chunk.id for chunk in chunks}) == 1
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Echo: one two three"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None and chunk.choices for chunk in chunks)


def test_streaming_with_include_usage_ends_with_a_usage_chunk(tenant, fake_openai):
    stream = tenant.client().chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "one two"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 3
    assert all(chunk.usage is None for chunk in chunks[:-1])


def test_the_gateway_always_asks_the_provider_for_stream_usage(tenant, fake_openai):
    list(
        tenant.client().chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert fake_openai.requests[-1].json()["stream_options"] == {"include_usage": True}


def test_tool_calls_round_trip(tenant):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    client = tenant.client()
    first = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=tools,
        tool_choice="auto",
    )
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"city": "Paris"}')
    second = client.chat.completions.create(
        model="gpt-4o",
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
        tools=tools,
    )
    assert second.choices[0].message.content == "The tool said: sunny"


def test_embeddings_float_and_base64(tenant):
    client = tenant.client()
    floats = client.embeddings.create(
        model="text-embedding-3-small", input=["a b", "c"], encoding_format="float", dimensions=8
    )
    assert [item.index for item in floats.data] == [0, 1]
    assert len(floats.data[0].embedding) == 8
    default = client.embeddings.create(model="text-embedding-3-small", input="a b", dimensions=8)
    assert default.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)
    assert struct is not None and base64 is not None


def test_images_generation(tenant):
    image = tenant.client().images.generate(
        model="dall-e-3", prompt="A futuristic city at sunset", n=1, size="1024x1024"
    )
    assert image.data[0].url.startswith("https://")
    b64 = tenant.client().images.generate(prompt="A city", response_format="b64_json")
    assert base64.b64decode(b64.data[0].b64_json).startswith(b"\x89PNG")


def test_wrong_key_is_401_in_openai_format(tenant):
    with pytest.raises(openai.AuthenticationError) as caught:
        tenant.client(key="nex-sk-" + "x" * 48).models.list()
    assert caught.value.status_code == 401
    assert caught.value.body["code"] == "invalid_api_key"
