"""Chat completions answers (of the families that are not Claude) as Anthropic messages and
stream events. Pure.

Reasoning text (`reasoning_content`, or OpenRouter's `reasoning`) becomes a thinking block
without a signature; text a text block; tool calls tool_use blocks. Streams open with
message_start, give each block its content_block_start, deltas (thinking_delta,
text_delta, input_json_delta) and content_block_stop, and end with message_delta (the stop
reason and the usage) and message_stop.
"""

from __future__ import annotations

from typing import Any

import orjson

from apigateway import ids
from apigateway.providers.base import JSON, StreamTranslator, Usage
from apigateway.sse import SSEEvent

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


# (no signature: only Anthropic signs its thinking)
THINKING_START = {"type": "thinking", "thinking": "", "signature": ""}


def stop_reason(finish_reason: Any) -> str | None:
    if finish_reason is None:
        return None
    return STOP_REASONS.get(finish_reason, "end_turn")


def anthropic_usage(usage: Usage | None) -> JSON:
    """Anthropic's counts: its input_tokens leave out cache reads and writes."""
    usage = usage or Usage()
    cached = usage.cached_tokens + usage.cache_write_tokens
    return {
        "input_tokens": max(usage.prompt_tokens - cached, 0),
        "output_tokens": usage.completion_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
    }


def reasoning_of(message: JSON) -> str:
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    return reasoning if isinstance(reasoning, str) else ""


def arguments_object(arguments: Any) -> JSON:
    """A tool call's arguments, as the object a tool_use block's input is."""
    if isinstance(arguments, dict):
        return arguments
    try:
        value = orjson.loads(arguments or "{}")
    except (orjson.JSONDecodeError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def message_from_chat(completion: JSON, usage: Usage, model: str) -> JSON:
    """A whole chat completion (one choice) as an Anthropic message."""
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    content: list[JSON] = []
    if reasoning := reasoning_of(message):
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    if isinstance(text := message.get("content"), str) and text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": str(call.get("id") or ""),
                "name": str(function.get("name") or ""),
                "input": arguments_object(function.get("arguments")),
            }
        )
    return {
        "id": ids.message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason")) or "end_turn",
        "stop_sequence": None,
        "usage": anthropic_usage(usage),
    }


class MessagesFromChat:
    """A stream translator over the adapter's own: its chat chunks become Anthropic events.
    Usage, output counts and the end of the stream are the adapter translator's (the relay
    bills from them)."""

    def __init__(self, inner: StreamTranslator, model: str) -> None:
        self.inner = inner
        self.model = model
        self.id = ids.message_id()
        self.started = False
        self.block = -1  # the index of the last block opened
        self.open: str | None = None  # the kind of the block still open
        self.tools: dict[int, int] = {}  # chat tool call index -> block index
        self.stop_reason: str | None = None

    # --- what the relay reads ---
    @property
    def usage(self) -> Usage | None:
        return self.inner.usage

    @property
    def final_usage(self) -> bool:
        return self.inner.final_usage

    @property
    def finished(self) -> bool:
        return self.inner.finished

    @property
    def produced(self) -> bool:
        return self.inner.produced

    def billable_usage(self, prompt_estimate: int) -> Usage:
        return self.inner.billable_usage(prompt_estimate)

    def feed(self, event: SSEEvent) -> list[JSON]:
        return [e for chunk in self.inner.feed(event) for e in self.convert(chunk)]

    def close(self) -> list[JSON]:
        """The events that end the message (the adapter's closing chunks read first)."""
        events = [e for chunk in self.inner.close() for e in self.convert(chunk)]
        events += self.start()
        events += self.stop_block()
        delta = {"stop_reason": self.stop_reason or "end_turn", "stop_sequence": None}
        usage = anthropic_usage(self.inner.usage)
        events.append({"type": "message_delta", "delta": delta, "usage": usage})
        events.append({"type": "message_stop"})
        return events

    # --- chunks to events ---
    def start(self) -> list[JSON]:
        if self.started:
            return []
        self.started = True
        message: JSON = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**anthropic_usage(self.inner.usage), "output_tokens": 0},
        }
        return [{"type": "message_start", "message": message}]

    def stop_block(self) -> list[JSON]:
        if self.open is None:
            return []
        self.open = None
        return [{"type": "content_block_stop", "index": self.block}]

    def open_block(self, kind: str, block: JSON) -> list[JSON]:
        events = self.stop_block()
        self.block += 1
        self.open = kind
        events.append({"type": "content_block_start", "index": self.block, "content_block": block})
        return events

    def convert(self, chunk: JSON) -> list[JSON]:
        events = self.start()
        choices = chunk.get("choices") or []
        choice = choices[0] if choices and isinstance(choices[0], dict) else None
        if choice is None:
            return events  # the usage chunk: read at the close
        delta = choice.get("delta") or {}
        if reasoning := reasoning_of(delta):
            if self.open != "thinking":
                events += self.open_block("thinking", THINKING_START)
            thinking = {"type": "thinking_delta", "thinking": reasoning}
            events.append({"type": "content_block_delta", "index": self.block, "delta": thinking})
        if isinstance(text := delta.get("content"), str) and text:
            if self.open != "text":
                events += self.open_block("text", {"type": "text", "text": ""})
            text_delta = {"type": "text_delta", "text": text}
            events.append({"type": "content_block_delta", "index": self.block, "delta": text_delta})
        for call in delta.get("tool_calls") or []:
            events += self.tool_call(call)
        if reason := stop_reason(choice.get("finish_reason")):
            self.stop_reason = reason
        return events

    def tool_call(self, call: JSON) -> list[JSON]:
        events: list[JSON] = []
        number = call.get("index", 0)
        function = call.get("function") or {}
        if number not in self.tools:
            block = {
                "type": "tool_use",
                "id": str(call.get("id") or ""),
                "name": str(function.get("name") or ""),
                "input": {},
            }
            events += self.open_block("tool", block)
            self.tools[number] = self.block
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            partial = {"type": "input_json_delta", "partial_json": arguments}
            index = self.tools[number]
            events.append({"type": "content_block_delta", "index": index, "delta": partial})
        return events
