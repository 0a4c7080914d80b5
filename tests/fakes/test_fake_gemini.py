"""The fake Gemini speaks Google's wire format: the official google-genai SDK reads it, and
the gateway's Gemini adapter turns its answers into what the openai SDK's types accept."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator

import httpx
import orjson
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from apigateway.providers.base import Deployment, UpstreamRequest
from apigateway.providers.gemini import GeminiProvider
from apigateway.sse import SSEDecoder
from tests.fakes.gemini import FakeGemini
from tests.fakes.server import serving

KEY = "gemini-upstream-test"
MODEL = "gemini-2.5-flash"
WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Current weather in a city",
    parameters=types.Schema(
        type=types.Type.OBJECT,
        properties={"city": types.Schema(type=types.Type.STRING)},
        required=["city"],
    ),
)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeGemini]:
    fake = FakeGemini(api_key=KEY)
    with serving(fake):
        yield fake


@pytest.fixture
def fake(fake_server: FakeGemini) -> FakeGemini:
    fake_server.reset()
    return fake_server


def client(fake: FakeGemini, key: str = KEY) -> genai.Client:
    options = types.HttpOptions(base_url=fake.base_url, api_version="v1beta")
    return genai.Client(api_key=key, http_options=options)


@pytest.fixture
def sdk(fake: FakeGemini) -> Iterator[genai.Client]:
    # Held for the whole test: a Client closes its HTTP connection when collected.
    with client(fake) as sdk_client:
        yield sdk_client


# --- the official SDK reads the fake -----------------------------------------------------


def test_sdk_generate_content_text(fake, sdk):
    response = sdk.models.generate_content(
        model=MODEL,
        contents="Hello there",
        config=types.GenerateContentConfig(system_instruction="Be kind", temperature=0.2),
    )
    assert response.text == "Echo: Hello there"
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    # prompt: "Hello there" + "Be kind"; answer: "Echo: Hello there"
    assert (usage.prompt_token_count, usage.candidates_token_count) == (4, 3)
    assert usage.total_token_count == 7
    (request,) = fake.requests
    assert request.path == f"/v1beta/models/{MODEL}:generateContent"
    assert request.headers["x-goog-api-key"] == KEY
    sent = request.json()
    assert sent["systemInstruction"]["parts"] == [{"text": "Be kind"}]
    assert sent["generationConfig"] == {"temperature": 0.2}


def test_sdk_generate_content_function_call(fake, sdk):
    response = sdk.models.generate_content(
        model=MODEL,
        contents="What's the weather in Paris?",
        config=types.GenerateContentConfig(
            tools=[types.Tool(function_declarations=[WEATHER])],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        ),
    )
    (call,) = response.function_calls
    assert call.name == "get_weather" and call.args == {"city": "Paris"}
    assert response.candidates[0].content.parts[0].thought_signature == b"fake-signature"
    assert response.usage_metadata.candidates_token_count >= 1


def test_sdk_function_response_round_trip(fake, sdk):
    contents = [
        types.Content(role="user", parts=[types.Part(text="weather in Paris?")]),
        types.Content(
            role="model",
            parts=[types.Part(function_call=types.FunctionCall(name="get_weather", args={}))],
        ),
        types.Content(
            role="user",
            parts=[
                types.Part(
                    function_response=types.FunctionResponse(
                        name="get_weather", response={"content": "22C and sunny"}
                    )
                )
            ],
        ),
    ]
    response = sdk.models.generate_content(model=MODEL, contents=contents)
    assert response.text == "The tool said: 22C and sunny"


def test_sdk_max_output_tokens_truncates(fake, sdk):
    response = sdk.models.generate_content(
        model=MODEL,
        contents="one two three four five",
        config=types.GenerateContentConfig(max_output_tokens=3),
    )
    assert response.text == "Echo: one two"
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS


def test_sdk_generate_content_stream(fake, sdk):
    chunks = list(
        sdk.models.generate_content_stream(
            model=MODEL, contents="streaming is a fine way to answer"
        )
    )
    assert len(chunks) > 2
    assert "".join(chunk.text for chunk in chunks) == "Echo: streaming is a fine way to answer"
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count == 8
    assert chunks[0].candidates[0].finish_reason is None
    assert fake.requests[0].query == "alt=sse"


def test_sdk_embed_content(fake, sdk):
    response = sdk.models.embed_content(
        model="gemini-embedding-001",
        contents=["first text", "second text"],
        config=types.EmbedContentConfig(output_dimensionality=16),
    )
    first, second = response.embeddings
    assert len(first.values) == 16 and len(second.values) == 16
    assert first.values != second.values
    again = sdk.models.embed_content(model="gemini-embedding-001", contents="first text")
    assert len(again.embeddings[0].values) == 768
    assert again.embeddings[0].values[:16] == first.values  # deterministic per text
    assert fake.requests[0].path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"


def test_sdk_sees_google_shaped_key_errors(fake):
    with client(fake, key="wrong") as wrong, pytest.raises(genai_errors.ClientError) as caught:
        wrong.models.generate_content(model=MODEL, contents="hi")
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    missing = httpx.post(f"{fake.base_url}/v1beta/models/{MODEL}:generateContent", json={})
    assert missing.status_code == 403
    assert missing.json()["error"]["status"] == "PERMISSION_DENIED"
    by_query = httpx.post(
        f"{fake.base_url}/v1beta/models/{MODEL}:generateContent?key={KEY}",
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    )
    assert by_query.status_code == 200


# --- the adapter's requests are accepted, its translations are valid OpenAI --------------


def deployment(fake: FakeGemini, model: str = MODEL) -> Deployment:
    return Deployment(provider="gemini", upstream_model=model, base_url=fake.base_url, api_key=KEY)


def send(request: UpstreamRequest) -> httpx.Response:
    response = httpx.request(
        request.method, request.url, headers=request.headers, content=request.body
    )
    assert response.status_code == 200, response.text
    return response


def test_adapter_chat_round_trip(fake):
    body = {
        "model": "public",
        "messages": [
            {"role": "system", "content": "Be brief"},
            {"role": "user", "content": "Hello gateway"},
        ],
        "max_tokens": 50,
    }
    adapter = GeminiProvider()
    data = send(adapter.build_chat_request(body, deployment(fake))).content
    payload, usage = adapter.parse_chat_response(data, model="public", deployment=deployment(fake))
    completion = ChatCompletion.model_validate(payload)
    assert completion.choices[0].message.content == "Echo: Hello gateway"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == usage.prompt_tokens == 4


def test_adapter_tool_round_trip(fake):
    adapter = GeminiProvider()
    messages = [{"role": "user", "content": "what is the weather in Paris?"}]
    body = {"model": "public", "messages": messages, "tools": [WEATHER_TOOL]}
    data = send(adapter.build_chat_request(body, deployment(fake))).content
    payload, _ = adapter.parse_chat_response(data, model="public", deployment=deployment(fake))
    completion = ChatCompletion.model_validate(payload)
    assert completion.choices[0].finish_reason == "tool_calls"
    (call,) = completion.choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    assert orjson.loads(call.function.arguments) == {"city": "Paris"}
    messages += [
        completion.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "22C and sunny"},
    ]
    body = {"model": "public", "messages": messages, "tools": [WEATHER_TOOL]}
    data = send(adapter.build_chat_request(body, deployment(fake))).content
    payload, _ = adapter.parse_chat_response(data, model="public", deployment=deployment(fake))
    assert ChatCompletion.model_validate(payload).choices[0].message.content == (
        "The tool said: 22C and sunny"
    )


@pytest.mark.parametrize("include_usage", [True, False])
def test_adapter_stream_round_trip(fake, include_usage):
    adapter = GeminiProvider()
    body = {"model": "public", "messages": [{"role": "user", "content": "a b c d e"}]}
    request = adapter.build_chat_request({**body, "stream": True}, deployment(fake))
    raw = send(request).content
    assert raw.count(b"\r\n\r\n") == 3  # "Echo: a", " b c", " d e": a word or two each
    translator = adapter.stream_translator(
        model="public", include_usage=include_usage, deployment=deployment(fake)
    )
    decoder = SSEDecoder()
    out = []
    for index in range(0, len(raw), 7):  # split anywhere, even inside CRLF
        for event in decoder.feed(raw[index : index + 7]):
            out += translator.feed(event)
    for event in decoder.flush():
        out += translator.feed(event)
    out += translator.close()
    chunks = [ChatCompletionChunk.model_validate(chunk) for chunk in out]
    assert translator.finished
    assert {chunk.id for chunk in chunks} == {translator.id}
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: a b c d e"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    if include_usage:
        assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 5 + 6
    else:
        assert all(chunk.usage is None for chunk in chunks)


@pytest.mark.parametrize("encoding_format", ["float", "base64"])
def test_adapter_embeddings_round_trip(fake, encoding_format):
    adapter = GeminiProvider()
    body = {
        "model": "public-embed",
        "input": ["alpha beta", "gamma"],
        "dimensions": 12,
        "encoding_format": encoding_format,
    }
    target = deployment(fake, "gemini-embedding-001")
    data = send(adapter.build_embeddings_request(body, target)).content
    payload, usage = adapter.parse_embeddings_response(data, model="public-embed", body=body)
    if encoding_format == "base64":  # decoded as the openai SDK does before validating
        for item in payload["data"]:
            raw = base64.b64decode(item["embedding"])
            item["embedding"] = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    response = CreateEmbeddingResponse.model_validate(payload)
    assert [item.index for item in response.data] == [0, 1]
    assert response.usage.prompt_tokens == usage.prompt_tokens == 4  # ceil(15 / 4)
    expected = orjson.loads(data)["embeddings"][0]["values"]
    assert len(response.data[0].embedding) == 12
    assert response.data[0].embedding == pytest.approx(expected, abs=1e-6)


def test_adapter_request_errors_map_through_the_adapter(fake):
    adapter = GeminiProvider()
    body = {"model": "public", "messages": [{"role": "user", "content": "hi"}]}
    wrong = Deployment(provider="gemini", upstream_model=MODEL, base_url=fake.base_url, api_key="x")
    request = adapter.build_chat_request(body, wrong)
    response = httpx.request("POST", request.url, headers=request.headers, content=request.body)
    assert response.status_code == 400
    assert adapter.map_error(response.status_code, response.content).status == 502
