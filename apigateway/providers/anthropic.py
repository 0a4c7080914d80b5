"""Anthropic Messages API (`POST /v1/messages`, version 2023-06-01), in OpenAI's shapes.

System and developer messages become the top-level `system` string (text blocks when one
has a `cache_control`); tool calls become `tool_use` blocks and tool messages
`tool_result` blocks in a user turn; consecutive turns of one role are merged, as Anthropic
wants user and assistant to alternate. `cache_control` on a content part, a message (its
last block) or a tool goes on the block Anthropic caches to.

`response_format` json_schema is Anthropic's structured output (`output_config.format`)
for models the catalog marks `structured_output`; for the others, and for json_object
(Anthropic has no JSON mode), it is an instruction in the system prompt.

Reasoning (models the catalog marks `reasoning`): an effort, or OpenRouter's reasoning
max_tokens, becomes `thinking: {"type": "enabled", budget_tokens}` (the effort's share of
max_tokens, at least 1024 and below max_tokens, else a 400), or, for the models that only
think adaptively (Claude 4.6 and later), `thinking: {"type": "adaptive"}` with
`output_config.effort`. Thinking takes no temperature or top_p, so none is sent. Thinking
blocks come back as `reasoning`/`reasoning_content` text and, with their signatures, in
`reasoning_details` (OpenRouter's shape), which rebuild them when sent back. Reasoning
tokens are Anthropic's `output_tokens_details.thinking_tokens` when it sends them, else 0
(part of output_tokens either way, which is what is billed).

Sampling: Anthropic removed temperature/top_p/top_k from the models released after Claude
Opus 4.6 (they answer 400 "`temperature` is deprecated for this model"), so those models get
neither; the others take temperature or top_p but not both, so temperature wins.

Streams are named events (message_start, content_block_start/delta/stop, message_delta,
message_stop, ping, error); usage counts are cumulative, the latest wins.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from apigateway import ids, media_urls
from apigateway.errors import API_ERROR, GatewayError, bad_request, upstream_error
from apigateway.providers import reasoning
from apigateway.providers.base import (
    JSON,
    Deployment,
    Provider,
    StreamTranslator,
    UpstreamRequest,
    Usage,
    file_data,
    load_object,
    now,
    object_field,
    output_cap,
    text_field,
    token_count,
    tool_calls_of,
    upstream_invalid,
)
from apigateway.redaction import redact
from apigateway.request_fields import refuse_untranslated
from apigateway.sse import SSEEvent

NAME = "anthropic"
VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# The field of a streamed content block's start that holds output: a tool's name, text or
# thinking so far, redacted thinking's encrypted data (billed as output, never relayed).
BLOCK_OUTPUT = {
    "text": "text",
    "thinking": "thinking",
    "redacted_thinking": "data",
    "tool_use": "name",
    "server_tool_use": "name",
}
TOOL_CHOICES = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}
NO_SAMPLING = re.compile(r"claude-(?:opus-4-[7-9]|(?:opus|sonnet|haiku)-[5-9]|fable|mythos)")
# Models that think adaptively (thinking.type "adaptive" and output_config.effort); the
# newest of them take no budget_tokens at all.
ADAPTIVE = re.compile(
    r"claude-(?:(?:opus|sonnet)-4-[6-9](?!\d)|(?:opus|sonnet|haiku)-[5-9]|fable|mythos)"
)
MIN_THINKING_BUDGET = 1024
ADAPTIVE_EFFORTS = {
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "xhigh",
}
USAGE_FIELDS = {
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
}
# Counts inside usage objects: cache writes by ttl, thinking within the output.
NESTED_USAGE = {
    "cache_creation": "ephemeral_1h_input_tokens",
    "output_tokens_details": "thinking_tokens",
}
FORMAT = reasoning.ANTHROPIC_FORMAT
JSON_ONLY = (
    "Respond with a single valid JSON object and nothing else: no prose before or after it "
    "and no Markdown code fences."
)


class AnthropicProvider(Provider):
    name = NAME

    # --- chat ---
    def build_chat_request(self, body: JSON, deployment: Deployment) -> UpstreamRequest:
        if (body.get("n") or 1) > 1:
            raise bad_request("anthropic models return a single choice: n must be 1", param="n")
        refuse_untranslated(body, NAME)
        if not deployment.options.remote_media:
            media_urls.refuse_remote(body.get("messages") or [])
        asked = reasoning.accepted(deployment.reasoning, body, body.get("model") or "")
        system, messages = convert_messages(body.get("messages") or [])
        output_config: JSON = {}
        schema = json_schema_of(body.get("response_format"))
        if deployment.structured_output and schema is not None:
            output_config["format"] = {"type": "json_schema", "schema": schema}
        elif instruction := json_instruction(body.get("response_format")):
            system.append({"type": "text", "text": instruction})
        cap = output_cap(body, deployment)
        upstream: JSON = {
            "model": deployment.upstream_model,
            "max_tokens": cap or deployment.max_output_tokens or DEFAULT_MAX_TOKENS,
            "messages": messages,
        }
        if system:
            upstream["system"] = system_field(system)
        if asked is not None and asked.on:
            upstream["thinking"], effort = thinking(
                asked, upstream["max_tokens"], deployment.upstream_model
            )
            if effort:
                output_config["effort"] = effort
        else:
            upstream.update(sampling(body, deployment.upstream_model))
        if output_config:
            upstream["output_config"] = output_config
        if stop := body.get("stop"):
            upstream["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        if tools := body.get("tools"):
            upstream["tools"] = convert_tools(tools)
            choice = tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
            if choice is not None:
                upstream["tool_choice"] = choice
        if body.get("user"):
            upstream["metadata"] = {"user_id": body["user"]}
        if body.get("stream"):
            upstream["stream"] = True
        headers = {
            "x-api-key": deployment.api_key,
            "anthropic-version": VERSION,
            "content-type": "application/json",
        }
        headers.update(deployment.extra_headers)
        url = f"{deployment.base_url}/v1/messages"
        return UpstreamRequest("POST", url, headers, orjson.dumps(upstream))

    def parse_chat_response(
        self, data: bytes, *, model: str, deployment: Deployment
    ) -> tuple[JSON, Usage]:
        payload = load(data)
        blocks = payload.get("content")
        if not isinstance(blocks, list):
            raise upstream_invalid(NAME)
        texts: list[str] = []
        calls: list[JSON] = []
        thoughts: list[str] = []
        details: list[JSON] = []
        for block in blocks:
            if not isinstance(block, dict):
                raise upstream_invalid(NAME)
            kind = block.get("type")
            if kind == "text":
                texts.append(str(block.get("text") or ""))
            elif kind == "tool_use":
                calls.append(tool_call(block, block.get("input")))
            elif kind in ("thinking", "redacted_thinking"):
                details.append(reasoning_detail(block, len(details)))
                if kind == "thinking":
                    thoughts.append(str(block.get("thinking") or ""))
        message: JSON = {
            "role": "assistant",
            "content": "".join(texts) if texts or not calls else None,
            "refusal": None,
        }
        if calls:
            message["tool_calls"] = calls
        if thoughts:
            reasoning.with_text(message, "".join(thoughts))
        if details:
            message["reasoning_details"] = details
        usage = read_usage({}, payload.get("usage"))
        completion = {
            "id": ids.completion_id(),
            "object": "chat.completion",
            "created": now(),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish_reason(payload.get("stop_reason")),
                }
            ],
            "usage": usage.as_openai(),
        }
        return completion, usage

    def stream_translator(
        self, *, model: str, include_usage: bool, deployment: Deployment
    ) -> StreamTranslator:
        return AnthropicStreamTranslator(
            model=model, include_usage=include_usage, secret=deployment.api_key
        )

    # --- errors ---
    def map_error(self, status: int, data: bytes, secret: str = "") -> GatewayError:
        if status == 529:  # Anthropic's overloaded_error: a 429 by another name
            return super().map_error(429, data, secret)
        return super().map_error(status, data, secret)


# --- requests ----------------------------------------------------------------------------


def convert_messages(messages: list[JSON]) -> tuple[list[JSON], list[JSON]]:
    """OpenAI messages → (system text blocks, alternating user/assistant messages of
    blocks)."""
    system: list[JSON] = []
    out: list[JSON] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(marked(system_blocks(message.get("content")), message))
            continue
        if role == "user":
            blocks = user_blocks(message.get("content"))
        elif role == "assistant":
            blocks = assistant_blocks(message)
        elif role == "tool":
            role, blocks = "user", [tool_result(message)]
        else:
            raise bad_request(f"unsupported message role {role!r}", param="messages")
        blocks = marked(blocks, message)
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    if not out:
        raise bad_request("messages must include a user or assistant turn", param="messages")
    return system, out


def texts_of(content: Any) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    texts = [p.get("text") or p.get("refusal") or "" for p in content if isinstance(p, dict)]
    return [text_field(text, "content[].text") for text in texts]


def text_blocks(content: Any) -> list[JSON]:
    """Anthropic rejects empty text blocks, so empty texts are left out."""
    return [{"type": "text", "text": text} for text in texts_of(content) if text]


def system_blocks(content: Any) -> list[JSON]:
    """A system message as one text block, or, when its parts mark cache breakpoints, a
    block a part."""
    if isinstance(content, list) and any(
        isinstance(part, dict) and "cache_control" in part for part in content
    ):
        return [
            with_cache_control(block, part)
            for part in content
            for block in text_blocks([part] if isinstance(part, dict) else None)
        ]
    text = "".join(texts_of(content))
    return [{"type": "text", "text": text}] if text else []


def system_field(blocks: list[JSON]) -> str | list[JSON]:
    """The system prompt as one string, or as its blocks when one is a cache breakpoint."""
    if any("cache_control" in block for block in blocks):
        return blocks
    return "\n\n".join(block["text"] for block in blocks)


def with_cache_control(block: JSON, source: Any) -> JSON:
    """The block, with the cache_control its source (a part, a message, a tool) has."""
    if isinstance(source, dict) and (mark := source.get("cache_control")) is not None:
        block["cache_control"] = mark
    return block


def marked(blocks: list[JSON], message: JSON) -> list[JSON]:
    """A message's cache_control goes on its last block (the end of the cached prefix)."""
    if blocks and "cache_control" in message:
        with_cache_control(blocks[-1], message)
    return blocks


def user_blocks(content: Any) -> list[JSON]:
    if content is None or isinstance(content, str):
        return text_blocks(content)
    blocks: list[JSON] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts = text_blocks(text_field(part.get("text"), "content[].text"))
            blocks.extend(with_cache_control(block, part) for block in texts)
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url", "") if isinstance(image, dict) else image
            blocks.append(with_cache_control(media_block("image", str(url or "")), part))
        elif kind == "file" and file_data(part):
            # e.g. a PDF
            blocks.append(with_cache_control(media_block("document", file_data(part)), part))
        else:
            raise bad_request(f"anthropic does not take {kind!r} content parts", param="messages")
    return blocks


def media_block(kind: str, url: str) -> JSON:
    """An image (or document) from a base64 data URL or a public https URL."""
    if url.startswith("data:"):
        header, _, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if encoding != "base64" or not data:
            raise bad_request("data URLs must be base64-encoded", param="messages")
        source = {"type": "base64", "media_type": media_type or "image/jpeg", "data": data}
        return {"type": kind, "source": source}
    media_urls.check(url)
    return {"type": kind, "source": {"type": "url", "url": url}}


def assistant_blocks(message: JSON) -> list[JSON]:
    blocks = thinking_blocks(message.get("reasoning_details"))
    content = message.get("content")
    if isinstance(content, list):
        for part in content:
            texts = text_blocks([part] if isinstance(part, dict) else None)
            blocks.extend(with_cache_control(block, part) for block in texts)
    else:
        blocks.extend(text_blocks(content))
    for call_id, name, arguments in tool_calls_of(message):
        blocks.append({"type": "tool_use", "id": call_id, "name": name, "input": arguments})
    return blocks


def thinking_blocks(details: Any) -> list[JSON]:
    """reasoning_details (as this adapter returns them) → the thinking blocks they were,
    which Anthropic wants back before the tool_use blocks of a thinking turn."""
    if details is None:
        return []
    if not isinstance(details, list):
        raise bad_request("'reasoning_details' must be an array.", param="messages")
    blocks: list[JSON] = []
    for detail in details:
        detail = object_field(detail, "reasoning_details[]")
        kind = detail.get("type")
        if kind == "reasoning.text" and detail.get("signature"):
            text = text_field(detail.get("text"), "reasoning_details[].text")
            signature = text_field(detail.get("signature"), "reasoning_details[].signature")
            blocks.append({"type": "thinking", "thinking": text, "signature": signature})
        elif kind == "reasoning.encrypted" and detail.get("data"):
            data = text_field(detail.get("data"), "reasoning_details[].data")
            blocks.append({"type": "redacted_thinking", "data": data})
        # (unsigned text or a summary, from another provider: Anthropic cannot check it)
    return blocks


def tool_result(message: JSON) -> JSON:
    if not message.get("tool_call_id"):
        raise bad_request("a tool message needs its tool_call_id", param="messages")
    block: JSON = {"type": "tool_result", "tool_use_id": message["tool_call_id"]}
    content = message.get("content")
    if text := "".join(texts_of(content)):
        block["content"] = text
    if isinstance(content, list):
        for part in content:
            with_cache_control(block, part)
    return block


def thinking(asked: reasoning.Reasoning, max_tokens: int, model: str) -> tuple[JSON, str | None]:
    """Anthropic's `thinking` for what the caller asked, and the output_config effort that
    goes with it (adaptive models), or a 400 when no budget fits below max_tokens."""
    if ADAPTIVE.search(model):
        return {"type": "adaptive"}, ADAPTIVE_EFFORTS.get(asked.effort or "")
    budget = max(asked.share_of(max_tokens), MIN_THINKING_BUDGET)
    if budget >= max_tokens:
        raise bad_request(
            f"Thinking takes a budget of {budget} tokens (at least {MIN_THINKING_BUDGET}), "
            "which must be below max_tokens: raise max_tokens (or max_completion_tokens) "
            "or lower reasoning.max_tokens.",
            param="reasoning" if asked.max_tokens else "max_tokens",
        )
    return {"type": "enabled", "budget_tokens": budget}, None


def sampling(body: JSON, upstream_model: str) -> JSON:
    """temperature (clamped to Anthropic's 0..1) or else top_p, where the model takes them."""
    if NO_SAMPLING.search(upstream_model):
        return {}
    if (temperature := body.get("temperature")) is not None:
        return {"temperature": min(max(temperature, 0), 1)}
    if body.get("top_p") is not None:
        return {"top_p": body["top_p"]}
    return {}


def convert_tools(tools: list[JSON]) -> list[JSON]:
    out: list[JSON] = []
    for tool in tools:
        if tool.get("type", "function") != "function":
            raise bad_request("anthropic only takes function tools", param="tools")
        function = object_field(tool.get("function"), "tools[].function", "tools")
        item: JSON = {"name": function.get("name") or ""}
        if function.get("description"):
            item["description"] = function["description"]
        item["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
        out.append(with_cache_control(item, tool))
    return out


def tool_choice(choice: Any, parallel: bool | None) -> JSON | None:
    result: JSON | None
    if isinstance(choice, str):
        if choice not in TOOL_CHOICES:
            raise bad_request(f"unknown tool_choice {choice!r}", param="tool_choice")
        result = dict(TOOL_CHOICES[choice])
    elif isinstance(choice, dict):
        function = object_field(choice.get("function"), "tool_choice.function", "tool_choice")
        name = function.get("name")
        if not name:
            raise bad_request("tool_choice must name a function", param="tool_choice")
        result = {"type": "tool", "name": name}
    else:
        result = None
    if parallel is False and (result or {}).get("type") != "none":
        result = {**(result or {"type": "auto"}), "disable_parallel_tool_use": True}
    return result


def json_schema_of(response_format: Any) -> JSON | None:
    """The schema of a json_schema response_format (None for any other)."""
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    name = "response_format.json_schema"
    schema = object_field(response_format.get("json_schema"), name, "response_format")
    return schema.get("schema") if isinstance(schema.get("schema"), dict) else None


def json_instruction(response_format: Any) -> str | None:
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_object":
        return JSON_ONLY
    if kind == "json_schema":
        name = "response_format.json_schema"
        json_schema = object_field(response_format.get("json_schema"), name, "response_format")
        schema = json_schema.get("schema")
        if isinstance(schema, dict):
            encoded = orjson.dumps(schema).decode()
            return f"{JSON_ONLY} The JSON must conform to this JSON Schema:\n{encoded}"
        return JSON_ONLY
    return None


# --- answers -----------------------------------------------------------------------------


def load(data: bytes | str) -> JSON:
    return load_object(data, NAME)


def finish_reason(stop_reason: Any) -> str:
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def tool_call(block: JSON, arguments: Any) -> JSON:
    if not isinstance(arguments, str):
        arguments = orjson.dumps(arguments if arguments is not None else {}).decode()
    return {
        "id": str(block.get("id") or ""),
        "type": "function",
        "function": {"name": str(block.get("name") or ""), "arguments": arguments},
    }


def read_usage(counts: dict[str, int], usage: Any) -> Usage:
    """Anthropic's usage into `counts` (cumulative counts: the latest wins), as Usage.

    Anthropic's input_tokens leaves out cache reads and writes; prompt_tokens counts them."""
    if usage is not None and not isinstance(usage, dict):
        raise upstream_invalid(NAME)
    for name, value in (usage or {}).items():
        if name in USAGE_FIELDS and value is not None:
            counts[name] = token_count(value, NAME)
        elif name in NESTED_USAGE and value is not None:
            if not isinstance(value, dict):
                raise upstream_invalid(NAME)
            inner = NESTED_USAGE[name]
            counts[inner] = token_count(value.get(inner), NAME)
    cache_read = counts.get("cache_read_input_tokens", 0)
    cache_write = counts.get("cache_creation_input_tokens", 0)
    prompt = counts.get("input_tokens", 0) + cache_read
    return Usage(
        prompt_tokens=prompt + cache_write,
        completion_tokens=counts.get("output_tokens", 0),
        cached_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=min(counts.get("ephemeral_1h_input_tokens", 0), cache_write),
        reasoning_tokens=counts.get("thinking_tokens", 0),
    )


def reasoning_detail(block: JSON, index: int) -> JSON:
    """A thinking block in OpenRouter's reasoning_details shape."""
    if block.get("type") == "redacted_thinking":
        data = str(block.get("data") or "")
        return {"type": "reasoning.encrypted", "data": data, "format": FORMAT, "index": index}
    return {
        "type": "reasoning.text",
        "text": str(block.get("thinking") or ""),
        "signature": str(block.get("signature") or ""),
        "format": FORMAT,
        "index": index,
    }


def block_index(event: JSON) -> int:
    index = event.get("index", -1)
    if not isinstance(index, int):
        raise upstream_invalid(NAME)
    return index


def string(payload: JSON, name: str) -> str:
    """A text field of a stream event, which goes to the client as it is."""
    value = payload.get(name)
    if not isinstance(value, str):
        raise upstream_invalid(NAME)
    return value


class AnthropicStreamTranslator(StreamTranslator):
    def __init__(self, *, model: str, include_usage: bool, secret: str = "") -> None:
        super().__init__(model=model, include_usage=include_usage)
        self.secret = secret  # the operator's key: never repeated in an error message
        self.counts: dict[str, int] = {}  # Anthropic's usage so far
        self.tools: dict[int, int] = {}  # Anthropic block index → OpenAI tool call index
        self.thoughts: dict[int, int] = {}  # Anthropic block index → reasoning_details index

    def feed(self, event: SSEEvent) -> list[JSON]:
        payload = load(event.data)
        kind = payload.get("type") or event.event
        if kind == "error":
            raise self.error(payload.get("error"))
        if kind == "message_start":
            message = payload.get("message")
            if not isinstance(message, dict):
                raise upstream_invalid(NAME)
            self.usage = read_usage(self.counts, message.get("usage"))
            return [self.chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = payload.get("content_block")
            if not isinstance(block, dict):
                raise upstream_invalid(NAME)
            self.count_block(block)
            if block.get("type") == "tool_use":
                number = self.tools[block_index(payload)] = len(self.tools)
                call = {"index": number, **tool_call(block, "")}
                return [self.chunk({"tool_calls": [call]})]
            if block.get("type") == "text" and block.get("text"):
                return [self.chunk({"content": string(block, "text")})]
            if block.get("type") in ("thinking", "redacted_thinking"):
                number = self.thoughts[block_index(payload)] = len(self.thoughts)
                detail = reasoning_detail(block, number)
                if detail["type"] == "reasoning.text" and not (
                    detail["text"] or detail["signature"]
                ):
                    return []  # (the usual start: its text and signature come in deltas)
                return self.reasoning_chunk(detail)
            return []
        if kind == "content_block_delta":
            delta = payload.get("delta")
            if not isinstance(delta, dict):
                raise upstream_invalid(NAME)
            delta_type = delta.get("type")
            if delta_type == "text_delta" and delta.get("text"):
                text = string(delta, "text")
                self.count(text)
                return [self.chunk({"content": text})]
            if delta_type == "input_json_delta" and delta.get("partial_json"):
                arguments = string(delta, "partial_json")
                self.count(arguments)
                tool = self.tools.get(block_index(payload))
                if tool is None:
                    raise upstream_invalid(NAME)
                call = {"index": tool, "function": {"arguments": arguments}}
                return [self.chunk({"tool_calls": [call]})]
            thinking = delta.get("thinking")
            if delta_type == "thinking_delta" and isinstance(thinking, str):
                self.count(thinking)  # output Anthropic bills, relayed or not (`exclude`)
                detail = {"type": "reasoning.text", "text": thinking, "format": FORMAT}
                return self.reasoning_chunk(self.indexed(detail, payload))
            if delta_type == "signature_delta" and delta.get("signature"):
                signature = string(delta, "signature")
                detail = {"type": "reasoning.text", "signature": signature, "format": FORMAT}
                return self.reasoning_chunk(self.indexed(detail, payload))
            # Signatures and citations are not output tokens (a citation's cited_text is
            # the caller's document); a citation is not part of an OpenAI answer.
            return []
        if kind == "message_delta":
            usage = payload.get("usage")
            self.usage = read_usage(self.counts, usage)
            # Its counts are the message's final ones (message_start's are not: its
            # output_tokens is a placeholder).
            self.final_usage = isinstance(usage, dict)
            delta = payload.get("delta") or {}
            if not isinstance(delta, dict):
                raise upstream_invalid(NAME)
            reason = delta.get("stop_reason")
            return [self.chunk({}, finish_reason(reason))] if reason else []
        if kind == "message_stop":
            self.finished = True
        return []  # ping, content_block_stop, and event types Anthropic may add

    def indexed(self, detail: JSON, payload: JSON) -> JSON:
        number = self.thoughts.get(block_index(payload))
        if number is None:
            raise upstream_invalid(NAME)
        detail["index"] = number
        return detail

    def reasoning_chunk(self, detail: JSON) -> list[JSON]:
        """A piece of thinking as a delta (OpenRouter's and DeepSeek's fields), unless the
        caller excluded it."""
        if not self.show_reasoning:
            return []
        delta: JSON = {"reasoning_details": [detail]}
        if text := detail.get("text"):
            reasoning.with_text(delta, text)
        return [self.chunk(delta)]

    def count_block(self, block: JSON) -> None:
        """The output a content block opens with (see BLOCK_OUTPUT)."""
        kind = block.get("type")
        name = BLOCK_OUTPUT.get(kind) if isinstance(kind, str) else None
        if name is not None and isinstance(value := block.get(name), str):
            self.count(value)

    def error(self, error: Any) -> GatewayError:
        error = error if isinstance(error, dict) else {}
        message = error.get("message")
        message = redact(message, self.secret) if isinstance(message, str) else ""
        if not message:
            message = "the anthropic provider failed mid-stream"
        if error.get("type") == "overloaded_error":
            return upstream_error(503, message, headers={"retry-after": "1"})
        return GatewayError(502, message, type=API_ERROR)
