"""The Responses API's pure parts: requests to chat bodies, chat answers and chunks to a
Response and its streaming events (validated against the openai SDK's own types), and the
passthrough's reading of OpenAI's events."""

from __future__ import annotations

import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from apigateway.errors import GatewayError
from apigateway.providers.base import Usage
from apigateway.providers.openai import OpenAIStreamTranslator
from apigateway.providers.options import configured, options_for
from apigateway.responses import passthrough
from apigateway.responses.answer import ChatEvents, from_chat
from apigateway.responses.request import translate
from apigateway.sse import SSEEvent

EVENT = TypeAdapter(ResponseStreamEvent)
TOOL = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}


def test_input_items_become_chat_messages():
    chat = translate(
        {
            "model": "m",
            "instructions": "Be kind.",
            "input": [
                {"role": "user", "content": "Weather?"},
                {
                    "type": "message",
                    "role": "assistant",
                    "id": "msg_1",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": "Checking.", "annotations": []}],
                },
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{}"},
                {"type": "function_call", "call_id": "c2", "name": "lookup", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "rain"},
                {
                    "type": "function_call_output",
                    "call_id": "c2",
                    "output": [{"type": "input_text", "text": "snow"}],
                },
            ],
        }
    ).chat
    call = {"type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    assert chat["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [{"id": "c1", **call}, {"id": "c2", **call}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "rain"},
        {"role": "tool", "tool_call_id": "c2", "content": "snow"},
    ]


def test_options_become_chat_options():
    chat = translate(
        {
            "model": "m",
            "input": "hi",
            "max_output_tokens": 99,
            "reasoning": {"effort": "high", "summary": "auto"},
            "text": {"format": {"type": "json_object"}, "verbosity": "low"},
            "tools": [TOOL],
            "tool_choice": "required",
            "stream": True,
            "store": True,
            "include": ["reasoning.encrypted_content"],
        }
    ).chat
    assert chat == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "max_completion_tokens": 99,
        "reasoning_effort": "high",
        "response_format": {"type": "json_object"},
        "verbosity": "low",
        "tools": [
            {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
        ],
        "tool_choice": "required",
        "stream": True,
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x", "previous_response_id": "resp_1"}, "previous_response_id"),
        ({"input": "x", "conversation": {"id": "conv_1"}}, "conversation"),
        ({"input": "x", "background": True}, "background"),
        ({"input": "x", "prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"input": "x", "service_tier": "priority"}, "service_tier"),
        ({"input": "x", "store": "yes"}, "store"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0].file_id",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0].file_id",
        ),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
        ({"input": "x", "tools": [{"type": "code_interpreter"}]}, "tools"),
        ({"input": "x", "tools": [{"type": "mcp", "server_url": "https://x"}]}, "tools"),
        ({"input": "x", "tool_choice": {"type": "web_search"}}, "tool_choice"),
        ({"input": "x", "include": ["web_search_call.action.sources"]}, "include"),
        ({"input": "x", "text": {"format": {"type": "xml"}}}, "text.format"),
        ({"input": "x", "truncation": "sometimes"}, "truncation"),
    ],
)
def test_what_cannot_be_served_is_a_400_naming_the_field(body, param):
    with pytest.raises(GatewayError) as caught:
        translate({"model": "m", **body})
    assert caught.value.status == 400
    assert caught.value.param == param


def test_what_only_the_responses_api_does_is_noted_for_the_other_families():
    refused = translate(
        {
            "model": "m",
            "input": "x",
            "top_logprobs": 3,
            "truncation": "auto",
            "include": ["message.output_text.logprobs"],
        }
    ).refused
    assert set(refused) == {"top_logprobs", "truncation", "include"}


def test_a_chat_completion_becomes_a_valid_response():
    completion = {
        "id": "chatcmpl-1",
        "created": 1700000000,
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": "Let me look.",
                    "reasoning_content": "They want data.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "lookup", "arguments": '{"q": 1}'},
                        }
                    ],
                },
            }
        ],
        "usage": {"completion_tokens_details": {"reasoning_tokens": 4}},
    }
    usage = Usage(prompt_tokens=10, completion_tokens=7, cached_tokens=2)
    request = {"model": "m", "input": "x", "tools": [TOOL], "instructions": "Be kind."}
    payload = from_chat(completion, usage, request, "m")
    response = Response.model_validate(payload)
    assert [item.type for item in response.output] == ["reasoning", "message", "function_call"]
    assert response.output[0].content[0].text == "They want data."
    assert response.output_text == "Let me look."
    assert response.output[2].call_id == "call_1"
    assert response.status == "completed" and response.instructions == "Be kind."
    assert response.usage.output_tokens_details.reasoning_tokens == 4
    assert response.usage.input_tokens_details.cached_tokens == 2
    assert response.usage.total_tokens == 17


def test_a_length_stop_is_incomplete():
    completion = {
        "choices": [{"finish_reason": "length", "message": {"content": "Echo"}}],
    }
    response = Response.model_validate(from_chat(completion, Usage(1, 1), {"input": "x"}, "m"))
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output[0].status == "incomplete"


def chat_events(*deltas: dict, finish: str = "stop") -> list[SSEEvent]:
    def chunk(delta: dict, reason=None) -> SSEEvent:
        choice = {"index": 0, "delta": delta, "finish_reason": reason}
        return SSEEvent(orjson.dumps({"id": "c", "created": 1, "choices": [choice]}).decode())

    usage = {"prompt_tokens": 5, "completion_tokens": len(deltas), "total_tokens": 5 + len(deltas)}
    usage_chunk = SSEEvent(orjson.dumps({"id": "c", "choices": [], "usage": usage}).decode())
    return [
        chunk({"role": "assistant", "content": ""}),
        *(chunk(delta) for delta in deltas),
        chunk({}, finish),
        usage_chunk,
        SSEEvent("[DONE]"),
    ]


def run(*deltas: dict, finish: str = "stop") -> list:
    stream = ChatEvents(
        OpenAIStreamTranslator(model="m", include_usage=False), {"model": "m", "input": "x"}, "m"
    )
    events = [e for event in chat_events(*deltas, finish=finish) for e in stream.feed(event)]
    assert stream.finished
    events += stream.close()
    parsed = [EVENT.validate_python(event) for event in events]
    assert [event.sequence_number for event in parsed] == list(range(len(parsed)))
    return parsed


def test_chat_chunks_become_the_responses_events_in_order():
    events = run(
        {"reasoning_content": "Hmm"},
        {"content": "Hi"},
        {"content": " there"},
        {
            "tool_calls": [
                {"index": 0, "id": "call_a", "type": "function", "function": {"name": "lookup"}}
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"q"'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]},
        finish="tool_calls",
    )
    assert [event.type for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = events[-1].response
    assert [item.type for item in final.output] == ["reasoning", "message", "function_call"]
    assert final.output_text == "Hi there"
    assert final.output[2].arguments == '{"q": 1}' and final.output[2].call_id == "call_a"
    assert final.usage.input_tokens == 5 and final.usage.output_tokens == 6
    assert [e.output_index for e in events if e.type == "response.output_item.added"] == [0, 1, 2]


def test_a_refusal_is_streamed_as_a_refusal_part():
    events = run({"refusal": "I can't"}, {"refusal": " help."})
    done = [e for e in events if e.type == "response.refusal.done"]
    assert done[0].refusal == "I can't help."
    assert events[-1].response.output[0].content[0].refusal == "I can't help."


def test_a_stream_stopped_by_the_cap_ends_incomplete():
    events = run({"content": "Echo"}, finish="length")
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"


def test_passthrough_events_are_relayed_and_the_last_held_for_the_cost():
    stream = passthrough.ResponsesStream(model="gpt-4o")
    snapshot = {"id": "resp_1", "model": "gpt-4o-2024", "store": True, "usage": None}
    created = {"type": "response.created", "sequence_number": 0, "response": snapshot}
    delta = {"type": "response.output_text.delta", "sequence_number": 1, "delta": "Hello world"}
    usage = {
        "input_tokens": 9,
        "input_tokens_details": {"cached_tokens": 4},
        "output_tokens": 20,
        "output_tokens_details": {"reasoning_tokens": 12},
        "total_tokens": 29,
    }
    finished = {"id": "resp_1", "usage": usage}
    done = {"type": "response.completed", "sequence_number": 2, "response": finished}
    out = [
        e for d in (created, delta, done) for e in stream.feed(SSEEvent(orjson.dumps(d).decode()))
    ]
    assert [e["type"] for e in out] == ["response.created", "response.output_text.delta"]
    assert out[0]["response"]["model"] == "gpt-4o" and out[0]["response"]["store"] is False
    assert stream.finished and stream.final_usage
    assert stream.usage == Usage(9, 20, cached_tokens=4, reasoning_tokens=12)
    (held,) = stream.close()
    assert held["type"] == "response.completed" and held["response"]["model"] == "gpt-4o"
    assert stream.sequence == 3


def test_an_unreadable_passthrough_usage_is_a_502():
    with pytest.raises(GatewayError) as caught:
        passthrough.parse(orjson.dumps({"id": "r", "usage": {"input_tokens": -1}}), "m")
    assert caught.value.status == 502


def test_only_openai_has_the_responses_api_by_default():
    assert options_for("openai", {}).responses_api
    for provider in ("azure", "anthropic", "mistral", "vllm", "my-server"):
        assert not options_for(provider, {}).responses_api
    assert options_for("vllm", {"responses_api": True}).responses_api
    with pytest.raises(ValueError, match="responses_api"):
        configured("vllm", {"responses_api": "yes"})
