"""The Anthropic adapter, pure: OpenAI requests as Messages API requests, Anthropic's answers
(whole messages and named SSE events) as OpenAI's.

The .sse fixtures are Messages API streams in the exact wire format (LF-framed named events,
compact JSON, cumulative usage in message_delta)."""

from pathlib import Path

import orjson
import pytest

from apigateway.errors import GatewayError
from apigateway.providers.anthropic import AnthropicProvider
from apigateway.providers.base import Deployment
from apigateway.sse import SSEDecoder, SSEEvent
from tests.apigateway.providers.stream_events import deltas

FIXTURES = Path(__file__).parent / "fixtures"
DEPLOYMENT = Deployment(
    provider="anthropic",
    upstream_model="claude-sonnet-4-5",
    base_url="https://api.anthropic.com",
    api_key="sk-ant-operator-secret",
    extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
)
ANTHROPIC = AnthropicProvider()
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"


def sent(body: dict, deployment: Deployment = DEPLOYMENT) -> dict:
    return orjson.loads(ANTHROPIC.build_chat_request(body, deployment).body)  # type: ignore[arg-type]


def chat(*messages: dict, **options) -> dict:
    return sent({"model": "claude", "messages": list(messages), **options})


def user(content) -> dict:
    return {"role": "user", "content": content}


def text(value: str) -> dict:
    return {"type": "text", "text": value}


# --- requests ----------------------------------------------------------------------------


def test_request_address_headers_and_minimal_body():
    request = ANTHROPIC.build_chat_request({"model": "c", "messages": [user("Hi")]}, DEPLOYMENT)
    assert request.method == "POST"
    assert request.url == "https://api.anthropic.com/v1/messages"
    assert request.headers == {
        "x-api-key": "sk-ant-operator-secret",
        "anthropic-version": "2023-06-01",
        "content-type": "application/json",
        "anthropic-beta": "prompt-caching-2024-07-31",
    }
    assert orjson.loads(request.body) == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [text("Hi")]}],
    }


def test_stream_flag():
    assert chat(user("Hi"), stream=True)["stream"] is True
    assert "stream" not in chat(user("Hi"), stream=False)


def test_system_and_developer_messages_join_into_the_system_string():
    body = chat(
        {"role": "system", "content": "Be brief."},
        user("Hi"),
        {"role": "developer", "content": [text("Answer in French.")]},
        {"role": "assistant", "content": "Salut"},
    )
    assert body["system"] == "Be brief.\n\nAnswer in French."
    assert body["messages"] == [
        {"role": "user", "content": [text("Hi")]},
        {"role": "assistant", "content": [text("Salut")]},
    ]


def test_consecutive_turns_of_one_role_merge_and_empty_texts_are_dropped():
    body = chat(
        user("one"),
        user([text("two"), text("")]),
        {"role": "assistant", "content": "three"},
        {"role": "assistant", "content": ""},
        {"role": "assistant", "content": [text("four")]},
        user("five"),
    )
    assert body["messages"] == [
        {"role": "user", "content": [text("one"), text("two")]},
        {"role": "assistant", "content": [text("three"), text("four")]},
        {"role": "user", "content": [text("five")]},
    ]


def test_images_from_data_urls_and_http_urls():
    body = chat(
        user(
            [
                text("Compare"),
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://x.example/cat.webp?s=1"}},
            ]
        )
    )
    assert body["messages"][0]["content"] == [
        text("Compare"),
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://x.example/cat.webp?s=1"}},
    ]


@pytest.mark.parametrize("url", ["ftp://x.example/a.png", "data:image/png,notbase64"])
def test_unusable_image_urls_are_400(url):
    with pytest.raises(GatewayError) as caught:
        chat(user([{"type": "image_url", "image_url": {"url": url}}]))
    assert caught.value.status == 400 and caught.value.param == "messages"


def test_unsupported_parts_and_roles_are_400():
    with pytest.raises(GatewayError) as caught:
        chat(user([{"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}]))
    assert caught.value.status == 400
    with pytest.raises(GatewayError) as caught:
        chat({"role": "function", "name": "f", "content": "1"})
    assert caught.value.status == 400
    with pytest.raises(GatewayError) as caught:
        chat({"role": "system", "content": "only a system prompt"})
    assert caught.value.status == 400 and caught.value.param == "messages"


def test_a_tool_round_trip():
    weather = {
        "id": "call_abc",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    clock = {"id": "call_def", "type": "function", "function": {"name": "now", "arguments": ""}}
    body = chat(
        user("Weather and time in Paris?"),
        {"role": "assistant", "content": "Checking.", "tool_calls": [weather, clock]},
        {"role": "tool", "tool_call_id": "call_abc", "content": '{"temp_c": 21}'},
        {"role": "tool", "tool_call_id": "call_def", "content": [text("14:05")]},
        user("Thanks"),
        tools=[WEATHER_TOOL],
    )
    assert body["messages"] == [
        {"role": "user", "content": [text("Weather and time in Paris?")]},
        {
            "role": "assistant",
            "content": [
                text("Checking."),
                {
                    "type": "tool_use",
                    "id": "call_abc",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "call_def", "name": "now", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_abc", "content": '{"temp_c": 21}'},
                {"type": "tool_result", "tool_use_id": "call_def", "content": "14:05"},
                text("Thanks"),
            ],
        },
    ]


def test_bad_tool_calls_and_tool_messages_are_400():
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}
    with pytest.raises(GatewayError):
        chat(user("x"), {"role": "assistant", "tool_calls": [call]})
    with pytest.raises(GatewayError):
        chat(user("x"), {"role": "tool", "content": "1"})


def test_max_tokens_fallback_chain():
    # Both fields (validation leaves only one): the smaller, as no provider may read more.
    assert chat(user("x"), max_completion_tokens=300, max_tokens=5)["max_tokens"] == 5
    assert chat(user("x"), max_completion_tokens=300)["max_tokens"] == 300
    assert chat(user("x"), max_tokens=5)["max_tokens"] == 5
    capped = Deployment("anthropic", "claude", "https://a.example", "k", max_output_tokens=8192)
    assert sent({"messages": [user("x")]}, capped)["max_tokens"] == 8192
    assert sent({"messages": [user("x")], "max_tokens": 10}, capped)["max_tokens"] == 10
    assert chat(user("x"))["max_tokens"] == 4096


@pytest.mark.parametrize(("given", "expected"), [(0, 0), (0.7, 0.7), (1, 1), (1.6, 1), (2, 1)])
def test_temperature_is_clamped_to_anthropics_range(given, expected):
    assert chat(user("x"), temperature=given)["temperature"] == expected


def test_temperature_wins_over_top_p_as_anthropic_takes_only_one():
    assert chat(user("x"), top_p=0.9)["top_p"] == 0.9
    body = chat(user("x"), temperature=0.5, top_p=0.9)
    assert body["temperature"] == 0.5 and "top_p" not in body


@pytest.mark.parametrize(
    "upstream_model",
    [
        "claude-opus-4-7",
        "claude-opus-4-8",
        "claude-sonnet-5",
        "claude-opus-5-5",
        "claude-haiku-5-5",
        "claude-fable-5-2",
        "claude-mythos-preview",
    ],
)
def test_models_without_sampling_parameters_get_none(upstream_model):
    deployment = Deployment("anthropic", upstream_model, "https://a.example", "k")
    body = sent({"messages": [user("x")], "temperature": 0.2, "top_p": 0.5}, deployment)
    assert "temperature" not in body and "top_p" not in body


@pytest.mark.parametrize(
    "upstream_model", ["claude-opus-4-6", "claude-sonnet-4-6", "claude-haiku-4-5", "claude-3-7"]
)
def test_older_models_keep_sampling_parameters(upstream_model):
    deployment = Deployment("anthropic", upstream_model, "https://a.example", "k")
    assert sent({"messages": [user("x")], "temperature": 0.2}, deployment)["temperature"] == 0.2


def test_sampling_stop_user_and_ignored_parameters():
    body = chat(
        user("x"),
        top_p=0.9,
        stop="END",
        user="end-user-42",
        seed=7,
        presence_penalty=0.5,
        frequency_penalty=0.5,
        n=1,
        logprobs=False,
        stream_options={"include_usage": True},
    )
    assert body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [text("x")]}],
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "end-user-42"},
    }
    assert chat(user("x"), stop=["a", "b"])["stop_sequences"] == ["a", "b"]


def test_more_than_one_choice_is_400():
    with pytest.raises(GatewayError) as caught:
        chat(user("x"), n=2)
    assert caught.value.status == 400 and caught.value.param == "n"


def test_tools_and_tool_choice():
    no_args = {"type": "function", "function": {"name": "now"}}
    body = chat(user("x"), tools=[WEATHER_TOOL, no_args])
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather in a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        },
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body
    choices = {
        "auto": {"type": "auto"},
        "required": {"type": "any"},
        "none": {"type": "none"},
    }
    for choice, expected in choices.items():
        assert chat(user("x"), tools=[WEATHER_TOOL], tool_choice=choice)["tool_choice"] == expected
    named = {"type": "function", "function": {"name": "get_weather"}}
    body = chat(user("x"), tools=[WEATHER_TOOL], tool_choice=named)
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather"}
    body = chat(user("x"), tools=[WEATHER_TOOL], parallel_tool_calls=False)
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert "tool_choice" not in chat(user("x"), tool_choice="none")  # no tools, nothing to say
    with pytest.raises(GatewayError):
        chat(user("x"), tools=[{"type": "custom", "custom": {"name": "x"}}])


def test_json_modes_become_a_system_instruction():
    body = chat(
        {"role": "system", "content": "Be kind."},
        user("x"),
        response_format={"type": "json_object"},
    )
    assert body["system"].startswith("Be kind.\n\n")
    assert "JSON" in body["system"]
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    response_format = {"type": "json_schema", "json_schema": {"name": "p", "schema": schema}}
    body = chat(user("x"), response_format=response_format)
    assert "JSON" in body["system"]
    assert orjson.dumps(schema).decode() in body["system"]
    assert "system" not in chat(user("x"), response_format={"type": "text"})


# --- answers -----------------------------------------------------------------------------


def message(content: list[dict], stop_reason: str = "end_turn", **usage) -> bytes:
    return orjson.dumps(
        {
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 6, **usage},
        }
    )


def parse(data: bytes) -> tuple[dict, object]:
    return ANTHROPIC.parse_chat_response(data, model="public-claude", deployment=DEPLOYMENT)


def test_text_answer():
    thinking = {"type": "thinking", "thinking": "hmm", "signature": "sig"}
    payload, usage = parse(message([thinking, text("Paris is "), text("the capital.")]))
    assert payload["id"].startswith("chatcmpl-")
    assert payload["object"] == "chat.completion"
    assert isinstance(payload["created"], int)
    assert payload["model"] == "public-claude"
    assert payload["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Paris is the capital.",
                "refusal": None,
                # thinking, as OpenRouter and DeepSeek return reasoning
                "reasoning_content": "hmm",
                "reasoning": "hmm",
                "reasoning_details": [
                    {
                        "type": "reasoning.text",
                        "text": "hmm",
                        "signature": "sig",
                        "format": "anthropic-claude-v1",
                        "index": 0,
                    }
                ],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (12, 6, 0)
    assert payload["usage"] == {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18}


def test_tool_use_answer():
    blocks = [
        text("Let me check."),
        {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_01B", "name": "now", "input": {}},
    ]
    payload, _ = parse(message(blocks, "tool_use"))
    (choice,) = payload["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    assert choice["message"]["tool_calls"] == [
        {
            "id": "toolu_01A",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        },
        {"id": "toolu_01B", "type": "function", "function": {"name": "now", "arguments": "{}"}},
    ]
    only_calls, _ = parse(message(blocks[1:], "tool_use"))
    assert only_calls["choices"][0]["message"]["content"] is None


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
        ("something_new", "stop"),
    ],
)
def test_finish_reasons(stop_reason, expected):
    payload, _ = parse(message([text("x")], stop_reason))
    assert payload["choices"][0]["finish_reason"] == expected


def test_usage_counts_cache_reads_and_writes_as_prompt_tokens():
    data = message(
        [text("x")],
        cache_read_input_tokens=1000,
        cache_creation_input_tokens=200,
        service_tier="standard",
    )
    payload, usage = parse(data)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (1212, 6, 1000)
    assert usage.cache_write_tokens == 200
    assert payload["usage"] == {
        "prompt_tokens": 1212,
        "completion_tokens": 6,
        "total_tokens": 1218,
        "prompt_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 200},
    }
    _, usage = parse(message([text("x")], cache_read_input_tokens=None))
    assert usage.prompt_tokens == 12


@pytest.mark.parametrize(
    "data",
    [
        b"<html>",
        b"[]",
        b"{}",
        b'{"content": {}}',
        b'{"content": ["x"]}',
        b'{"content": [], "usage": "many"}',
        b'{"content": [], "usage": {"input_tokens": "12"}}',
    ],
)
def test_unreadable_answers_are_502(data):
    with pytest.raises(GatewayError) as caught:
        parse(data)
    assert caught.value.status == 502 and caught.value.type == "api_error"


# --- streams -----------------------------------------------------------------------------


def events(name: str) -> list[SSEEvent]:
    decoder = SSEDecoder()
    return decoder.feed((FIXTURES / name).read_bytes()) + decoder.flush()


def translate(name: str, include_usage: bool):
    translator = ANTHROPIC.stream_translator(
        model="public-claude", include_usage=include_usage, deployment=DEPLOYMENT
    )
    out = []
    for event in events(name):
        out += translator.feed(event)
    assert translator.finished
    return translator, out + translator.close()


@pytest.mark.parametrize("include_usage", [True, False])
def test_text_stream(include_usage):
    translator, out = translate("anthropic_stream_text.sse", include_usage)
    assert deltas(out) == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Paris is"}, None),
        ({"content": " the capital of France."}, None),
        ({}, "stop"),
    ]
    assert {c["id"] for c in out} == {translator.id}
    assert translator.id.startswith("chatcmpl-")
    assert {c["model"] for c in out} == {"public-claude"}
    assert {c["created"] for c in out} == {translator.created}
    assert all(c["object"] == "chat.completion.chunk" for c in out)
    assert all(c["choices"][0]["index"] == 0 for c in out if c["choices"])
    usage = translator.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (1045, 9, 1024)
    assert translator.ascii_chars == len("Paris is the capital of France.")
    assert translator.final_usage and translator.billable_usage(1000) == translator.usage
    if include_usage:
        assert len(out) == 5
        assert all(c["usage"] is None for c in out[:-1])
        assert out[-1]["choices"] == []
        assert out[-1]["usage"] == {
            "prompt_tokens": 1045,
            "completion_tokens": 9,
            "total_tokens": 1054,
            "prompt_tokens_details": {"cached_tokens": 1024},
        }
    else:
        assert len(out) == 4
        assert all("usage" not in c for c in out)


def test_tool_use_stream():
    translator, out = translate("anthropic_stream_tool_use.sse", True)
    weather = {
        "index": 0,
        "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    clock = {
        "index": 1,
        "id": "toolu_01A09q90qw90lq917835lq9",
        "type": "function",
        "function": {"name": "get_time", "arguments": ""},
    }
    assert deltas(out) == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "I'll look up the weather"}, None),
        ({"content": " and the time in Paris."}, None),
        ({"tool_calls": [weather]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Pa'}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": 'ris"}'}}]}, None),
        ({"tool_calls": [clock]}, None),
        (
            {
                "tool_calls": [
                    {"index": 1, "function": {"arguments": '{"timezone": "Europe/Paris"}'}}
                ]
            },
            None,
        ),
        ({}, "tool_calls"),
    ]
    assert {c["id"] for c in out} == {translator.id}
    assert out[-1]["choices"] == []
    # message_delta's usage has only output_tokens here: message_start's input count stays
    assert out[-1]["usage"] == {"prompt_tokens": 472, "completion_tokens": 98, "total_tokens": 570}


def test_a_stream_split_anywhere_translates_the_same():
    raw = (FIXTURES / "anthropic_stream_tool_use.sse").read_bytes()
    translator = ANTHROPIC.stream_translator(
        model="public-claude", include_usage=False, deployment=DEPLOYMENT
    )
    decoder = SSEDecoder()
    out = []
    for index in range(0, len(raw), 5):
        for event in decoder.feed(raw[index : index + 5]):
            out += translator.feed(event)
    for event in decoder.flush():
        out += translator.feed(event)
    _, whole = translate("anthropic_stream_tool_use.sse", False)
    assert deltas(out) == deltas(whole)


def test_the_stream_is_finished_only_at_message_stop():
    translator = ANTHROPIC.stream_translator(model="m", include_usage=False, deployment=DEPLOYMENT)
    for event in events("anthropic_stream_text.sse")[:-1]:
        translator.feed(event)
    assert not translator.finished
    assert translator.feed(SSEEvent('{"type":"message_stop"}', "message_stop")) == []
    assert translator.finished


def test_pings_unknown_events_and_thinking_deltas_are_silent():
    translator = ANTHROPIC.stream_translator(model="m", include_usage=False, deployment=DEPLOYMENT)
    thinking = {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta"}}
    for payload in ({"type": "ping"}, {"type": "brand_new_event"}, thinking):
        assert translator.feed(SSEEvent(orjson.dumps(payload).decode(), payload["type"])) == []


@pytest.mark.parametrize(
    ("error_type", "status"),
    [("overloaded_error", 503), ("api_error", 502), ("rate_limit_error", 502)],
)
def test_error_events_raise(error_type, status):
    translator = ANTHROPIC.stream_translator(model="m", include_usage=True, deployment=DEPLOYMENT)
    translator.feed(events("anthropic_stream_text.sse")[0])
    error = {"type": "error", "error": {"type": error_type, "message": "Overloaded"}}
    with pytest.raises(GatewayError) as caught:
        translator.feed(SSEEvent(orjson.dumps(error).decode(), "error"))
    assert caught.value.status == status and caught.value.type == "api_error"
    assert caught.value.message == "Overloaded"


def test_error_events_never_repeat_the_operator_key():
    translator = ANTHROPIC.stream_translator(model="m", include_usage=False, deployment=DEPLOYMENT)
    message = "invalid x-api-key sk-ant-operator-secret"
    error = {"type": "error", "error": {"type": "authentication_error", "message": message}}
    with pytest.raises(GatewayError) as caught:
        translator.feed(SSEEvent(orjson.dumps(error).decode(), "error"))
    assert "sk-ant-operator-secret" not in caught.value.message
    assert caught.value.status == 502


def test_garbage_inside_a_stream_is_502():
    translator = ANTHROPIC.stream_translator(model="m", include_usage=False, deployment=DEPLOYMENT)
    for data in ("not json", '{"type":"message_start"}', '{"type":"content_block_delta"}'):
        with pytest.raises(GatewayError) as caught:
            translator.feed(SSEEvent(data))
        assert caught.value.status == 502


# --- errors ------------------------------------------------------------------------------


def anthropic_error(kind: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})


def test_map_error():
    bad = ANTHROPIC.map_error(400, anthropic_error("invalid_request_error", "max_tokens: bad"))
    assert (bad.status, bad.message, bad.type) == (400, "max_tokens: bad", "invalid_request_error")
    auth = ANTHROPIC.map_error(401, anthropic_error("authentication_error", "invalid x-api-key"))
    assert auth.status == 502 and auth.type == "api_error"
    assert "x-api-key" not in auth.message
    for status in (429, 529):
        busy = ANTHROPIC.map_error(status, anthropic_error("overloaded_error", "Overloaded"))
        assert busy.status == 503 and busy.headers == {"retry-after": "1"}
    failed = ANTHROPIC.map_error(500, anthropic_error("api_error", "Internal server error"))
    assert failed.status == 502 and failed.type == "api_error"


def test_embeddings_and_images_are_not_available():
    with pytest.raises(GatewayError) as caught:
        ANTHROPIC.build_embeddings_request({"input": "x"}, DEPLOYMENT)
    assert caught.value.status == 400
    with pytest.raises(GatewayError) as caught:
        ANTHROPIC.build_images_request({"prompt": "x"}, DEPLOYMENT)
    assert caught.value.status == 400
