"""What a stream is billed, pure: each translator counts all the output it sees (relayed or
not) and `billable_usage` bills a stream that ended early for the larger of the provider's
counts so far and that estimate, and a completed stream for the provider's final counts."""

from __future__ import annotations

import orjson
import pytest

from apigateway.errors import GatewayError
from apigateway.providers.anthropic import AnthropicStreamTranslator
from apigateway.providers.base import StreamTranslator, Usage
from apigateway.providers.gemini import GeminiStreamTranslator
from apigateway.providers.openai import OpenAIStreamTranslator
from apigateway.sse import SSEEvent
from tests.apigateway.providers.stream_events import (
    anthropic,
    anthropic_block,
    anthropic_end,
    anthropic_start,
    estimate,
    gemini,
    gemini_end,
    openai_chunk,
    openai_end,
    openai_usage,
    tool_call_delta,
)

CJK = "日本語のテキスト"


def feed(translator: StreamTranslator, events: list[SSEEvent]) -> StreamTranslator:
    for event in events:
        translator.feed(event)
    return translator


# --- counting and billing, common to all -----------------------------------------------


def test_ascii_is_four_characters_a_token_rounded_up_once_over_the_stream():
    translator = StreamTranslator(model="m", include_usage=False)
    for _ in range(7):
        translator.count("ab")  # 14 characters: 4 tokens, not 7 (a rounding per piece)
    assert translator.output_estimate() == 4


def test_every_non_ascii_character_is_a_token():
    translator = StreamTranslator(model="m", include_usage=False)
    translator.count(CJK)
    translator.count("héllo wörld")  # 9 ASCII characters, 2 others
    assert translator.output_estimate() == len(CJK) + 3 + 2


def test_a_stream_that_ended_early_without_counts_bills_the_estimates():
    translator = StreamTranslator(model="m", include_usage=False)
    translator.count("x" * 40)
    assert translator.billable_usage(prompt_estimate=123) == Usage(123, 10)


def test_a_stream_that_ended_early_bills_the_larger_of_counts_so_far_and_estimate():
    translator = StreamTranslator(model="m", include_usage=False)
    translator.usage = Usage(prompt_tokens=50, completion_tokens=3, cached_tokens=20)
    translator.count("x" * 40)
    assert translator.billable_usage(prompt_estimate=999) == Usage(50, 10, 20)
    translator.usage = Usage(prompt_tokens=50, completion_tokens=30)
    assert translator.billable_usage(prompt_estimate=999) == Usage(50, 30)


def test_a_completed_stream_bills_the_providers_final_counts_alone():
    translator = StreamTranslator(model="m", include_usage=False)
    translator.count("x" * 400)  # more than the provider counted: its counts still win
    translator.usage, translator.final_usage = Usage(50, 3), True
    assert translator.billable_usage(prompt_estimate=999) == Usage(50, 3)


# --- OpenAI family -------------------------------------------------------------------------

OPENAI_OUTPUT = [
    ({"content": "Hello there"}, "Hello there"),
    ({"content": CJK}, CJK),
    ({"refusal": "I can't help with that."}, "I can't help with that."),
    ({"content": None, "reasoning_content": "First, the user"}, "First, the user"),  # DeepSeek
    ({"content": None, "reasoning": "Let me think"}, "Let me think"),  # OpenRouter
    # vLLM sends the same reasoning in both fields: counted once
    ({"reasoning": "same text", "reasoning_content": "same text"}, "same text"),
    (tool_call_delta(name="get_weather"), "get_weather"),
    (tool_call_delta(arguments='{"city": "Par'), '{"city": "Par'),
    ({"function_call": {"name": "f", "arguments": "{}"}}, "f{}"),  # the older functions API
    ({"role": "assistant", "content": "", "refusal": None}, ""),
]


@pytest.mark.parametrize(("delta", "text"), OPENAI_OUTPUT)
def test_openai_family_output_is_counted_whatever_field_carries_it(delta, text):
    translator = OpenAIStreamTranslator(model="m", include_usage=False)
    translator.feed(openai_chunk(delta))
    assert translator.output_estimate() == estimate(text)


def test_openai_tool_call_arguments_cut_after_2840_characters_are_billed_for_them():
    arguments = ('{"rows": [' + '{"note": "xxxxxxxxxxxxxxxxxxxx"}, ' * 200)[:2840]
    events = [openai_chunk(tool_call_delta(name="save_rows"))]
    events += [
        openai_chunk(tool_call_delta(arguments=arguments[i : i + 20]))
        for i in range(0, len(arguments), 20)
    ]
    translator = feed(OpenAIStreamTranslator(model="m", include_usage=False), events)
    usage = translator.billable_usage(prompt_estimate=77)
    assert usage == Usage(77, estimate("save_rows", arguments))
    assert usage.completion_tokens >= 2840 // 4


def test_openai_usage_chunk_makes_the_counts_final():
    events = [openai_chunk({"content": "x" * 400}), *openai_end(prompt=9, completion=3)]
    translator = feed(OpenAIStreamTranslator(model="m", include_usage=True), events[:-1])
    assert translator.final_usage  # (cut between the usage chunk and [DONE]: still final)
    assert translator.billable_usage(prompt_estimate=999) == Usage(9, 3)


def test_openai_usage_sent_with_the_last_choice_is_final_at_done():
    # Some OpenAI-compatible providers put usage on the finish chunk, with no usage chunk.
    usage = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
    last = orjson.loads(openai_chunk({}, "stop").data)
    last = SSEEvent(orjson.dumps({**last, "usage": usage}).decode())
    events = [openai_chunk({"content": "x" * 400}), last]
    translator = feed(OpenAIStreamTranslator(model="m", include_usage=False), events)
    assert not translator.final_usage
    assert translator.billable_usage(prompt_estimate=999) == Usage(9, 100)
    translator.feed(SSEEvent("[DONE]"))
    assert translator.billable_usage(prompt_estimate=999) == Usage(9, 3)


def test_openai_empty_chunk_without_usage_does_not_make_counts_final():
    # Azure's first chunk: no choices, prompt filter results, no usage.
    event = SSEEvent(orjson.dumps({"id": "", "choices": [], "prompt_filter_results": []}).decode())
    translator = feed(OpenAIStreamTranslator(model="m", include_usage=False), [event])
    assert not translator.final_usage


def test_openai_continuous_usage_is_counts_so_far():
    # vLLM's continuous_usage_stats: usage on every chunk, the final one in the usage chunk.
    usage = {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}
    chunk = {**orjson.loads(openai_chunk({"content": "x" * 40}).data), "usage": usage}
    translator = OpenAIStreamTranslator(model="m", include_usage=False)
    translator.feed(SSEEvent(orjson.dumps(chunk).decode()))
    assert translator.billable_usage(prompt_estimate=999) == Usage(9, 10)
    translator.feed(openai_usage(prompt=9, completion=2))
    assert translator.billable_usage(prompt_estimate=999) == Usage(9, 2)


# --- Anthropic -----------------------------------------------------------------------------


def test_anthropic_300_deltas_cut_before_message_delta_are_billed_far_more_than_one():
    words = [f" word{i}" for i in range(300)]
    text = {"type": "text", "text": ""}
    deltas = [{"type": "text_delta", "text": w} for w in words]
    events = [anthropic_start(input_tokens=40), *anthropic_block(0, text, deltas)]
    translator = feed(AnthropicStreamTranslator(model="m", include_usage=False), events)
    assert translator.usage.completion_tokens == 1  # message_start's placeholder
    assert translator.billable_usage(prompt_estimate=999) == Usage(40, estimate(*words))


def test_anthropic_thinking_redacted_thinking_and_tool_input_are_counted():
    thinking = {"type": "thinking", "thinking": ""}
    redacted = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"}
    tool = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
    events = [
        anthropic_start(input_tokens=40),
        *anthropic_block(
            0,
            thinking,
            [
                {"type": "thinking_delta", "thinking": "The user wants " + CJK},
                {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"},
            ],
        ),
        *anthropic_block(1, redacted, []),
        *anthropic_block(
            2,
            {"type": "text", "text": ""},
            [
                {"type": "text_delta", "text": "Paris"},
                {"type": "citations_delta", "citation": {"cited_text": "a long quote " * 50}},
            ],
        ),
        *anthropic_block(3, tool, [{"type": "input_json_delta", "partial_json": '{"city": "P'}]),
    ]
    translator = feed(AnthropicStreamTranslator(model="m", include_usage=False), events)
    # Signatures and citations are not output tokens.
    texts = ["The user wants " + CJK, redacted["data"], "Paris", "get_weather", '{"city": "P']
    assert translator.output_estimate() == estimate(*texts)


def test_anthropic_message_delta_makes_the_counts_final():
    text = {"type": "text", "text": ""}
    events = [
        anthropic_start(input_tokens=40),
        *anthropic_block(0, text, [{"type": "text_delta", "text": "x" * 400}]),
        anthropic_end(output_tokens=7)[0],
    ]
    translator = feed(AnthropicStreamTranslator(model="m", include_usage=False), events)
    assert translator.final_usage  # (cut before message_stop: still final)
    assert translator.billable_usage(prompt_estimate=999) == Usage(40, 7)


def test_anthropic_stream_failing_mid_way_is_billed_for_what_came_before():
    text = {"type": "text", "text": ""}
    events = [
        anthropic_start(input_tokens=40),
        *anthropic_block(0, text, [{"type": "text_delta", "text": "x" * 400}])[:-1],
    ]
    translator = feed(AnthropicStreamTranslator(model="m", include_usage=False), events)
    with pytest.raises(GatewayError, match="busy"):
        translator.feed(anthropic("error", error={"type": "overloaded_error", "message": "busy"}))
    assert translator.billable_usage(prompt_estimate=999) == Usage(40, 100)


# --- Gemini --------------------------------------------------------------------------------


def test_gemini_thoughts_text_and_function_calls_are_counted():
    args = {"city": "Paris", "units": "°C"}
    prompt_only = {"promptTokenCount": 12, "totalTokenCount": 12}
    events = [
        gemini([{"text": "**Weighing** the " + CJK, "thought": True}], usage=prompt_only),
        gemini([{"text": "Checking"}], usage=prompt_only),
        gemini([{"functionCall": {"name": "get_weather", "args": args}}], usage=prompt_only),
    ]
    translator = feed(GeminiStreamTranslator(model="m", include_usage=False), events)
    texts = ["**Weighing** the " + CJK, "Checking", "get_weather", orjson.dumps(args).decode()]
    assert translator.output_estimate() == estimate(*texts)
    # The prompt count came with every event; the output is estimated.
    assert translator.billable_usage(prompt_estimate=999) == Usage(12, estimate(*texts))


def test_gemini_finish_with_usage_makes_the_counts_final():
    events = [
        gemini([{"text": "x" * 400}], usage={"promptTokenCount": 12}),
        gemini_end(prompt=12, answer=5, thoughts=4),
    ]
    translator = feed(GeminiStreamTranslator(model="m", include_usage=False), events)
    assert translator.final_usage
    assert translator.billable_usage(prompt_estimate=999) == Usage(12, 9, reasoning_tokens=4)
