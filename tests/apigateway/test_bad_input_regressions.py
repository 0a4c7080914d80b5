"""Inputs fuzzing found (schemathesis on /v1, Hypothesis on the translators), each of which,
unguarded, ends in an unhandled exception (a 500, or a stream cut with a 500) or worse;
kept as plain tests. A caller's malformed body is a 400 naming the field; a
provider's malformed answer is a 502."""

from __future__ import annotations

import httpx
import orjson
import pytest

from apigateway import validation
from apigateway.errors import GatewayError
from apigateway.providers.anthropic import AnthropicProvider
from apigateway.providers.base import Deployment
from apigateway.providers.gemini import GeminiProvider
from apigateway.providers.openai import OpenAIProvider
from apigateway.sse import SSEDecoder, SSEEvent

ANTHROPIC = (AnthropicProvider(), Deployment("anthropic", "claude-sonnet-4-5", "https://a", "k"))
GEMINI = (GeminiProvider(), Deployment("gemini", "gemini-2.5-flash", "https://g", "k"))
OPENAI = (OpenAIProvider(), Deployment("openai", "gpt-4o", "https://o/v1", "k"))
USER = {"role": "user", "content": "hi"}
CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def chat(*messages, **fields) -> dict:
    return {"model": "m", "messages": list(messages) or [USER], **fields}


def refused(error: GatewayError, status: int) -> None:
    assert error.status == status
    assert isinstance(error.message, str) and error.message


# --- the caller's body ---------------------------------------------------------------------


@pytest.mark.parametrize("role", [{}, [], ["user"]])
def test_a_role_that_is_not_a_string_is_a_400(role):
    with pytest.raises(GatewayError) as caught:  # unguarded: TypeError, unhashable type
        validation.chat(chat({"role": role, "content": "x"}))
    refused(caught.value, 400)
    assert caught.value.param == "messages[0].role"


@pytest.mark.parametrize("model", ["gpt-4o\x00", "m" * 201])
def test_a_model_id_that_cannot_be_recorded_is_a_400(model):
    """Unknown models answer 404 and are recorded; a NUL (or an id longer than the usage
    record's column) would make every later batch of the usage pipeline fail."""
    for validate, body in (
        (validation.chat, chat(model=model)),
        (validation.embeddings, {"model": model, "input": "x"}),
        (validation.images, {"model": model, "prompt": "x"}),
    ):
        body["model"] = model
        with pytest.raises(GatewayError) as caught:
            validate(body)
        refused(caught.value, 400)
        assert caught.value.param == "model"


def test_a_model_with_a_nul_is_refused_over_http_and_the_usage_drain_keeps_going(tenant):
    from usage import pipeline

    response = httpx.post(
        f"{tenant.url}/v1/chat/completions",
        content=b'{"model": "gpt-4o\\u0000", "messages": [{"role": "user", "content": "x"}]}',
        headers={"authorization": f"Bearer {tenant.key}"},
        timeout=10,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "model"
    unknown = httpx.post(
        f"{tenant.url}/v1/chat/completions",
        json={"model": "no-such-model", "messages": [USER]},
        headers={"authorization": f"Bearer {tenant.key}"},
        timeout=10,
    )
    assert unknown.status_code == 404
    pipeline.drain()  # a NUL in a text field would raise DataError on every try
    assert pipeline.pending() == 0


BAD_BODIES = {
    "tool call not an object": chat(USER, {"role": "assistant", "tool_calls": ["f"]}),
    "tool call function not an object": chat(
        USER, {"role": "assistant", "tool_calls": [{"id": "c", "function": "f"}]}
    ),
    "tool calls not an array": chat(USER, {"role": "assistant", "tool_calls": 5}),
    "tool call id not a string": chat(
        USER, {"role": "assistant", "tool_calls": [{**CALL, "id": []}]}
    ),
    "tool message id not a string": chat(
        USER,
        {"role": "assistant", "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": [], "content": "x"},
    ),
    "text part text not a string": chat({"role": "user", "content": [{"type": "text", "text": 5}]}),
    "system text not a string": chat(
        {"role": "system", "content": [{"type": "text", "text": [1]}]}, USER
    ),
    "file not an object": chat({"role": "user", "content": [{"type": "file", "file": True}]}),
    "file data not a string": chat(
        {"role": "user", "content": [{"type": "file", "file": {"file_data": 5}}]}
    ),
    "tool function not an object": chat(tools=[{"type": "function", "function": "f"}]),
    "tool choice function not an object": chat(
        tools=[{"type": "function", "function": {"name": "f"}}],
        tool_choice={"type": "function", "function": True},
    ),
    "json_schema not an object": chat(response_format={"type": "json_schema", "json_schema": 5}),
}
GEMINI_ONLY = {
    "image url not a string": chat(
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": 5}}]}
    ),
    "input_audio not an object": chat(
        {"role": "user", "content": [{"type": "input_audio", "input_audio": True}]}
    ),
    "input_audio format not a string": chat(
        {
            "role": "user",
            "content": [{"type": "input_audio", "input_audio": {"data": "", "format": []}}],
        }
    ),
}


@pytest.mark.parametrize(
    ("adapter", "body"),
    [(a, b) for b in BAD_BODIES.values() for a in (ANTHROPIC, GEMINI)]
    + [(GEMINI, b) for b in GEMINI_ONLY.values()],
    ids=[f"{n}-{a}" for n in BAD_BODIES for a in ("anthropic", "gemini")] + list(GEMINI_ONLY),
)
def test_a_malformed_part_validation_lets_through_is_the_adapters_400(adapter, body):
    validation.chat(body)  # the top level is fine
    provider, deployment = adapter
    with pytest.raises(GatewayError) as caught:  # unguarded: AttributeError / TypeError
        provider.build_chat_request(body, deployment)
    refused(caught.value, 400)


@pytest.mark.parametrize("url", ["http://a]b/c", "https://a]b/c"])
def test_an_image_url_with_a_stray_bracket_is_a_400(url):
    """urlsplit raises "Invalid IPv6 URL" on these (unguarded, a 500): validation refuses the
    URL itself (media_urls), and so does the adapter, called alone."""
    body = chat({"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]})
    for build in (validation.chat, lambda body: GEMINI[0].build_chat_request(body, GEMINI[1])):
        with pytest.raises(GatewayError) as caught:
            build(body)
        refused(caught.value, 400)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": True, "b": False}},  # boolean schemas are valid
        {"type": "object", "properties": {"a": None}},
        {"$defs": True, "properties": {"a": {"$ref": "#/$defs/a"}}},
        {"$defs": {"a": 5}, "properties": {"a": {"$ref": "#/$defs/a"}}},
        {"type": "object", "properties": {"a": {"enum": None}}},
    ],
)
def test_gemini_reduces_any_json_schema_without_failing(schema):
    provider, deployment = GEMINI
    for body in (
        chat(
            response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}
        ),
        chat(tools=[{"type": "function", "function": {"name": "f", "parameters": schema}}]),
    ):
        assert orjson.loads(provider.build_chat_request(body, deployment).body)


# --- the provider's answer -----------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        b'{"usage": true}',
        b'{"usage": {"prompt_tokens": {}}}',
        b'{"usage": {"prompt_tokens": "many"}}',
        b'{"usage": {"prompt_tokens": -5}}',  # a negative count would credit the caller
        b'{"usage": {"prompt_tokens": 1, "prompt_tokens_details": 7}}',
    ],
)
def test_unreadable_openai_usage_is_a_502(answer):
    provider, deployment = OPENAI
    with pytest.raises(GatewayError) as caught:
        provider.parse_chat_response(answer, model="m", deployment=deployment)
    refused(caught.value, 502)


@pytest.mark.parametrize(
    "answer",
    [
        b'{"embeddings": [{"values": [null, 0.5]}]}',  # unguarded: struct.error
        b'{"embeddings": [{"values": [1e39]}]}',  # beyond a float32; unguarded: OverflowError
        b'{"embeddings": [{"values": ["0.5"]}]}',
    ],
)
def test_unreadable_gemini_embeddings_are_a_502(answer):
    provider, _ = GEMINI
    with pytest.raises(GatewayError) as caught:
        provider.parse_embeddings_response(
            answer, model="m", body={"input": "x", "encoding_format": "base64"}
        )
    refused(caught.value, 502)


def test_unreadable_gemini_usage_is_a_502():
    provider, deployment = GEMINI
    answer = {
        "candidates": [{"content": {"parts": [{"text": "hi"}]}}],
        "usageMetadata": {"promptTokenCount": {"n": 1}},
    }
    with pytest.raises(GatewayError) as caught:  # unguarded: TypeError
        provider.parse_chat_response(orjson.dumps(answer), model="m", deployment=deployment)
    refused(caught.value, 502)


STREAMS = {
    "anthropic tool block index a list": (
        ANTHROPIC,
        [
            ("message_start", {"type": "message_start", "message": {}}),
            (
                "content_block_start",
                {"type": "content_block_start", "index": [], "content_block": {"type": "tool_use"}},
            ),
        ],
    ),
    "anthropic json delta index a list": (
        ANTHROPIC,
        [
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": [],
                    "delta": {"type": "input_json_delta", "partial_json": "{"},
                },
            )
        ],
    ),
    "anthropic text not a string": (
        ANTHROPIC,
        [
            (
                "content_block_delta",
                {"type": "content_block_delta", "delta": {"type": "text_delta", "text": 5}},
            )
        ],
    ),
    "anthropic message delta not an object": (
        ANTHROPIC,
        [("message_delta", {"type": "message_delta", "delta": True})],
    ),
    "gemini candidate index a list": (
        GEMINI,
        [("message", {"candidates": [{"finishReason": "STOP", "index": []}]})],
    ),
    "gemini content not an object": (GEMINI, [("message", {"candidates": [{"content": True}]})]),
    "gemini parts not an array": (
        GEMINI,
        [("message", {"candidates": [{"content": {"parts": 5}}]})],
    ),
    "gemini prompt feedback not an object": (GEMINI, [("message", {"promptFeedback": 5})]),
    "openai choice null": (OPENAI, [("message", {"choices": [None]})]),
    "openai delta not an object": (OPENAI, [("message", {"choices": [{"delta": "hi"}]})]),
    "openai choices not an array": (OPENAI, [("message", {"choices": True})]),
    "openai content not a string": (
        OPENAI,
        [("message", {"choices": [{"index": 0, "delta": {"content": []}}]})],
    ),
}


@pytest.mark.parametrize(("adapter", "events"), STREAMS.values(), ids=list(STREAMS))
def test_a_malformed_stream_event_is_a_502(adapter, events):
    """The relay reads each chunk's choices, delta and content: a malformed one is the
    translator's 502, never an unhandled exception there or in the translator."""
    provider, deployment = adapter
    translator = provider.stream_translator(model="m", include_usage=True, deployment=deployment)
    with pytest.raises(GatewayError) as caught:
        for name, payload in events:
            translator.feed(SSEEvent(orjson.dumps(payload).decode(), name))
    refused(caught.value, 502)


def test_a_gemini_finish_reason_that_is_not_text_ends_the_choice_as_stop():
    provider, deployment = GEMINI
    translator = provider.stream_translator(model="m", include_usage=False, deployment=deployment)
    event = {"candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": [None]}]}
    chunks = translator.feed(SSEEvent(orjson.dumps(event).decode()))  # unguarded: TypeError
    assert [chunk["choices"][0]["finish_reason"] for chunk in chunks] == [None, "stop"]


@pytest.mark.parametrize("message", [None, 5, {"text": "x"}, ""])
def test_a_gemini_stream_error_always_has_a_text_message(message):
    provider, deployment = GEMINI
    translator = provider.stream_translator(model="m", include_usage=False, deployment=deployment)
    with pytest.raises(GatewayError) as caught:
        translator.feed(SSEEvent(orjson.dumps({"error": {"message": message}}).decode()))
    refused(caught.value, 502)


def test_an_empty_chunk_between_cr_and_lf_does_not_split_an_event():
    decoder = SSEDecoder()
    events = decoder.feed(b"data: a\r") + decoder.feed(b"") + decoder.feed(b"\ndata: b\n\n")
    assert events + decoder.flush() == [SSEEvent("a\nb")]  # not two events, "a" and "b"


def test_the_longest_model_id_accepted_fits_the_usage_record():
    from usage.models import UsageRecord

    assert UsageRecord._meta.get_field("model").max_length == validation.MODEL_MAX_LENGTH
