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
delta per word.

Thinking (`thinking: {"type": "enabled", "budget_tokens": ...}` or adaptive) opens the answer
with a thinking block "Thinking about: <last user text>" whose signature the fake checks when
it comes back; thinking with a temperature other than 1, a budget below 1024 or not below
max_tokens, or a tool_use turn replayed without its thinking block are 400s, as Anthropic
answers them. Prompt caching: blocks (tools, system, messages, in that order) up to a
`cache_control` breakpoint are written to the fake's cache (cache_creation_input_tokens, by
ttl) and read from it (cache_read_input_tokens) when a later request repeats that prefix.
`output_config.format` (structured outputs) makes the answer a JSON instance of the schema.

POST /v1/messages/count_tokens answers {"input_tokens": n}, n counted as the message's
prompt is (it takes no max_tokens, stream, metadata or sampling fields).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

from tests.fakes.server import FakeProvider, RecordedRequest, Send
from tests.fakes.tokens import words

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
    "output_config",
}
BLOCK_TYPES = {
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
}
CACHE_TTLS = {"5m", "1h"}
# What count_tokens takes: the prompt, not the sampling or the output's settings.
COUNT_FIELDS = {"model", "messages", "system", "tools", "tool_choice", "thinking"} | {
    "cache_control",
    "output_config",
}
REQUEST_ID = "req_011CFakeAnthropicRequest"
NO_SAMPLING = re.compile(r"claude-(?:opus-4-[7-9]|(?:opus|sonnet|haiku)-[5-9]|fable|mythos)")


def anthropic_error(kind: str, message: str) -> dict:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": REQUEST_ID}


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


def signature(thinking: str) -> str:
    """The fake's signature of a thinking text (Anthropic's is opaque; this one is checked)."""
    return "sig_" + digest("thinking", thinking)


def thinking_on(body: dict) -> bool:
    return (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")


def instance(schema: Any) -> Any:
    """A value that matches a JSON schema (the subset structured outputs take)."""
    if not isinstance(schema, dict):
        return None
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: instance(sub) for name, sub in properties.items()}
    if kind == "array":
        return [instance(schema.get("items") or {})]
    return {"string": "Echo", "integer": 1, "number": 1.5, "boolean": True}.get(str(kind))


def cached_blocks(body: dict) -> list[tuple[int, dict | None]]:
    """The prompt in caching order (tools, system, messages) as (words, cache_control)."""
    blocks: list[tuple[int, dict | None]] = []
    for tool in body.get("tools") or []:
        blocks.append((len(words(orjson.dumps(tool).decode())), tool.get("cache_control")))
    system = body.get("system")
    for block in blocks_of(system) if system else []:
        blocks.append((block_words(block), block.get("cache_control")))
    for message in body["messages"]:
        for block in blocks_of(message.get("content")):
            blocks.append((block_words(block), block.get("cache_control")))
    return blocks


def event(name: str, payload: dict) -> bytes:
    return f"event: {name}\ndata: ".encode() + orjson.dumps(payload) + b"\n\n"


class FakeAnthropic(FakeProvider):
    def __init__(self, api_key: str | None = None) -> None:
        """With api_key, only that key is accepted; without, any non-empty key."""
        super().__init__()
        self.api_key = api_key
        self.cache: set[str] = set()  # digests of the prompt prefixes written to the cache

    def reset(self) -> None:
        super().reset()
        self.cache = set()

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
        message = self.message(body)  # type: ignore[assignment]
        if body.get("stream"):
            await self.stream(send, self.sse_events(message), request)  # type: ignore[arg-type]
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
        if problem := self.invalid_thinking(body):
            return problem
        if problem := self.invalid_cache_control(body):
            return problem
        output_format = (body.get("output_config") or {}).get("format")
        if output_format is not None and (
            output_format.get("type") != "json_schema"
            or not isinstance(output_format.get("schema"), dict)
        ):
            return "output_config.format: a json_schema format with a schema object is required"
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
                if block.get("type") == "thinking" and block.get("signature") != signature(
                    block.get("thinking", "")
                ):
                    return f"messages.{number}.content: Invalid `signature` in `thinking` block"
            calls = any(block.get("type") == "tool_use" for block in blocks)
            if (
                calls
                and thinking_on(body)
                and blocks[0].get("type")
                not in (
                    "thinking",
                    "redacted_thinking",
                )
            ):
                return (
                    f"messages.{number}.content.0.type: Expected `thinking` or "
                    "`redacted_thinking`, but found `tool_use`. When `thinking` is enabled, a "
                    "final `assistant` message must start with a thinking block."
                )
            if unexpected := sorted(answered - pending):  # type: ignore[type-var]
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

    def invalid_thinking(self, body: dict) -> str | None:
        thinking = body.get("thinking")
        if thinking is None:
            return None
        kind = thinking.get("type")
        if kind not in ("enabled", "disabled", "adaptive"):
            return "thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'"
        if kind == "enabled":
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or budget < 1024:
                return (
                    "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
                )
            if budget >= body["max_tokens"]:
                return "`max_tokens` must be greater than `thinking.budget_tokens`."
        if kind != "disabled":
            if body.get("temperature", 1) != 1:
                return (
                    "`temperature` may only be set to 1 when thinking is enabled. Please consult "
                    "our documentation at https://docs.claude.com/en/docs/build-with-claude/"
                    "extended-thinking#important-considerations-when-using-extended-thinking"
                )
            if "top_k" in body:
                return "`top_k` is not supported when thinking is enabled."
        return None

    def invalid_cache_control(self, body: dict) -> str | None:
        marks = [mark for _, mark in cached_blocks(body) if mark is not None]
        for mark in marks:
            if not isinstance(mark, dict) or mark.get("type") != "ephemeral":
                return "cache_control.type: Input should be 'ephemeral'"
            if set(mark) - {"type", "ttl"} or mark.get("ttl", "5m") not in CACHE_TTLS:
                return "cache_control.ttl: Input should be '5m' or '1h'"
        if len(marks) > 4:
            return f"A maximum of 4 blocks with cache_control may be provided. Found {len(marks)}."
        return None

    def cache_counts(self, body: dict) -> tuple[int, int, int, int]:
        """(uncached prompt words, cache reads, 5m cache writes, 1h cache writes): the longest
        prefix ending at a breakpoint that an earlier request cached is read, and the rest up
        to the last breakpoint written (each stretch at the ttl of the breakpoint ending it)."""
        blocks = cached_blocks(body)
        total = sum(count for count, _ in blocks)
        ends = [i for i, (_, mark) in enumerate(blocks) if mark is not None]
        if not ends:
            return total, 0, 0, 0
        prefix = [digest(blocks[: end + 1], body["model"]) for end in ends]
        read_to = -1
        for end, key in zip(ends, prefix, strict=True):
            if key in self.cache:
                read_to = end
        read = sum(count for count, _ in blocks[: read_to + 1])
        writes = {"5m": 0, "1h": 0}
        start = read_to + 1
        for end in ends:
            if end < start:
                continue
            ttl = blocks[end][1].get("ttl", "5m")
            writes[ttl] += sum(count for count, _ in blocks[start : end + 1])
            start = end + 1
        self.cache.update(prefix)
        written = writes["5m"] + writes["1h"]
        return total - read - written, read, writes["5m"], writes["1h"]

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
        output_format = (body.get("output_config") or {}).get("format")
        if output_format:
            said = orjson.dumps(instance(output_format["schema"])).decode()  # type: ignore[assignment]
            return [{"type": "text", "text": said}], "end_turn", None
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
        thinking_tokens = 0
        if thinking_on(body):
            user_turns = [m for m in body["messages"] if m["role"] == "user"]
            last = blocks_of(user_turns[-1].get("content")) if user_turns else []
            said = " ".join(block.get("text", "") for block in last if block.get("type") == "text")
            thought = f"Thinking about: {said}"
            thinking_tokens = len(words(thought))
            block = {"type": "thinking", "thinking": thought, "signature": signature(thought)}
            content = [block, *content]
        prompt = self.prompt_words(body)
        uncached, read, write_5m, write_1h = self.cache_counts(body)
        if read or write_5m or write_1h:
            prompt = uncached
        # `bills` may set the cache figures outright: {"cache_read": n, "cache_creation": m}.
        read = int(self.bills.get("cache_read", read))
        write_5m = int(self.bills.get("cache_creation", write_5m))
        answer = sum(block_words(block) for block in content) + thinking_tokens
        usage = {
            "input_tokens": self.billed("prompt", prompt, body["max_tokens"]),
            "cache_creation_input_tokens": write_5m + write_1h,
            "cache_read_input_tokens": read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": write_5m,
                "ephemeral_1h_input_tokens": write_1h,
            },
            "output_tokens": self.billed("completion", answer, body["max_tokens"]),
            "service_tier": "standard",
        }
        if thinking_tokens:
            usage["output_tokens_details"] = {"thinking_tokens": thinking_tokens}
        return {
            "model": body["model"],
            "id": "msg_01" + digest(body),
            "type": "message",
            "role": "assistant",
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": usage,
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
                    opening: dict = {"type": "thinking", "thinking": "", "signature": ""}  # type: ignore[no-redef]
                    deltas = [
                        {"type": "thinking_delta", "thinking": piece}
                        for piece in re.findall(r"\s*\S+", block["thinking"])
                    ]
                    deltas.append({"type": "signature_delta", "signature": block["signature"]})
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
