"""The fake Anthropic speaks the Messages API wire format: the official anthropic SDK reads it,
and the gateway's Anthropic adapter turns its answers into what the openai SDK's types
accept."""

from __future__ import annotations

import time
from collections.abc import Iterator

import anthropic
import httpx
import orjson
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from apigateway.providers.anthropic import AnthropicProvider
from apigateway.providers.base import Deployment, UpstreamRequest
from apigateway.sse import SSEDecoder
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.server import serving

KEY = "test"
MODEL = "claude-sonnet-4-6"
WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": WEATHER["input_schema"],
    },
}


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic(api_key=KEY)
    with serving(fake):
        yield fake


@pytest.fixture
def fake(fake_server: FakeAnthropic) -> FakeAnthropic:
    fake_server.reset()
    return fake_server


@pytest.fixture
def sdk(fake: FakeAnthropic) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=fake.base_url, api_key=KEY, max_retries=0) as client:
        yield client


# --- the official SDK reads the fake -----------------------------------------------------


def test_sdk_create_text(fake, sdk):
    message = sdk.messages.create(
        model=MODEL,
        max_tokens=100,
        system="Be kind",
        messages=[{"role": "user", "content": "Hello there"}],
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert message.model == MODEL
    (block,) = message.content
    assert block.type == "text" and block.text == "Echo: Hello there"
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    # prompt: "Hello there" + "Be kind"; answer: "Echo: Hello there"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 3)
    assert message.usage.cache_read_input_tokens == 0
    (request,) = fake.requests
    assert request.path == "/v1/messages"
    assert request.headers["authorization"] == f"Bearer {KEY}"  # how SDK 1.0+ sends a key
    assert request.headers["anthropic-version"]  # the SDK sends its own, newer version
    assert request.json()["system"] == "Be kind"


def test_sdk_create_tool_use(fake, sdk):
    message = sdk.messages.create(
        model=MODEL,
        max_tokens=100,
        tools=[WEATHER],
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
    )
    assert message.stop_reason == "tool_use"
    (block,) = message.content
    assert isinstance(block, anthropic.types.ToolUseBlock)
    assert block.name == "get_weather" and block.input == {"city": "Paris"}
    assert block.id.startswith("toolu_")
    assert message.usage.output_tokens == 1  # {"city":"Paris"}
    follow_up = sdk.messages.create(
        model=MODEL,
        max_tokens=100,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "What's the weather in Paris?"},
            {"role": "assistant", "content": [block.model_dump(exclude_none=True)]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": block.id, "content": "22C and sunny"}
                ],
            },
        ],
    )
    assert follow_up.content[0].text == "The tool said: 22C and sunny"
    assert follow_up.stop_reason == "end_turn"


def test_sdk_max_tokens_and_stop_sequences(fake, sdk):
    messages = [{"role": "user", "content": "one two three four five"}]
    short = sdk.messages.create(model=MODEL, max_tokens=3, messages=messages)
    assert short.content[0].text == "Echo: one two"
    assert short.stop_reason == "max_tokens" and short.usage.output_tokens == 3
    stopped = sdk.messages.create(
        model=MODEL, max_tokens=50, messages=messages, stop_sequences=["four"]
    )
    assert stopped.content[0].text == "Echo: one two three "
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == "four"


def test_sdk_messages_stream(fake, sdk):
    with sdk.messages.stream(
        model=MODEL,
        max_tokens=100,
        messages=[{"role": "user", "content": "streaming is a fine way"}],
    ) as stream:
        kinds = [item.type for item in stream]
        message = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert kinds.count("text") == 6  # the SDK's own event, one per text delta: a word each
    assert message.content[0].text == "Echo: streaming is a fine way"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (5, 6)


def test_sdk_raw_stream_event_sequence(fake, sdk):
    events = list(
        sdk.messages.create(
            model=MODEL,
            max_tokens=100,
            messages=[{"role": "user", "content": "a b"}],
            stream=True,
        )
    )
    assert [event.type for event in events] == [  # the SDK drops the ping
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert [e.delta.text for e in events if e.type == "content_block_delta"] == [
        "Echo:",
        " a",
        " b",
    ]
    assert events[0].message.usage.input_tokens == 2
    assert events[-2].delta.stop_reason == "end_turn" and events[-2].usage.output_tokens == 3
    raw = httpx.post(
        f"{fake.base_url}/v1/messages",
        headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"},
        json={
            "model": MODEL,
            "max_tokens": 9,
            "stream": True,
            "messages": [{"role": "user", "content": "a"}],
        },
    )
    assert raw.headers["content-type"] == "text/event-stream"
    assert raw.text.startswith('event: message_start\ndata: {"type":"message_start"')
    assert 'event: ping\ndata: {"type":"ping"}\n\n' in raw.text
    assert raw.text.endswith('event: message_stop\ndata: {"type":"message_stop"}\n\n')


def test_sdk_stream_tool_use(fake, sdk):
    with sdk.messages.stream(
        model=MODEL,
        max_tokens=100,
        tools=[WEATHER],
        messages=[{"role": "user", "content": "weather in Paris please"}],
    ) as stream:
        kinds = [item.type for item in stream]
        message = stream.get_final_message()
    assert "input_json" in kinds
    (block,) = message.content
    assert block.type == "tool_use" and block.input == {"city": "Paris"}
    assert message.stop_reason == "tool_use"


def test_sdk_sees_anthropic_shaped_errors(fake):
    wrong = anthropic.Anthropic(base_url=fake.base_url, api_key="wrong", max_retries=0)
    with wrong, pytest.raises(anthropic.AuthenticationError) as caught:
        wrong.messages.create(
            model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 401
    assert caught.value.body["error"]["type"] == "authentication_error"
    url = f"{fake.base_url}/v1/messages"
    body = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    missing_key = httpx.post(url, headers={"anthropic-version": "2023-06-01"}, json=body)
    assert missing_key.status_code == 401
    old = httpx.post(url, headers={"x-api-key": KEY, "anthropic-version": "2022-01-01"}, json=body)
    assert old.status_code == 400 and "not a valid version" in old.json()["error"]["message"]
    no_version = httpx.post(url, headers={"x-api-key": KEY}, json=body)
    assert no_version.status_code == 400
    assert no_version.json() == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "anthropic-version: header is required",
        },
        "request_id": no_version.json()["request_id"],
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seed": 1}, "seed: Extra inputs are not permitted"),
        ({"model": "claude-opus-4-8", "temperature": 0.5}, "`temperature` is deprecated"),
        ({"temperature": 0.5, "top_p": 0.9}, "cannot both be specified"),
        ({"max_tokens": None}, "max_tokens: Input should be greater than or equal to 1"),
        ({"temperature": 1.5}, "temperature: Input should be less than or equal to 1"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]}, "non-empty"),
        (
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
                    },
                    {"role": "user", "content": "y"},
                ]
            },
            "`tool_use` ids were found without `tool_result` blocks",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t9"}]},
                ]
            },
            "unexpected `tool_use_id`",
        ),
    ],
)
def test_fake_rejects_what_anthropic_rejects(fake, sdk, change, message):
    body = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    body.update(change)
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk.post("/v1/messages", cast_to=object, body=body)
    assert message in caught.value.body["error"]["message"]


def test_a_client_that_goes_away_mid_stream_is_counted(fake):
    fake.chunk_delay = 0.05
    body = {
        "model": MODEL,
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": " ".join(["word"] * 30)}],
    }
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    with httpx.stream(
        "POST", f"{fake.base_url}/v1/messages", headers=headers, json=body
    ) as response:
        first = next(response.iter_bytes())
        assert first.startswith(b"event: message_start\n")
    deadline = time.monotonic() + 5
    while not fake.disconnected and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.disconnected == 1


# --- the adapter's requests are accepted, its translations are valid OpenAI --------------


def deployment(fake: FakeAnthropic, key: str = KEY) -> Deployment:
    return Deployment(
        provider="anthropic", upstream_model=MODEL, base_url=fake.base_url, api_key=key
    )


def send(request: UpstreamRequest) -> httpx.Response:
    response = httpx.request(
        request.method, request.url, headers=request.headers, content=request.body
    )
    assert response.status_code == 200, response.text
    return response


def complete(fake: FakeAnthropic, body: dict) -> ChatCompletion:
    adapter = AnthropicProvider()
    data = send(adapter.build_chat_request(body, deployment(fake))).content
    payload, usage = adapter.parse_chat_response(data, model="public", deployment=deployment(fake))
    completion = ChatCompletion.model_validate(payload)
    assert completion.usage.prompt_tokens == usage.prompt_tokens
    assert completion.usage.completion_tokens == usage.completion_tokens
    return completion


def test_adapter_chat_round_trip(fake):
    completion = complete(
        fake,
        {
            "model": "public",
            "messages": [
                {"role": "system", "content": "Be brief"},
                {"role": "user", "content": "Hello gateway"},
            ],
            "max_tokens": 50,
            "temperature": 1.8,  # clamped to 1, or the fake would refuse it
            "seed": 3,  # dropped, or the fake would refuse it
        },
    )
    assert completion.model == "public"
    assert completion.choices[0].message.content == "Echo: Hello gateway"
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 3)
    (request,) = fake.requests
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    sent = request.json()
    assert sent["system"] == "Be brief" and sent["temperature"] == 1 and "seed" not in sent


def test_adapter_leaves_sampling_out_for_models_without_it(fake):
    adapter = AnthropicProvider()
    target = Deployment("anthropic", "claude-opus-4-8", fake.base_url, KEY)
    body = {"model": "p", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.3}
    data = send(adapter.build_chat_request({**body, "top_p": 0.5}, target)).content
    payload, _ = adapter.parse_chat_response(data, model="p", deployment=target)
    assert ChatCompletion.model_validate(payload).choices[0].message.content == "Echo: hi"
    assert "temperature" not in fake.requests[0].json()


def test_adapter_length_finish(fake):
    completion = complete(
        fake,
        {"model": "public", "messages": [{"role": "user", "content": "a b c d"}], "max_tokens": 2},
    )
    assert completion.choices[0].message.content == "Echo: a"
    assert completion.choices[0].finish_reason == "length"


def test_adapter_tool_round_trip(fake):
    messages = [{"role": "user", "content": "what is the weather in Paris?"}]
    completion = complete(fake, {"model": "public", "messages": messages, "tools": [WEATHER_TOOL]})
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.choices[0].message.content is None
    (call,) = completion.choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    assert orjson.loads(call.function.arguments) == {"city": "Paris"}
    messages += [
        completion.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "22C and sunny"},
    ]
    completion = complete(fake, {"model": "public", "messages": messages, "tools": [WEATHER_TOOL]})
    assert completion.choices[0].message.content == "The tool said: 22C and sunny"


def stream_chunks(fake: FakeAnthropic, body: dict, include_usage: bool):
    adapter = AnthropicProvider()
    raw = send(adapter.build_chat_request({**body, "stream": True}, deployment(fake))).content
    translator = adapter.stream_translator(
        model="public", include_usage=include_usage, deployment=deployment(fake)
    )
    decoder = SSEDecoder()
    out = []
    for index in range(0, len(raw), 7):  # split anywhere
        for event in decoder.feed(raw[index : index + 7]):
            out += translator.feed(event)
    for event in decoder.flush():
        out += translator.feed(event)
    out += translator.close()
    assert translator.finished
    chunks = [ChatCompletionChunk.model_validate(chunk) for chunk in out]
    assert {chunk.id for chunk in chunks} == {translator.id}
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert set(finishes[:-1]) == {None}
    return chunks, finishes[-1]


@pytest.mark.parametrize("include_usage", [True, False])
def test_adapter_stream_round_trip(fake, include_usage):
    body = {"model": "public", "messages": [{"role": "user", "content": "a b c d e"}]}
    chunks, finish = stream_chunks(fake, body, include_usage)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: a b c d e" and finish == "stop"
    if include_usage:
        assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 5 + 6
        assert all(chunk.usage is None for chunk in chunks[:-1])
    else:
        assert all(chunk.usage is None for chunk in chunks)


def test_adapter_tool_stream_round_trip(fake):
    body = {
        "model": "public",
        "messages": [{"role": "user", "content": "weather in Paris?"}],
        "tools": [WEATHER_TOOL],
    }
    chunks, finish = stream_chunks(fake, body, True)
    calls = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or []]
    assert {call.index for call in calls} == {0}
    assert calls[0].function.name == "get_weather" and calls[0].id.startswith("toolu_")
    arguments = "".join(call.function.arguments or "" for call in calls)
    assert orjson.loads(arguments) == {"city": "Paris"} and finish == "tool_calls"


def test_adapter_maps_the_fakes_errors(fake):
    adapter = AnthropicProvider()
    body = {"model": "public", "messages": [{"role": "user", "content": "hi"}]}
    request = adapter.build_chat_request(body, deployment(fake, key="wrong"))
    response = httpx.request("POST", request.url, headers=request.headers, content=request.body)
    assert response.status_code == 401
    assert adapter.map_error(response.status_code, response.content).status == 502
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    fake.fail_next(529, overloaded)
    request = adapter.build_chat_request(body, deployment(fake))
    response = httpx.request("POST", request.url, headers=request.headers, content=request.body)
    assert response.status_code == 529
    error = adapter.map_error(response.status_code, response.content)
    assert error.status == 503 and error.headers == {"retry-after": "1"}
