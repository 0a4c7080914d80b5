"""The Messages API's pure parts: the request's checks and chat body, chat answers and
chunks as Anthropic messages and events (read back by the anthropic SDK's own types), and
the passthrough stream's accounting."""

from __future__ import annotations

import orjson
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from apigateway.errors import GatewayError
from apigateway.messages.answers import MessagesFromChat, message_from_chat
from apigateway.messages.passthrough import PassthroughStream
from apigateway.messages.request import check, check_betas, to_chat
from apigateway.providers.base import Usage
from apigateway.providers.openai import OpenAIStreamTranslator
from apigateway.sse import SSEEvent

EVENTS = TypeAdapter(RawMessageStreamEvent)
PDF = "JVBERi0xLjQK"


def test_claude_codes_request_becomes_a_chat_body():
    body = {
        "model": "gpt-4o",
        "max_tokens": 2000,
        "system": [
            {"type": "text", "text": "A.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "B."},
        ],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
        "tools": [{"name": "f", "input_schema": {"type": "object"}, "cache_control": {}}],
        "messages": [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hm", "signature": "s"},
                    {"type": "text", "text": "Calling."},
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "is_error": True,
                        "content": [{"type": "text", "text": "boom"}],
                    },
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                    },
                ],
            },
        ],
    }
    assert check(body) == "gpt-4o"
    translation = to_chat(body)
    assert translation.problems == []
    chat = translation.body
    assert chat["max_completion_tokens"] == 2000
    assert chat["reasoning"] == {"max_tokens": 1024}
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert chat["parallel_tool_calls"] is False
    assert chat["tools"] == [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    ]
    assert chat["messages"] == [
        {"role": "system", "content": "A.\n\nB."},
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": "Calling.",
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "Error: boom"},
        {
            "role": "user",
            "content": [
                {
                    "type": "file",
                    "file": {
                        "filename": "document.pdf",
                        "file_data": f"data:application/pdf;base64,{PDF}",
                    },
                }
            ],
        },
    ]
    assert "cache_control" not in orjson.dumps(chat).decode()


def test_what_only_claude_reads_is_noted_for_the_other_families():
    body = {
        "model": "m",
        "max_tokens": 5,
        "tools": [{"type": "bash_20250124", "name": "bash"}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {"type": "url", "url": "https://x.example/a.pdf"},
                    }
                ],
            }
        ],
    }
    check(body)
    problems = to_chat(body).problems
    assert any("bash_20250124" in p for p in problems)
    assert any("'url' source" in p for p in problems)


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": 5}]},
        {"model": "m", "max_tokens": True, "messages": [{"role": "user", "content": "x"}]},
        {"model": "m", "max_tokens": 5, "messages": "x"},
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "top_p": 2},
        {
            "model": "m",
            "max_tokens": 5,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "source": {"type": "url", "url": "http://10.0.0.1/x"}}
                    ],
                }
            ],
        },
    ],
)
def test_malformed_requests_are_400(body):
    with pytest.raises(GatewayError) as caught:
        check(body)
    assert caught.value.status == 400


def test_count_tokens_takes_no_output_fields():
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    assert check(body, counting=True) == "m"
    with pytest.raises(GatewayError):
        check({**body, "max_tokens": 5}, counting=True)


def test_betas_are_forwarded_unless_priced():
    assert check_betas(" a-1 ,b-2") == "a-1,b-2"
    assert check_betas(None) == ""
    with pytest.raises(GatewayError):
        check_betas("a-1,fast-mode-2026-02-01")


def test_a_chat_completion_is_an_anthropic_message():
    completion = {
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": "Hi",
                    "reasoning_content": "thought",
                    "tool_calls": [
                        {"id": "c1", "function": {"name": "f", "arguments": '{"x": 2}'}}
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    usage = Usage(prompt_tokens=100, completion_tokens=7, cached_tokens=60)
    message = Message.model_validate(message_from_chat(completion, usage, "gpt-4o"))
    assert [block.type for block in message.content] == ["thinking", "text", "tool_use"]
    assert message.content[2].input == {"x": 2}
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens == 40
    assert message.usage.cache_read_input_tokens == 60


def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> SSEEvent:
    choices = [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]
    data = {"id": "c", "object": "chat.completion.chunk", "model": "x", "choices": choices}
    if usage:
        data["usage"] = usage  # type: ignore[assignment]
    return SSEEvent(orjson.dumps(data).decode())


def test_chat_chunks_become_anthropics_event_sequence():
    stream = MessagesFromChat(OpenAIStreamTranslator(model="gpt-4o", include_usage=True), "gpt-4o")
    events = []
    for event in [
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning_content": "think"}),
        chunk({"content": "Hi"}),
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a"'}}
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
        chunk({}, "tool_calls"),
        chunk({}, usage={"prompt_tokens": 9, "completion_tokens": 4}),
        SSEEvent("[DONE]"),
    ]:
        events += stream.feed(event)
    assert stream.finished
    events += stream.close()
    for event in events:
        EVENTS.validate_python(event)  # each one as the SDK reads it
    kinds = [
        (e["type"], (e.get("delta") or e.get("content_block") or {}).get("type")) for e in events
    ]
    assert kinds == [
        ("message_start", None),
        ("content_block_start", "thinking"),
        ("content_block_delta", "thinking_delta"),
        ("content_block_stop", None),
        ("content_block_start", "text"),
        ("content_block_delta", "text_delta"),
        ("content_block_stop", None),
        ("content_block_start", "tool_use"),
        ("content_block_delta", "input_json_delta"),
        ("content_block_delta", "input_json_delta"),
        ("content_block_stop", None),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert [e["index"] for e in events if e["type"] == "content_block_start"] == [0, 1, 2]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert events[-2]["usage"]["input_tokens"] == 9
    assert events[-2]["usage"]["output_tokens"] == 4


def anthropic_event(payload: dict) -> SSEEvent:
    return SSEEvent(orjson.dumps(payload).decode(), event=payload["type"])


def test_passthrough_stream_reads_usage_and_holds_the_end():
    stream = PassthroughStream(model="claude-3-5-sonnet")
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-3-5-sonnet-20241022",
            "content": [],
            "usage": {
                "input_tokens": 10,
                "output_tokens": 1,
                "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 20,
            },
        },
    }
    sent = stream.feed(anthropic_event(start))
    assert sent[0]["message"]["model"] == "claude-3-5-sonnet"
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn"},
        "usage": {"output_tokens": 5},
    }
    assert stream.feed(anthropic_event(delta)) == []
    assert stream.feed(anthropic_event({"type": "message_stop"})) == []
    assert stream.finished and stream.final_usage
    assert stream.usage == Usage(
        prompt_tokens=130, completion_tokens=5, cached_tokens=100, cache_write_tokens=20
    )
    assert [e["type"] for e in stream.close()] == ["message_delta", "message_stop"]
