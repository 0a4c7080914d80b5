"""OpenAI's Responses API (`POST /v1/responses`) for the fake OpenAI, in its wire format.

Answers as the fake's chat does: "Echo: <last user text>"; a `function_call` of the first
function tool with {"city": "Paris"} when tools are offered and the text mentions the
weather; "The tool said: <output>" after a `function_call_output`. `max_output_tokens`
truncates by words (status "incomplete"). Tokens are whitespace-separated words. Streams are
the real named-event sequence (response.created ... response.completed), one text delta per
word, each event with its `sequence_number`. Like OpenAI, `previous_response_id` naming a
response it does not hold is a 400, and so is an unknown field.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from tests.fakes.server import RecordedRequest, Send
from tests.fakes.tokens import words

FIELDS = {
    "model",
    "input",
    "instructions",
    "max_output_tokens",
    "metadata",
    "parallel_tool_calls",
    "previous_response_id",
    "reasoning",
    "store",
    "stream",
    "stream_options",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_p",
    "truncation",
    "user",
    "include",
    "prompt_cache_key",
    "safety_identifier",
    "top_logprobs",
    "service_tier",
}


def error(message: str, param: str | None = None) -> dict:
    return {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": None,
        }
    }


def item_text(item: dict) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    return " ".join(p.get("text", "") for p in content or [] if isinstance(p, dict))


def last_turn(items: list[dict]) -> tuple[str, bool]:
    """The last user text or function output, and whether it was a function output."""
    for item in reversed(items):
        if item.get("type") == "function_call_output":
            return str(item.get("output")), True
        if item.get("role") == "user":
            return item_text(item), False
    return "", False


def input_words(body: dict) -> int:
    given = body.get("input")
    items = [{"role": "user", "content": given}] if isinstance(given, str) else given or []
    count = len(words(str(body.get("instructions") or "")))
    for item in items:
        if item.get("type") == "function_call_output":
            count += len(words(str(item.get("output"))))
        elif item.get("type") == "function_call":
            count += 1
        else:
            count += len(words(item_text(item)))
    return count


def answer(body: dict, now: int, serial: int) -> dict:
    """The whole Response object for `body`."""
    given = body.get("input")
    items = [{"role": "user", "content": given}] if isinstance(given, str) else given or []
    text, after_tool = last_turn(items)
    tools = [t for t in body.get("tools") or [] if t.get("type") == "function"]
    output: list[dict] = []
    status, incomplete = "completed", None
    if not after_tool and tools and "weather" in text:
        output.append(
            {
                "id": f"fc_fake{serial}",
                "type": "function_call",
                "status": "completed",
                "arguments": '{"city": "Paris"}',
                "call_id": f"call_fake{serial}",
                "name": tools[0]["name"],
            }
        )
        produced = 5
    else:
        out = words(f"The tool said: {text}" if after_tool else f"Echo: {text}")
        limit = body.get("max_output_tokens")
        if limit and len(out) > limit:
            out, status, incomplete = out[:limit], "incomplete", {"reason": "max_output_tokens"}
        output.append(
            {
                "id": f"msg_fake{serial}",
                "type": "message",
                "status": status,
                "role": "assistant",
                "content": [
                    {
                        "type": "output_text",
                        "text": " ".join(out),
                        "annotations": [],
                        "logprobs": [],
                    }
                ],
            }
        )
        produced = len(out)
    prompt = input_words(body)
    return {
        "id": f"resp_fake{serial}",
        "object": "response",
        "created_at": now,
        "status": status,
        "completed_at": now if status == "completed" else None,
        "error": None,
        "incomplete_details": incomplete,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": f"{body['model']}-2024-08-06",
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": produced,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + produced,
        },
        "user": None,
        "metadata": body.get("metadata") or {},
    }


def stream_events(response: dict) -> list[dict]:
    """The events OpenAI streams for `response`, without their sequence numbers."""
    started = {
        **response,
        "status": "in_progress",
        "output": [],
        "usage": None,
        "completed_at": None,
        "incomplete_details": None,
    }
    events: list[dict] = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
    ]
    for index, item in enumerate(response["output"]):
        base = {"output_index": index, "item_id": item["id"]}
        if item["type"] == "function_call":
            events.append(
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {**item, "arguments": "", "status": "in_progress"},
                }
            )
            arguments = item["arguments"]
            events.append(
                {"type": "response.function_call_arguments.delta", **base, "delta": arguments}
            )
            events.append(
                {"type": "response.function_call_arguments.done", **base, "arguments": arguments}
            )
        else:
            part = item["content"][0]
            events.append(
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {**item, "content": [], "status": "in_progress"},
                }
            )
            base = {**base, "content_index": 0}
            events.append(
                {
                    "type": "response.content_part.added",
                    **base,
                    "part": {**part, "text": ""},
                }
            )
            for position, word in enumerate(words(part["text"])):
                delta = word if position == 0 else " " + word
                events.append(
                    {"type": "response.output_text.delta", **base, "delta": delta, "logprobs": []}
                )
            events.append(
                {"type": "response.output_text.done", **base, "text": part["text"], "logprobs": []}
            )
            events.append({"type": "response.content_part.done", **base, "part": part})
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    final = "response.completed" if response["status"] == "completed" else "response.incomplete"
    events.append({"type": final, "response": response})
    return events


def encode(events: list[dict]) -> list[bytes]:
    out = []
    for number, event in enumerate(events):
        event = {**event, "sequence_number": number}
        out.append(f"event: {event['type']}\ndata: ".encode() + orjson.dumps(event) + b"\n\n")
    return out


class ResponsesEndpoint:
    """Mixed into the fake OpenAI: `responses` serves POST /v1/responses."""

    serial = 0

    def check(self, body: Any) -> dict | None:
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return error("Missing required parameter: 'model'.", "model")
        for name in body:
            if name not in FIELDS:
                return error(f"Unknown parameter: '{name}'.", name)
        if body.get("previous_response_id"):
            return error(
                f"Previous response with id '{body['previous_response_id']}' not found.",
                "previous_response_id",
            )
        if "input" not in body:
            return error("Missing required parameter: 'input'.", "input")
        return None

    async def responses(self, body: Any, send: Send, request: RecordedRequest) -> None:
        if (problem := self.check(body)) is not None:
            await self.respond_json(send, problem, status=400)  # type: ignore[attr-defined]
            return
        ResponsesEndpoint.serial += 1
        response = answer(body, int(time.time()), ResponsesEndpoint.serial)
        if not body.get("stream"):
            await self.respond_json(send, response)  # type: ignore[attr-defined]
            return
        await self.stream(send, encode(stream_events(response)), request)  # type: ignore[attr-defined]
