"""The Gemini adapter, pure: OpenAI requests in Gemini's shapes, Gemini's answers in OpenAI's.

The fixtures are Gemini v1beta answers in the exact wire format (CRLF-separated SSE events
for streams)."""

import base64
import struct
from pathlib import Path

import orjson
import pytest

from apigateway.errors import GatewayError
from apigateway.providers.base import Deployment
from apigateway.providers.gemini import GeminiProvider, clean_schema
from apigateway.sse import SSEDecoder, SSEEvent
from tests.apigateway.providers.stream_events import deltas

FIXTURES = Path(__file__).parent / "fixtures"
DEPLOYMENT = Deployment(
    provider="gemini",
    upstream_model="gemini-2.5-flash",
    base_url="https://generativelanguage.googleapis.com",
    api_key="AIza-operator",
    extra_headers={"x-team": "ml"},
)
GEMINI = GeminiProvider()
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sent(body: dict) -> dict:
    return orjson.loads(GEMINI.build_chat_request(body, DEPLOYMENT).body)  # type: ignore[arg-type]


def chat(*messages: dict, **options) -> dict:
    return sent({"model": "gemini-2.5-flash", "messages": list(messages), **options})


def user(content) -> dict:
    return {"role": "user", "content": content}


# --- requests ----------------------------------------------------------------------------


def test_request_address_headers_and_minimal_body():
    request = GEMINI.build_chat_request({"model": "g", "messages": [user("Hello")]}, DEPLOYMENT)
    assert request.method == "POST"
    assert request.url == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    )
    assert request.headers == {
        "content-type": "application/json",
        "x-goog-api-key": "AIza-operator",
        "x-team": "ml",
    }
    assert orjson.loads(request.body) == {
        "contents": [{"role": "user", "parts": [{"text": "Hello"}]}]
    }


def test_streams_use_stream_generate_content_as_sse():
    request = GEMINI.build_chat_request(
        {"model": "g", "messages": [user("Hi")], "stream": True}, DEPLOYMENT
    )
    assert request.url.endswith("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    assert "stream" not in orjson.loads(request.body)


def test_system_and_developer_messages_become_the_system_instruction():
    body = chat(
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        user("Hi"),
    )
    assert body["systemInstruction"] == {
        "parts": [{"text": "Be brief."}, {"text": "Answer in French."}]
    }
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]


def test_roles_map_and_consecutive_turns_merge():
    body = chat(
        user("one"),
        user([{"type": "text", "text": "two"}]),
        {"role": "assistant", "content": "three"},
        {"role": "assistant", "content": [{"type": "text", "text": "four"}]},
        user("five"),
    )
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "one"}, {"text": "two"}]},
        {"role": "model", "parts": [{"text": "three"}, {"text": "four"}]},
        {"role": "user", "parts": [{"text": "five"}]},
    ]


def test_images_as_inline_data_and_file_uris():
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    body = chat(
        user(
            [
                {"type": "text", "text": "Compare"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                {"type": "image_url", "image_url": {"url": "https://x.example/cat.webp?s=1"}},
                {"type": "image_url", "image_url": {"url": "https://x.example/photo"}},
            ]
        )
    )
    assert body["contents"][0]["parts"] == [
        {"text": "Compare"},
        {"inlineData": {"mimeType": "image/png", "data": png}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://x.example/cat.webp?s=1"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.example/photo"}},
    ]


@pytest.mark.parametrize("url", ["ftp://x.example/a.png", "data:image/png,notbase64"])
def test_unusable_image_urls_are_400(url):
    with pytest.raises(GatewayError) as caught:
        chat(user([{"type": "image_url", "image_url": {"url": url}}]))
    assert caught.value.status == 400 and caught.value.param == "messages"


def test_audio_and_file_parts_become_inline_data():
    body = chat(
        user(
            [
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "mp3"}},
                {
                    "type": "file",
                    "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"},
                },
            ]
        )
    )
    assert body["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "audio/mp3", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}},
    ]
    with pytest.raises(GatewayError) as caught:
        chat(user([{"type": "file", "file": {"file_id": "file-abc"}}]))
    assert caught.value.status == 400


def test_a_tool_round_trip():
    call = {
        "id": "call_abc",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    other = {
        "id": "call_def",
        "type": "function",
        "function": {"name": "get_time", "arguments": "{}"},
    }
    body = chat(
        user("Weather and time in Paris?"),
        {"role": "assistant", "content": None, "tool_calls": [call, other]},
        {"role": "tool", "tool_call_id": "call_abc", "content": '{"temp_c": 21}'},
        {"role": "tool", "tool_call_id": "call_def", "content": "14:05"},
        tools=[WEATHER_TOOL],
    )
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather and time in Paris?"}]},
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": "skip_thought_signature_validator",
                },
                {"functionCall": {"name": "get_time", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"content": {"temp_c": 21}},
                    }
                },
                {"functionResponse": {"name": "get_time", "response": {"content": "14:05"}}},
            ],
        },
    ]


def test_a_tool_message_without_a_matching_call_is_400():
    with pytest.raises(GatewayError) as caught:
        chat(user("x"), {"role": "tool", "tool_call_id": "call_nope", "content": "1"})
    assert caught.value.status == 400


def test_a_tool_message_may_name_its_function():
    body = chat(user("x"), {"role": "tool", "tool_call_id": "c", "name": "f", "content": "[1]"})
    assert body["contents"][0]["parts"][1] == {
        "functionResponse": {"name": "f", "response": {"content": [1]}}
    }


def test_tool_call_arguments_must_be_an_object():
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}
    with pytest.raises(GatewayError):
        chat(user("x"), {"role": "assistant", "tool_calls": [call]})


def test_generation_config():
    body = chat(
        user("x"),
        temperature=1.7,
        top_p=0.9,
        max_completion_tokens=300,
        max_tokens=5,
        stop="END",
        n=2,
        seed=42,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
    )
    assert body["generationConfig"] == {
        "temperature": 1.7,
        "topP": 0.9,
        "maxOutputTokens": 5,  # the smaller of the two caps
        "stopSequences": ["END"],
        "candidateCount": 2,
        "seed": 42,
        "presencePenalty": 0.5,
        "frequencyPenalty": -0.5,
    }
    config = chat(user("x"), max_tokens=5, stop=["a", "b"], temperature=0)["generationConfig"]
    assert config == {"maxOutputTokens": 5, "stopSequences": ["a", "b"], "temperature": 0}


def test_json_modes():
    config = chat(user("x"), response_format={"type": "json_object"})["generationConfig"]
    assert config == {"responseMimeType": "application/json"}
    assert "generationConfig" not in chat(user("x"), response_format={"type": "text"})
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "full name"},
            "tags": {"type": "array", "items": {"type": "string", "additionalProperties": 1}},
            "age": {"type": ["integer", "null"]},
        },
        "required": ["name", "tags", "age"],
        "additionalProperties": False,
    }
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "person", "strict": True, "schema": schema},
    }
    config = chat(user("x"), response_format=response_format)["generationConfig"]
    assert config == {
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "OBJECT",
            "properties": {
                "name": {"type": "STRING", "description": "full name"},
                "tags": {"type": "ARRAY", "items": {"type": "STRING"}},
                "age": {"type": "INTEGER", "nullable": True},
            },
            "required": ["name", "tags", "age"],
        },
    }


def test_schema_cleaning_inlines_refs_and_folds_null_unions():
    schema = {
        "$defs": {
            "Kind": {"type": "string", "enum": ["a", "b"], "title": "Kind"},
            "Pet": {
                "type": "object",
                "properties": {"kind": {"$ref": "#/$defs/Kind"}, "n": {"const": "x"}},
                "additionalProperties": False,
            },
        },
        "type": "object",
        "properties": {
            "pet": {"anyOf": [{"$ref": "#/$defs/Pet"}, {"type": "null"}], "default": None},
            "either": {"oneOf": [{"type": "string"}, {"type": "integer", "enum": [1, 2]}]},
            "pair": {"type": "array", "prefixItems": [{"type": "string"}], "items": False},
        },
    }
    assert clean_schema(schema) == {
        "type": "OBJECT",
        "properties": {
            "pet": {
                "nullable": True,
                "type": "OBJECT",
                "properties": {
                    "kind": {"type": "STRING", "enum": ["a", "b"], "title": "Kind"},
                    "n": {"enum": ["x"]},
                },
                "default": None,
            },
            "either": {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]},
            "pair": {"type": "ARRAY"},
        },
    }


def test_tools_and_tool_choice():
    no_args = {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}
    body = chat(user("x"), tools=[WEATHER_TOOL, no_args], tool_choice="auto")
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather in a city",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {"city": {"type": "STRING"}},
                        "required": ["city"],
                    },
                },
                {"name": "now"},
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    modes = {"none": "NONE", "required": "ANY"}
    for choice, mode in modes.items():
        body = chat(user("x"), tools=[WEATHER_TOOL], tool_choice=choice)
        assert body["toolConfig"] == {"functionCallingConfig": {"mode": mode}}
    named = {"type": "function", "function": {"name": "get_weather"}}
    body = chat(user("x"), tools=[WEATHER_TOOL], tool_choice=named)
    assert body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }
    assert "toolConfig" not in chat(user("x"), tools=[WEATHER_TOOL])


# --- answers -----------------------------------------------------------------------------


def test_text_answer():
    payload, usage = GEMINI.parse_chat_response(
        fixture("gemini_text.json"), model="gemini-flash", deployment=DEPLOYMENT
    )
    assert payload["id"].startswith("chatcmpl-")
    assert payload["object"] == "chat.completion"
    assert payload["model"] == "gemini-flash"
    assert payload["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "The capital of France is **Paris**.",
                "refusal": None,
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    # thinking tokens are output tokens: 8 + 21
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (12, 29, 0)
    assert payload["usage"] == {
        "prompt_tokens": 12,
        "completion_tokens": 29,
        "total_tokens": 41,
        "completion_tokens_details": {"reasoning_tokens": 21},
    }


def test_function_call_answer():
    payload, usage = GEMINI.parse_chat_response(
        fixture("gemini_function_call.json"), model="m", deployment=DEPLOYMENT
    )
    (choice,) = payload["choices"]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] is None
    (call,) = message["tool_calls"]
    assert call["id"].startswith("call_") and len(call["id"]) > 10
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {"city": "Paris", "unit": "celsius"}
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (58, 75, 32)
    assert payload["usage"]["prompt_tokens_details"] == {"cached_tokens": 32}


def candidate(parts=None, reason=None, index=None) -> dict:
    item: dict = {"content": {"role": "model", "parts": parts or []}}
    if reason:
        item["finishReason"] = reason
    if index is not None:
        item["index"] = index
    return item


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("OTHER", "stop"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
    ],
)
def test_finish_reasons(reason, expected):
    data = orjson.dumps({"candidates": [candidate([{"text": "x"}], reason)]})
    payload, _ = GEMINI.parse_chat_response(data, model="m", deployment=DEPLOYMENT)
    assert payload["choices"][0]["finish_reason"] == expected


def test_several_candidates_text_with_calls_and_thoughts_left_out():
    data = orjson.dumps(
        {
            "candidates": [
                candidate([{"text": "thinking...", "thought": True}, {"text": "A"}], "STOP", 0),
                candidate([{"text": "Let me check. "}, {"functionCall": {"name": "f"}}], "STOP", 1),
                {"finishReason": "SAFETY", "index": 2},
            ],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 6},
        }
    )
    payload, usage = GEMINI.parse_chat_response(data, model="m", deployment=DEPLOYMENT)
    first, second, third = payload["choices"]
    assert first["message"]["content"] == "A" and "tool_calls" not in first["message"]
    assert second["index"] == 1 and second["finish_reason"] == "tool_calls"
    assert second["message"]["content"] == "Let me check. "
    assert second["message"]["tool_calls"][0]["function"]["arguments"] == "{}"
    assert third["message"]["content"] == "" and third["finish_reason"] == "content_filter"
    assert usage.total_tokens == 9
    assert payload["usage"] == {"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9}


def test_a_blocked_prompt_is_400():
    with pytest.raises(GatewayError) as caught:
        GEMINI.parse_chat_response(fixture("gemini_blocked.json"), model="m", deployment=DEPLOYMENT)
    assert caught.value.status == 400
    assert "prompt was blocked" in caught.value.message
    assert "PROHIBITED_CONTENT" in caught.value.message


@pytest.mark.parametrize(
    "data", [b"<html>", b"[]", b'{"candidates": {}}', b"{}", b'{"candidates": ["x"]}']
)
def test_unreadable_answers_are_502(data):
    with pytest.raises(GatewayError) as caught:
        GEMINI.parse_chat_response(data, model="m", deployment=DEPLOYMENT)
    assert caught.value.status == 502


# --- streams -----------------------------------------------------------------------------


def events(name: str) -> list[SSEEvent]:
    decoder = SSEDecoder()
    return decoder.feed(fixture(name)) + decoder.flush()


def translate(name: str, include_usage: bool):
    translator = GEMINI.stream_translator(
        model="public", include_usage=include_usage, deployment=DEPLOYMENT
    )
    out = []
    for event in events(name):
        out += translator.feed(event)
    return translator, out + translator.close()


@pytest.mark.parametrize("include_usage", [True, False])
def test_text_stream(include_usage):
    translator, out = translate("gemini_stream_text.sse", include_usage)
    assert deltas(out) == [
        ({"role": "assistant", "content": "Paris is"}, None),
        ({"content": " the capital of France."}, None),
        ({}, "stop"),
    ]
    assert translator.finished
    assert {c["id"] for c in out} == {translator.id}
    assert {c["model"] for c in out} == {"public"}
    assert all(c["object"] == "chat.completion.chunk" for c in out)
    usage = (translator.usage.prompt_tokens, translator.usage.completion_tokens)
    assert usage == (9, 7)
    assert translator.ascii_chars == len("Paris is the capital of France.")
    assert translator.final_usage and translator.billable_usage(1000) == translator.usage
    if include_usage:
        assert len(out) == 4
        assert all(c["usage"] is None for c in out[:-1])
        assert out[-1]["choices"] == []
        assert out[-1]["usage"] == {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16}
    else:
        assert len(out) == 3
        assert all("usage" not in c for c in out)


def test_function_call_stream():
    translator, out = translate("gemini_stream_function_call.sse", True)
    (first_delta, _), (second_delta, _), finish = deltas(out)
    assert first_delta["role"] == "assistant" and first_delta["content"] is None
    (first,) = first_delta["tool_calls"]
    assert first["index"] == 0 and first["id"].startswith("call_") and first["type"] == "function"
    assert first["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert set(second_delta) == {"tool_calls"}
    (second,) = second_delta["tool_calls"]
    assert second["index"] == 1 and second["id"] != first["id"]
    assert second["function"] == {"name": "get_time", "arguments": '{"timezone":"Europe/Paris"}'}
    assert finish == ({}, "tool_calls")
    assert len(out) == 4 and out[-1]["choices"] == []
    assert out[-1]["usage"] == {
        "prompt_tokens": 71,
        "completion_tokens": 93,
        "total_tokens": 164,
        "completion_tokens_details": {"reasoning_tokens": 62},
    }
    assert translator.finished


def stream_event(payload: dict) -> SSEEvent:
    return SSEEvent(orjson.dumps(payload).decode())


def test_a_stream_that_finishes_without_text_still_names_the_role():
    translator = GEMINI.stream_translator(model="m", include_usage=False, deployment=DEPLOYMENT)
    out = translator.feed(stream_event({"candidates": [candidate([{"text": ""}], "MAX_TOKENS")]}))
    assert deltas(out) == [({"role": "assistant", "content": ""}, None), ({}, "length")]
    assert translator.finished


def test_stream_is_not_finished_before_the_finish_reason_and_latest_usage_wins():
    translator = GEMINI.stream_translator(model="m", include_usage=True, deployment=DEPLOYMENT)
    translator.feed(
        stream_event(
            {"candidates": [candidate([{"text": "a"}])], "usageMetadata": {"promptTokenCount": 4}}
        )
    )
    assert not translator.finished and translator.usage.prompt_tokens == 4
    translator.feed(
        stream_event(
            {
                "candidates": [candidate([{"text": "b"}], "STOP")],
                "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2},
            }
        )
    )
    assert translator.finished and translator.usage.completion_tokens == 2


def test_a_blocked_prompt_in_a_stream_is_400():
    translator = GEMINI.stream_translator(model="m", include_usage=False, deployment=DEPLOYMENT)
    with pytest.raises(GatewayError) as caught:
        translator.feed(SSEEvent(fixture("gemini_blocked.json").decode()))
    assert caught.value.status == 400 and "prompt was blocked" in caught.value.message


def test_errors_and_garbage_inside_a_stream_are_502():
    translator = GEMINI.stream_translator(model="m", include_usage=False, deployment=DEPLOYMENT)
    error = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    with pytest.raises(GatewayError) as caught:
        translator.feed(stream_event(error))
    assert caught.value.status == 502 and caught.value.message == "The model is overloaded."
    with pytest.raises(GatewayError) as caught:
        translator.feed(SSEEvent("not json"))
    assert caught.value.status == 502


# --- embeddings --------------------------------------------------------------------------


def test_embeddings_request():
    request = GEMINI.build_embeddings_request(
        {"model": "e", "input": ["a", "bc"], "dimensions": 8},
        Deployment("gemini", "gemini-embedding-001", "https://g.example", "AIza-k"),
    )
    assert request.url == "https://g.example/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert request.headers["x-goog-api-key"] == "AIza-k"
    model = "models/gemini-embedding-001"
    assert orjson.loads(request.body) == {
        "requests": [
            {"model": model, "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 8},
            {"model": model, "content": {"parts": [{"text": "bc"}]}, "outputDimensionality": 8},
        ]
    }
    single = GEMINI.build_embeddings_request({"model": "e", "input": "x"}, DEPLOYMENT)
    assert orjson.loads(single.body)["requests"] == [
        {"model": "models/gemini-2.5-flash", "content": {"parts": [{"text": "x"}]}}
    ]


@pytest.mark.parametrize("value", [[1, 2, 3], [[1, 2], [3]], [], 7])
def test_token_array_inputs_are_400(value):
    with pytest.raises(GatewayError) as caught:
        GEMINI.build_embeddings_request({"model": "e", "input": value}, DEPLOYMENT)
    assert caught.value.status == 400 and caught.value.param == "input"


def test_embeddings_answer_as_floats():
    body = {"model": "e", "input": ["What is the meaning of life?", "hello"]}
    payload, usage = GEMINI.parse_embeddings_response(
        fixture("gemini_embeddings.json"), model="gemini-embed", body=body
    )
    vectors = [e["values"] for e in orjson.loads(fixture("gemini_embeddings.json"))["embeddings"]]
    assert payload == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": vectors[0]},
            {"object": "embedding", "index": 1, "embedding": vectors[1]},
        ],
        "model": "gemini-embed",
        "usage": {"prompt_tokens": 9, "total_tokens": 9},  # ceil((28 + 5) / 4)
    }
    assert (usage.prompt_tokens, usage.completion_tokens) == (9, 0)


def test_embeddings_answer_as_base64_float32():
    body = {"model": "e", "input": ["a", "b"], "encoding_format": "base64"}
    payload, _ = GEMINI.parse_embeddings_response(
        fixture("gemini_embeddings.json"), model="m", body=body
    )
    vectors = [e["values"] for e in orjson.loads(fixture("gemini_embeddings.json"))["embeddings"]]
    for item, vector in zip(payload["data"], vectors, strict=True):
        raw = base64.b64decode(item["embedding"])
        decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
        assert decoded == pytest.approx(vector, rel=1e-6)


@pytest.mark.parametrize("data", [b"nope", b"{}", b'{"embeddings": [{"vals": []}]}'])
def test_unreadable_embeddings_are_502(data):
    with pytest.raises(GatewayError) as caught:
        GEMINI.parse_embeddings_response(data, model="m", body={"input": "x"})
    assert caught.value.status == 502


# --- errors and what Gemini does not do --------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, {"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}, 400),
        (404, {"error": {"code": 404, "message": "no model", "status": "NOT_FOUND"}}, 400),
        (403, {"error": {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}}, 502),
        (429, {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}, 503),
        (500, {"error": {"code": 500, "message": "oops", "status": "INTERNAL"}}, 502),
        (503, {"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}, 502),
    ],
)
def test_error_mapping(status, body, expected):
    error = GEMINI.map_error(status, orjson.dumps(body))
    assert error.status == expected
    if expected == 400:
        assert error.message == body["error"]["message"]


def test_a_wrong_operator_key_is_502_not_the_callers_fault():
    error = GEMINI.map_error(400, fixture("gemini_error_api_key.json"))
    assert error.status == 502
    assert "API key" not in error.message


def test_images_are_not_available():
    with pytest.raises(GatewayError) as caught:
        GEMINI.build_images_request({"prompt": "a cat"}, DEPLOYMENT)
    assert caught.value.status == 400
