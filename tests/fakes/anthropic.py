"""A fake Anthropic Messages API (POST /v1/messages, version 2023-06-01), in Anthropic's wire
format.

Like Anthropic: the key goes in `x-api-key` or, as the official SDK (>= 1.0) sends it, in
`Authorization: Bearer`; a missing or wrong key is 401 authentication_error, a missing
`anthropic-version` is 400 invalid_request_error. Unknown fields, tool_use/tool_result
blocks that do not pair up, temperature or top_p sent to a model released after Claude
Opus 4.6, and temperature with top_p together are 400 too. Errors are
{"type": "error", "error": {...}, "request_id": ...}.

Answers are deterministic: "Echo: <last user text>"; a tool_use of the first tool with
{"city": "Paris"} when tools are offered and the text mentions the weather; "The tool said:
<content>" after a tool_result. max_tokens truncates by words, stop_sequences cut the text.
Tokens are whitespace-separated words. Streams are the real named-event sequence, one text
delta per word. With `thinking` enabled (or adaptive) the answer opens with a thinking block
(a thinking_delta and a signature_delta when streamed). `bills` may set the cache figures
too: {"cache_read": n, "cache_creation": m}.

POST /v1/messages/count_tokens answers {"input_tokens": n}, n counted as the message's
prompt is (it takes no max_tokens, stream, metadata or sampling fields).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

from tests.fakes.server import FakeProvider, RecordedRequest, Send

# 2023-06-01 is what the gateway sends; 2026-10-21 is what the anthropic SDK 2.x sends.
VERSIONS = {"2023-01-01", "2023-06-01", "2026-10-21"}
REQUEST_FIELDS = {
    "model",
    "messages",
    "max_tokens",
    "system",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "stream",
    "tools",
    "tool_choice",
    "metadata",
    "thinking",
    "service_tier",
    "cache_control",
    "output_config",
}
# What count_tokens takes: the prompt, not the sampling or the output's settings.
COUNT_FIELDS = {"model", "messages", "system", "tools", "tool_choice", "thinking"} | {
    "cache_control",
    "output_config",
}
BLOCK_TYPES = {"text", "image", "document", "tool_use", "tool_result", "thinking"} | {
    "redacted_thinking"
}
THINKING = "Let me think about that."
SIGNATURE = "EqQBCkYIBxgCKkBfakeSignature"
REQUEST_ID = "req_011CFakeAnthropicRequest"
NO_SAMPLING = re.compile(r"claude-(?:opus-4-[7-9]|(?:opus|sonnet|haiku)-[5-9]|fable|mythos)")


def anthropic_error(kind: str, message: str) -> dict:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": REQUEST_ID}


def words(text: str) -> list[str]:
    return text.split()


def blocks_of(content: Any) -> list[dict]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content or [])


def result_text(block: dict) -> str:
    """A tool_result's content: a string or a list of text blocks."""
    content = block.get("content")
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))


def block_words(block: dict) -> int:
    kind = block.get("type")
    if kind == "text":
        return len(words(block.get("text", "")))
    if kind == "tool_use":
        return len(words(orjson.dumps(block.get("input") or {}).decode()))
    if kind == "tool_result":
        return len(words(result_text(block)))
    return 0


def digest(*parts: Any) -> str:
    return hashlib.sha256(orjson.dumps(parts)).hexdigest()[:22]


def event(name: str, payload: dict) -> bytes:
    return f"event: {name}\ndata: ".encode() + orjson.dumps(payload) + b"\n\n"


class FakeAnthropic(FakeProvider):
    def __init__(self, api_key: str | None = None) -> None:
        """With api_key, only that key is accepted; without, any non-empty key."""
        super().__init__()
        self.api_key = api_key

    async def handle(self, request: RecordedRequest, send: Send) -> None:
        if request.method != "POST" or request.path not in (
            "/v1/messages",
            "/v1/messages/count_tokens",
        ):
            error = anthropic_error("not_found_error", "Not Found")
            await self.respond_json(send, error, status=404)
            return
        authorization = request.headers.get("authorization", "")
        key = request.headers.get("x-api-key") or authorization.removeprefix("Bearer ")
        if not key:
            error = anthropic_error("authentication_error", "x-api-key header is required")
            await self.respond_json(send, error, status=401)
            return
        if self.api_key is not None and key != self.api_key:
            error = anthropic_error("authentication_error", "invalid x-api-key")
            await self.respond_json(send, error, status=401)
            return
        version = request.headers.get("anthropic-version")
        if version not in VERSIONS:
            message = (
                f"anthropic-version: {version!r} is not a valid version"
                if version
                else "anthropic-version: header is required"
            )
            await self.respond_json(send, anthropic_error("invalid_request_error", message), 400)
            return
        try:
            body = request.json()
        except orjson.JSONDecodeError:
            error = anthropic_error("invalid_request_error", "The request body is not valid JSON.")
            await self.respond_json(send, error, status=400)
            return
        if request.path.endswith("/count_tokens"):
            problem = (
                "max_tokens: Extra inputs are not permitted"
                if isinstance(body, dict) and "max_tokens" in body
                else self.invalid({**body, "max_tokens": 1}, COUNT_FIELDS | {"max_tokens"})
            )
            if problem:
                error = anthropic_error("invalid_request_error", problem)
                await self.respond_json(send, error, 400)
                return
            await self.respond_json(send, {"input_tokens": self.prompt_words(body)})
            return
        if problem := self.invalid(body):
            await self.respond_json(send, anthropic_error("invalid_request_error", problem), 400)
            return
        message = self.message(body)
        if body.get("stream"):
            await self.stream(send, self.sse_events(message), request)
        else:
            await self.respond_json(send, message)

    def invalid(self, body: Any, fields: set[str] = REQUEST_FIELDS) -> str | None:
        """What Anthropic would reject with 400 invalid_request_error, or None."""
        if not isinstance(body, dict):
            return "Input should be a valid dictionary"
        for name in sorted(set(body) - fields):
            return f"{name}: Extra inputs are not permitted"
        for name in ("model", "max_tokens", "messages"):
            if name not in body:
                return f"{name}: Field required"
        if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
            return "max_tokens: Input should be greater than or equal to 1"
        if not 0 <= body.get("temperature", 0) <= 1:
            return "temperature: Input should be less than or equal to 1"
        sampling = [name for name in ("temperature", "top_p", "top_k") if name in body]
        if sampling and NO_SAMPLING.search(str(body["model"])):
            return f"`{sampling[0]}` is deprecated for this model."
        if "temperature" in body and "top_p" in body:
            return (
                "`temperature` and `top_p` cannot both be specified for this model. "
                "Please use only one."
            )
        system = body.get("system", "")
        if not isinstance(system, str) and any(b.get("type") != "text" for b in system):
            return "system: Input should be a valid string or a list of text blocks"
        if not body["messages"]:
            return "messages: at least one message is required"
        pending: set[str] = set()  # tool_use ids the next user turn must answer
        for number, message in enumerate(body["messages"]):
            if message.get("role") not in ("user", "assistant"):
                return f"messages.{number}.role: Input should be 'user' or 'assistant'"
            blocks = blocks_of(message.get("content"))
            if not blocks:
                return f"messages.{number}: all messages must have non-empty content"
            answered = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
            for block in blocks:
                if block.get("type") not in BLOCK_TYPES:
                    return f"messages.{number}.content: unknown block type {block.get('type')!r}"
                if block.get("type") == "text" and not block.get("text"):
                    return "messages: text content blocks must be non-empty"
            if unexpected := sorted(answered - pending):
                return (
                    f"messages.{number}.content: unexpected `tool_use_id` found in `tool_result` "
                    f"blocks: {unexpected[0]}. Each `tool_result` block must have a "
                    "corresponding `tool_use` block in the previous message."
                )
            if missing := sorted(pending - answered):
                return (
                    f"messages.{number}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {missing[0]}"
                )
            pending = {b["id"] for b in blocks if b.get("type") == "tool_use"}
            if pending and message["role"] != "assistant":
                return f"messages.{number}: only assistant messages may contain tool_use blocks"
        for number, tool in enumerate(body.get("tools") or []):
            if not tool.get("name") or (tool.get("input_schema") or {}).get("type") != "object":
                return f"tools.{number}: name and an object input_schema are required"
        choice = body.get("tool_choice")
        if choice is not None and choice.get("type") not in ("auto", "any", "tool", "none"):
            return "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"
        return None

    # --- answers ---
    def answer(self, body: dict) -> tuple[list[dict], str, str | None]:
        """The content blocks, stop_reason and stop_sequence."""
        last = blocks_of(body["messages"][-1].get("content"))
        results = [block for block in last if block.get("type") == "tool_result"]
        if results:
            said = {"type": "text", "text": f"The tool said: {result_text(results[0])}"}
            return [said], "end_turn", None
        user_turns = [m for m in body["messages"] if m["role"] == "user"]
        text = " ".join(
            block["text"]
            for block in blocks_of(user_turns[-1].get("content") if user_turns else "")
            if block.get("type") == "text"
        )
        tools = body.get("tools") or []
        no_tools = (body.get("tool_choice") or {}).get("type") == "none"
        if tools and not no_tools and "weather" in text.lower():
            call = {
                "type": "tool_use",
                "id": "toolu_01" + digest(body["messages"]),
                "name": tools[0]["name"],
                "input": {"city": "Paris"},
            }
            return [call], "tool_use", None
        out = words(f"Echo: {text}")
        stop_reason, stop_sequence = "end_turn", None
        if len(out) > body["max_tokens"]:
            out, stop_reason = out[: body["max_tokens"]], "max_tokens"
        answer = " ".join(out)
        for sequence in body.get("stop_sequences") or []:
            if sequence in answer:  # the earliest sequence cuts the shortest answer
                answer = answer.split(sequence)[0]
                stop_reason, stop_sequence = "stop_sequence", sequence
        return [{"type": "text", "text": answer}], stop_reason, stop_sequence

    def prompt_words(self, body: dict) -> int:
        prompt = sum(
            block_words(block) for m in body["messages"] for block in blocks_of(m.get("content"))
        )
        return prompt + sum(block_words(block) for block in blocks_of(body.get("system") or []))

    def message(self, body: dict) -> dict:
        content, stop_reason, stop_sequence = self.answer(body)
        if (body.get("thinking") or {}).get("type") in ("enabled", "adaptive"):
            thought = {"type": "thinking", "thinking": THINKING, "signature": SIGNATURE}
            content = [thought, *content]
        prompt = self.prompt_words(body)
        return {
            "model": body["model"],
            "id": "msg_01" + digest(body),
            "type": "message",
            "role": "assistant",
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": {
                "input_tokens": self.billed("prompt", prompt, body["max_tokens"]),
                "cache_creation_input_tokens": int(self.bills.get("cache_creation", 0)),
                "cache_read_input_tokens": int(self.bills.get("cache_read", 0)),
                "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                "output_tokens": self.billed(
                    "completion", sum(block_words(block) for block in content), body["max_tokens"]
                ),
                "service_tier": "standard",
            },
        }

    def sse_events(self, message: dict) -> list[bytes]:
        """The message as Anthropic streams it: message_start (empty content, output_tokens 1),
        then per block content_block_start, deltas and content_block_stop (a ping after the
        first start), then message_delta with the stop reason and final output_tokens, and
        message_stop.

        A scripted stream (`script`) is a list of (content block as it starts, its deltas),
        e.g. ({"type": "thinking", "thinking": ""}, [{"type": "thinking_delta", ...}, ...]);
        its output_tokens count a token a delta."""
        start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
        start["usage"] = {**message["usage"], "output_tokens": 1}
        events = [event("message_start", {"type": "message_start", "message": start})]
        if self.script is not None:
            output_tokens = 0
            for index, piece in enumerate(self.script):
                if isinstance(piece, bytes):
                    events.append(piece)
                    continue
                opening, deltas = piece
                events += block_events(index, opening, deltas)
                output_tokens += len(deltas)
        else:
            output_tokens = message["usage"]["output_tokens"]
            for index, block in enumerate(message["content"]):
                if block["type"] == "thinking":
                    opening = {"type": "thinking", "thinking": "", "signature": ""}
                    deltas = [
                        {"type": "thinking_delta", "thinking": block["thinking"]},
                        {"type": "signature_delta", "signature": block["signature"]},
                    ]
                elif block["type"] == "text":
                    opening = {"type": "text", "text": ""}
                    pieces = re.findall(r"\s*\S+", block["text"])
                    if tail := block["text"][len("".join(pieces)) :]:
                        pieces = [*pieces[:-1], (pieces[-1] if pieces else "") + tail]
                    deltas = [{"type": "text_delta", "text": piece} for piece in pieces]
                else:
                    opening = {**block, "input": {}}
                    encoded = orjson.dumps(block["input"]).decode()
                    halves = ["", encoded[: len(encoded) // 2], encoded[len(encoded) // 2 :]]
                    deltas = [{"type": "input_json_delta", "partial_json": h} for h in halves]
                events += block_events(index, opening, deltas)
        if self.hold:
            return events
        delta = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
        usage = {"output_tokens": output_tokens}
        events.append(
            event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
        )
        events.append(event("message_stop", {"type": "message_stop"}))
        return events


def block_events(index: int, opening: dict, deltas: list[dict]) -> list[bytes]:
    """One content block as streamed: its start (a ping after the first), deltas and stop."""
    events = [
        event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": opening},
        )
    ]
    if index == 0:
        events.append(event("ping", {"type": "ping"}))
    for delta in deltas:
        payload = {"type": "content_block_delta", "index": index, "delta": delta}
        events.append(event("content_block_delta", payload))
    events.append(event("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events
