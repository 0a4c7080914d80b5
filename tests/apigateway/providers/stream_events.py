"""Provider stream events, built as each provider sends them, for the stream translators'
tests: OpenAI chat.completion.chunk deltas, Anthropic's named events, Gemini's
GenerateContentResponse events; and `deltas`, what a translation's chunks say."""

from __future__ import annotations

import math
from typing import Any

import orjson

from apigateway.sse import SSEEvent


def estimate(*texts: str) -> int:
    """The least a stream's output may be billed: four ASCII characters a token, any other
    character a token, over everything together."""
    ascii_chars = sum(1 for text in texts for c in text if ord(c) < 128)
    return math.ceil(ascii_chars / 4) + sum(len(text) for text in texts) - ascii_chars


def deltas(chunks: list[dict]) -> list[tuple]:
    """Each translated chunk's (delta, finish_reason), the usage-only chunks left out."""
    return [
        (c["choices"][0]["delta"], c["choices"][0]["finish_reason"]) for c in chunks if c["choices"]
    ]


# --- OpenAI family -------------------------------------------------------------------------


def openai_chunk(delta: dict[str, Any], finish_reason: str | None = None) -> SSEEvent:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
    chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return SSEEvent(orjson.dumps({**chunk, "choices": [choice]}).decode())


def openai_usage(prompt: int, completion: int) -> SSEEvent:
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return SSEEvent(orjson.dumps({**chunk, "choices": [], "usage": usage}).decode())


def openai_end(prompt: int, completion: int) -> list[SSEEvent]:
    """A stream's closing events: the finish reason, the usage chunk, [DONE]."""
    return [openai_chunk({}, "stop"), openai_usage(prompt, completion), SSEEvent("[DONE]")]


def tool_call_delta(*, name: str | None = None, arguments: str = "") -> dict[str, Any]:
    function: dict[str, Any] = {"arguments": arguments}
    call: dict[str, Any] = {"index": 0, "function": function}
    if name is not None:
        call.update(id="call_1", type="function")
        function["name"] = name
    return {"tool_calls": [call]}


# --- Anthropic -----------------------------------------------------------------------------


def anthropic(kind: str, **payload: Any) -> SSEEvent:
    return SSEEvent(orjson.dumps({"type": kind, **payload}).decode(), kind)


def anthropic_start(input_tokens: int) -> SSEEvent:
    """message_start: the prompt's count, and output_tokens a placeholder 1, as Anthropic
    sends it."""
    usage = {"input_tokens": input_tokens, "output_tokens": 1}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "content": []}
    return anthropic("message_start", message={**message, "usage": usage})


def anthropic_block(index: int, block: dict[str, Any], deltas: list[dict]) -> list[SSEEvent]:
    events = [anthropic("content_block_start", index=index, content_block=block)]
    events += [anthropic("content_block_delta", index=index, delta=d) for d in deltas]
    return [*events, anthropic("content_block_stop", index=index)]


def anthropic_end(output_tokens: int) -> list[SSEEvent]:
    """message_delta with the final (cumulative) usage, and message_stop."""
    delta = {"stop_reason": "end_turn", "stop_sequence": None}
    usage = {"output_tokens": output_tokens}
    return [anthropic("message_delta", delta=delta, usage=usage), anthropic("message_stop")]


# --- Gemini --------------------------------------------------------------------------------


def gemini(
    parts: list[dict[str, Any]], *, finish: str | None = None, usage: dict | None = None
) -> SSEEvent:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    payload: dict[str, Any] = {"candidates": [candidate], "modelVersion": "gemini-2.5-flash"}
    if usage:
        payload["usageMetadata"] = usage
    return SSEEvent(orjson.dumps(payload).decode())


def gemini_end(prompt: int, answer: int, thoughts: int) -> SSEEvent:
    """The last event: finishReason and the whole answer's usageMetadata."""
    usage = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": answer,
        "thoughtsTokenCount": thoughts,
        "totalTokenCount": prompt + answer + thoughts,
    }
    return gemini([{"text": ""}], finish="STOP", usage=usage)
