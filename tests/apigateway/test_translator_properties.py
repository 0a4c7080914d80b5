"""Property tests (Hypothesis) of the pure code between a caller and a provider: request
validation, each adapter's request builders, answer parsers and stream translators, and the
SSE decoder.

What must hold for any input:

* validation accepts a body or raises GatewayError with a 4xx, nothing else;
* for any body validation accepts, every adapter builds a request (a JSON object body) or
  raises a 4xx GatewayError;
* a provider's answer, whole or streamed, however broken, is translated (into chunks an
  OpenAI client can read, with whole non-negative token counts) or raises the documented
  GatewayError (502; 503 for Anthropic's overloaded; Gemini's blocked prompt is a 400);
* the SSE decoder yields the same events however the bytes are split.

Bodies are drawn "near valid": real requests and answers with parts replaced by arbitrary
JSON, dropped or kept, so that the cases reach deep into the code. Examples per test are few
and derandomized (the same cases every run, no example database).
"""

from __future__ import annotations

import copy
import string
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from apigateway import validation
from apigateway.errors import GatewayError
from apigateway.providers.anthropic import AnthropicProvider
from apigateway.providers.base import Deployment, Usage
from apigateway.providers.gemini import GeminiProvider
from apigateway.providers.openai import AzureOpenAIProvider, OpenAIProvider
from apigateway.sse import SSEDecoder, SSEEvent
from tests.apigateway.providers.stream_events import (
    anthropic_block,
    anthropic_end,
    anthropic_start,
    estimate,
    gemini,
    gemini_end,
    openai_chunk,
    openai_end,
    tool_call_delta,
)

FIXTURES = Path(__file__).parent / "providers" / "fixtures"
FAST = settings(max_examples=150, derandomize=True, database=None, deadline=None)

ADAPTERS = {
    "openai": (OpenAIProvider(), Deployment("openai", "gpt-4o", "https://o.example/v1", "sk-o")),
    "azure": (
        AzureOpenAIProvider(),
        Deployment("azure", "dep", "https://a.example", "az", api_version="2024-10-21"),
    ),
    "anthropic": (
        AnthropicProvider(),
        Deployment("anthropic", "claude-sonnet-4-5", "https://an.example", "sk-ant", {}, 8192),
    ),
    "gemini": (
        GeminiProvider(),
        Deployment("gemini", "gemini-2.5-flash", "https://g.example", "g"),
    ),
}

# --- strategies ----------------------------------------------------------------------------

# Everything orjson.loads can return: 64-bit integers, finite floats, text without lone
# surrogates.
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def places(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) inside a JSON value."""
    found = []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        found.append((value, key))
        if isinstance(child, dict | list):
            found.extend(places(child))
    return found


@st.composite
def mutated(draw, value: Any, changes: int = 3) -> Any:
    """A copy of `value` with up to `changes` parts replaced by arbitrary JSON or dropped;
    once in a while the whole value is replaced."""
    if draw(st.integers(0, 15)) == 0:
        return draw(JSON_VALUES)
    value = copy.deepcopy(value)
    for _ in range(draw(st.integers(0, changes))):
        spots = places(value) if isinstance(value, dict | list) else []
        if not spots:
            break
        container, key = draw(st.sampled_from(spots))
        if draw(st.booleans()):
            container[key] = draw(JSON_VALUES)
        else:
            del container[key]
    return value


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city"],
            "$defs": {"u": {"type": ["string", "null"]}},
        },
    },
}
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}
CHAT_BODY = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "JSON."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
                {"type": "image_url", "image_url": {"url": "https://x.example/a.png"}},
                {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE"}},
            ],
        },
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
        {"role": "user", "content": "and now?", "name": "ann"},
    ],
    "temperature": 1.5,
    "top_p": 0.5,
    "n": 1,
    "max_tokens": 100,
    "max_completion_tokens": 50,
    "stop": ["\n\n", "END"],
    "seed": 7,
    "presence_penalty": 0.5,
    "frequency_penalty": -0.5,
    "user": "u-1",
    "stream": True,
    "stream_options": {"include_usage": True},
    "tools": [WEATHER],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "parallel_tool_calls": False,
    "response_format": {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "schema": {
                "type": "object",
                "properties": {"a": {"$ref": "#/$defs/a"}, "b": {"anyOf": [{"type": "null"}]}},
                "$defs": {"a": {"type": "integer", "const": 1}},
            },
        },
    },
}
EMBEDDINGS_BODY = {
    "model": "e",
    "input": ["a", "bc"],
    "encoding_format": "base64",
    "dimensions": 8,
    "user": "u",
}
IMAGES_BODY = {
    "model": "dall-e-3",
    "prompt": "a cat",
    "n": 2,
    "size": "1024x1024",
    "quality": "hd",
    "style": "vivid",
    "response_format": "b64_json",
}
PLAIN_CHAT_BODY = {
    **CHAT_BODY,
    "stream": False,
    "stream_options": None,
    "tool_choice": "required",
    "response_format": {"type": "json_object"},
    "stop": "END",
}
CHAT_BODIES = (
    mutated(CHAT_BODY)
    | mutated(PLAIN_CHAT_BODY)
    | st.dictionaries(st.sampled_from(sorted(CHAT_BODY)), JSON_VALUES)
)


def accepted(validate, bodies: st.SearchStrategy) -> st.SearchStrategy:
    """The drawn bodies that validation accepts."""

    def ok(body: Any) -> bool:
        try:
            validate(body)
        except GatewayError:
            return False
        return True

    return bodies.filter(lambda body: isinstance(body, dict) and ok(body))


def assert_client_error(error: GatewayError) -> None:
    assert 400 <= error.status < 500, error
    assert error.message


def assert_json_request(request) -> None:
    assert isinstance(orjson.loads(request.body), dict)


def assert_usage(usage: Usage | None) -> None:
    if usage is None:
        return
    for count in (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens):
        assert isinstance(count, int) and not isinstance(count, bool) and count >= 0, usage


def assert_chunk(chunk: dict, *, built: bool) -> None:
    """What the relay and an OpenAI client read from a chunk; and for the chunks a translator
    builds itself (not relayed from an OpenAI-shaped provider), their tool call arguments."""
    orjson.dumps(chunk)
    assert isinstance(chunk["choices"], list)
    for choice in chunk["choices"]:
        delta = choice.get("delta") or {}
        assert isinstance(delta, dict), chunk
        assert delta.get("content") is None or isinstance(delta["content"], str), chunk
        for call in delta.get("tool_calls") or [] if built else []:
            arguments = call.get("function", {}).get("arguments")
            assert arguments is None or isinstance(arguments, str), chunk


def assert_upstream_error(error: GatewayError) -> None:
    """A broken answer is the provider's fault: 502 (503 when it says it is overloaded), or
    Gemini's blocked prompt (400, content_filter)."""
    assert error.status in (502, 503) or error.code == "content_filter", error
    assert error.message


# --- validation ----------------------------------------------------------------------------


@FAST
@given(st.binary(max_size=64) | JSON_VALUES.map(orjson.dumps))
def test_parse_json_accepts_an_object_or_answers_400(body):
    try:
        assert isinstance(validation.parse_json(body), dict)
    except GatewayError as error:
        assert error.status == 400


@FAST
@given(
    st.sampled_from([validation.chat, validation.embeddings, validation.images]),
    JSON_VALUES.filter(lambda v: isinstance(v, dict))
    | mutated(CHAT_BODY)
    | mutated(EMBEDDINGS_BODY)
    | mutated(IMAGES_BODY),
)
def test_validation_accepts_or_answers_a_4xx(validate, body):
    if not isinstance(body, dict):
        return  # parse_json lets only objects through
    try:
        model = validate(body)
    except GatewayError as error:
        assert_client_error(error)
    else:
        assert isinstance(model, str) and model


# --- request builders ----------------------------------------------------------------------


@FAST
@given(st.sampled_from(sorted(ADAPTERS)), accepted(validation.chat, CHAT_BODIES))
def test_every_adapter_builds_a_chat_request_for_any_valid_body_or_answers_a_4xx(name, body):
    adapter, deployment = ADAPTERS[name]
    try:
        request = adapter.build_chat_request(body, deployment)
    except GatewayError as error:
        assert_client_error(error)
    else:
        assert_json_request(request)


@FAST
@given(
    st.sampled_from(sorted(ADAPTERS)),
    accepted(validation.embeddings, mutated(EMBEDDINGS_BODY)),
)
def test_every_adapter_builds_an_embeddings_request_or_answers_a_4xx(name, body):
    adapter, deployment = ADAPTERS[name]
    try:
        request = adapter.build_embeddings_request(body, deployment)
    except GatewayError as error:
        assert_client_error(error)
    else:
        assert_json_request(request)


@FAST
@given(st.sampled_from(sorted(ADAPTERS)), accepted(validation.images, mutated(IMAGES_BODY)))
def test_every_adapter_builds_an_images_request_or_answers_a_4xx(name, body):
    adapter, deployment = ADAPTERS[name]
    try:
        request = adapter.build_images_request(body, deployment)
    except GatewayError as error:
        assert_client_error(error)
    else:
        assert_json_request(request)


# --- whole answers -------------------------------------------------------------------------

OPENAI_ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "hi", "tool_calls": [CALL]},
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 3,
        "completion_tokens": 1,
        "total_tokens": 4,
        "prompt_tokens_details": {"cached_tokens": 1},
    },
}
OPENAI_EMBEDDINGS = {
    "object": "list",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}],
    "usage": {"prompt_tokens": 1, "total_tokens": 1},
}
ANTHROPIC_ANSWER = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "content": [
        {"type": "text", "text": "hi"},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "P"}},
        {"type": "thinking", "thinking": "hm"},
    ],
    "stop_reason": "tool_use",
    "usage": {
        "input_tokens": 3,
        "output_tokens": 1,
        "cache_read_input_tokens": 2,
        "cache_creation_input_tokens": 1,
    },
}
GEMINI_ANSWER = orjson.loads((FIXTURES / "gemini_function_call.json").read_bytes())
GEMINI_ANSWER["candidates"][0]["content"]["parts"].append({"text": "hm", "thought": True})
GEMINI_ANSWER["promptFeedback"] = {"blockReason": "SAFETY"}
GEMINI_EMBEDDINGS = orjson.loads((FIXTURES / "gemini_embeddings.json").read_bytes())
CHAT_ANSWERS = {
    "openai": OPENAI_ANSWER,
    "azure": OPENAI_ANSWER,
    "anthropic": ANTHROPIC_ANSWER,
    "gemini": GEMINI_ANSWER,
}


def answers(template: dict) -> st.SearchStrategy:
    return mutated(template).map(orjson.dumps) | st.binary(max_size=32)


@FAST
@given(st.sampled_from(sorted(ADAPTERS)), st.data())
def test_a_chat_answer_however_broken_parses_or_is_a_502(name, data):
    adapter, deployment = ADAPTERS[name]
    raw = data.draw(answers(CHAT_ANSWERS[name]))
    try:
        completion, usage = adapter.parse_chat_response(raw, model="m", deployment=deployment)
    except GatewayError as error:
        assert_upstream_error(error)
    else:
        orjson.dumps(completion)
        assert_usage(usage)


@FAST
@given(
    st.sampled_from(["openai", "gemini"]),
    st.sampled_from([{"input": "abc"}, {"input": ["a", "b"], "encoding_format": "base64"}]),
    st.data(),
)
def test_an_embeddings_answer_however_broken_parses_or_is_a_502(name, body, data):
    adapter, _ = ADAPTERS[name]
    template = OPENAI_EMBEDDINGS if name == "openai" else GEMINI_EMBEDDINGS
    raw = data.draw(answers(template))
    try:
        payload, usage = adapter.parse_embeddings_response(raw, model="m", body=body)
    except GatewayError as error:
        assert_upstream_error(error)
    else:
        orjson.dumps(payload)
        assert_usage(usage)


@FAST
@given(answers({"created": 1, "data": [{"url": "https://i.example/1.png"}]}))
def test_an_images_answer_however_broken_parses_or_is_a_502(raw):
    try:
        payload, usage = OpenAIProvider().parse_images_response(raw, model="dall-e-3")
    except GatewayError as error:
        assert_upstream_error(error)
    else:
        orjson.dumps(payload)
        assert_usage(usage)


# --- streams -------------------------------------------------------------------------------


def fixture_events(name: str) -> list[tuple[str, Any]]:
    decoder = SSEDecoder()
    events = decoder.feed((FIXTURES / name).read_bytes()) + decoder.flush()
    return [(event.event, orjson.loads(event.data)) for event in events]


OPENAI_CHUNK = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "gpt-4o",
    "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}],
}
STREAM_EVENTS = {
    "openai": [
        ("message", OPENAI_CHUNK),
        ("message", {**OPENAI_CHUNK, "choices": [], "usage": OPENAI_ANSWER["usage"]}),
        ("message", {"error": {"message": "boom"}}),
    ],
    "anthropic": [
        *fixture_events("anthropic_stream_tool_use.sse"),
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}),
    ],
    "gemini": [
        *fixture_events("gemini_stream_function_call.sse"),
        *fixture_events("gemini_stream_text.sse"),
        ("message", {"error": {"code": 500, "message": "boom"}}),
        ("message", {"promptFeedback": {"blockReason": "SAFETY"}}),
    ],
}
STREAM_EVENTS["azure"] = STREAM_EVENTS["openai"]


def event_data(payload: Any) -> st.SearchStrategy:
    return mutated(payload).map(lambda v: orjson.dumps(v).decode()) | st.sampled_from(
        ["[DONE]", "", "{", "null", "[]", '"x"']
    )


def streams(name: str) -> st.SearchStrategy:
    """Event sequences in any order, with any event broken."""
    one = st.sampled_from(STREAM_EVENTS[name]).flatmap(
        lambda pair: st.tuples(st.just(pair[0]) | st.text(max_size=4), event_data(pair[1]))
    )
    return st.lists(one, max_size=8)


@FAST
@given(st.sampled_from(sorted(ADAPTERS)), st.booleans(), st.data())
def test_a_stream_however_broken_or_out_of_order_yields_chunks_or_a_502(name, usage, data):
    adapter, deployment = ADAPTERS[name]
    translator = adapter.stream_translator(model="m", include_usage=usage, deployment=deployment)
    built = name in ("anthropic", "gemini")
    try:
        for kind, payload in data.draw(streams(name)):
            for chunk in translator.feed(SSEEvent(payload, kind or "message")):
                assert_chunk(chunk, built=built)
            assert_usage(translator.usage)
            assert_usage(translator.billable_usage(prompt_estimate=7))
        for chunk in translator.close():
            assert_chunk(chunk, built=built)
    except GatewayError as error:
        assert_upstream_error(error)


# --- what a stream is billed --------------------------------------------------------------

# Output pieces in any script (ASCII, accented, CJK, emoji), each as one delta of one kind.
OUTPUT_TEXT = st.text(max_size=12)
PIECE_KINDS = {
    "openai": ["content", "refusal", "reasoning_content", "reasoning", "name", "arguments"],
    "anthropic": ["text", "thinking", "arguments", "redacted"],
    "gemini": ["text", "thought", "call"],
}
PROMPT = 11  # the provider's prompt count, where it sends one before the end


def openai_piece(kind: str, text: str) -> tuple[list[SSEEvent], list[str]]:
    if kind in ("name", "arguments"):
        return [openai_chunk(tool_call_delta(**{kind: text}))], [text]
    return [openai_chunk({kind: text})], [text]


def anthropic_piece(index: int, kind: str, text: str) -> tuple[list[SSEEvent], list[str]]:
    if kind == "redacted":
        return anthropic_block(index, {"type": "redacted_thinking", "data": text}, []), [text]
    if kind == "arguments":
        tool = {"type": "tool_use", "id": f"toolu_{index}", "name": "f", "input": {}}
        delta = {"type": "input_json_delta", "partial_json": text}
        return anthropic_block(index, tool, [delta]), ["f", text]
    block = {"type": kind, kind: ""}
    return anthropic_block(index, block, [{"type": f"{kind}_delta", kind: text}]), [text]


def gemini_piece(kind: str, text: str) -> tuple[list[SSEEvent], list[str]]:
    usage = {"promptTokenCount": PROMPT, "totalTokenCount": PROMPT}
    if kind == "call":
        args = {"q": text}
        call = {"functionCall": {"name": text, "args": args}}
        return [gemini([call], usage=usage)], [text, orjson.dumps(args).decode()]
    part = {"text": text, "thought": True} if kind == "thought" else {"text": text}
    return [gemini([part], usage=usage)], [text]


def billed_stream(name: str, pieces: list[tuple[str, str]], final: int):
    """A provider's stream of `pieces`: its opening events, each piece's events and output
    text, its closing events, and the Usage its final counts make."""
    if name == "openai":
        built = [openai_piece(kind, text) for kind, text in pieces]
        return [], built, openai_end(PROMPT, final), Usage(PROMPT, final)
    if name == "anthropic":
        built = [anthropic_piece(i, kind, text) for i, (kind, text) in enumerate(pieces)]
        return [anthropic_start(PROMPT)], built, anthropic_end(final), Usage(PROMPT, final)
    built = [gemini_piece(kind, text) for kind, text in pieces]
    end = [gemini_end(PROMPT, final, thoughts=1)]
    return [], built, end, Usage(PROMPT, final + 1, reasoning_tokens=1)


@FAST
@given(
    st.sampled_from(sorted(PIECE_KINDS)),
    st.data(),
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=10**4),
)
def test_a_stream_is_billed_at_least_its_output_when_cut_and_its_counts_when_complete(
    name, data, prompt_estimate, final
):
    """Cut anywhere, a stream bills at least ceil(ASCII characters / 4) + other characters
    of all the output it carried (and no more than once each); completed, exactly the
    provider's final counts, whatever the output was."""
    pieces = data.draw(st.lists(st.tuples(st.sampled_from(PIECE_KINDS[name]), OUTPUT_TEXT)))
    opening, built, closing, final_usage = billed_stream(name, pieces, final)
    adapter, deployment = ADAPTERS[name]
    translator = adapter.stream_translator(model="m", include_usage=True, deployment=deployment)
    seen: list[str] = []
    for event in opening:
        translator.feed(event)
    for events, texts in built:
        for event in events:
            translator.feed(event)
        seen += texts
        usage = translator.billable_usage(prompt_estimate)
        assert translator.output_estimate() == estimate(*seen)
        assert usage.completion_tokens >= estimate(*seen)
        assert usage.prompt_tokens == (prompt_estimate if name == "openai" else PROMPT)
    for event in closing:
        translator.feed(event)
    assert translator.billable_usage(prompt_estimate) == final_usage


# --- the SSE decoder -----------------------------------------------------------------------

# Mostly data lines, so that events often span several lines.
FIELD_NAMES = st.sampled_from(["data", "data", "data", "data", "event", "id", "retry", "", "x"])
LINE_TEXT = st.text(alphabet=string.ascii_letters + ': é✓{}"', max_size=12)
FIELD_LINES = st.tuples(FIELD_NAMES, st.sampled_from([":", ": ", ""]), LINE_TEXT).map("".join)
LINES = st.one_of(FIELD_LINES, FIELD_LINES, st.sampled_from(["", ": comment"]))
ENDINGS = st.sampled_from(["\n", "\r\n", "\r"])


STREAMS = st.lists(st.tuples(LINES, ENDINGS), max_size=12).map(
    lambda lines: "".join(line + end for line, end in lines).encode()
)


@FAST
@given(STREAMS, st.data())
def test_the_sse_decoder_gives_the_same_events_however_the_bytes_are_split(stream, data):
    whole = SSEDecoder()
    expected = whole.feed(stream) + whole.flush()
    # Cuts anywhere, often right after a CR (half a CRLF), often twice (an empty chunk).
    after_cr = [index + 1 for index, byte in enumerate(stream) if byte == ord("\r")]
    cut = st.integers(0, len(stream))
    cuts = sorted(data.draw(st.lists(st.sampled_from(after_cr) | cut if after_cr else cut)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    split = SSEDecoder()
    events = [event for piece in pieces for event in split.feed(piece)]
    assert events + split.flush() == expected
