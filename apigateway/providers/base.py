"""The one small interface every provider adapter implements.

An adapter turns an OpenAI-shaped request body (already validated) into the provider's HTTP
request, and the provider's answer back into OpenAI's shapes. Everything here is pure:
adapters never do IO; `apigateway.http` sends what they build.

Streaming: a fresh translator per request is fed one decoded SSE event at a time and
returns the OpenAI `chat.completion.chunk` dicts to send; it records the provider's usage
and counts all the output it sees, so that `billable_usage` can bill a stream however it
ended.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from apigateway import ids
from apigateway.errors import API_ERROR, GatewayError, bad_request, upstream_error
from apigateway.providers.options import OPENAI, ProviderOptions
from apigateway.redaction import redact
from apigateway.sse import SSEEvent

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Deployment:
    """Where one public model is served: provider, upstream name, address, operator key."""

    provider: str
    upstream_model: str
    base_url: str
    api_key: str = ""
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    max_output_tokens: int | None = None
    api_version: str | None = None  # Azure OpenAI
    options: ProviderOptions = OPENAI  # what this provider reads (see options.py)
    # What the catalog says the model can do (catalog flags).
    reasoning: bool = False  # it can think: reasoning_effort / reasoning are taken
    structured_output: bool = False  # it takes a JSON schema natively (Anthropic)


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None  # encoded JSON


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # part of prompt_tokens read from the provider's prompt cache
    cache_write_tokens: int = 0  # part of prompt_tokens written to the provider's prompt cache
    cache_write_1h_tokens: int = 0  # part of cache_write_tokens kept for an hour (Anthropic)
    reasoning_tokens: int = 0  # part of completion_tokens spent thinking

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_openai(self) -> JSON:
        """OpenAI's usage object. Cache writes are in `prompt_tokens_details.
        cache_write_tokens`, as OpenRouter reports them; both details only when not 0."""
        usage: JSON = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.cached_tokens or self.cache_write_tokens:
            details: JSON = {"cached_tokens": self.cached_tokens}
            if self.cache_write_tokens:
                details["cache_write_tokens"] = self.cache_write_tokens
            usage["prompt_tokens_details"] = details
        if self.reasoning_tokens:
            usage["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        return usage


def now() -> int:
    return int(time.time())


def output_cap(body: JSON, deployment: Deployment) -> int | None:
    """The most output tokens the provider may produce per choice: the body's cap, never
    above the model's maximum output; None when the body sets none.

    Validation leaves the caller's cap in `max_completion_tokens` alone (the smaller of
    the two fields), and the relay sets it to what it reserved credit for; a body that
    still holds both (built by hand) gets the smaller."""
    cap = body.get("max_completion_tokens")
    if (legacy := body.get("max_tokens")) and (not cap or legacy < cap):
        cap = legacy
    if not cap:
        return None
    limit = deployment.max_output_tokens
    return limit if limit and limit < cap else cap


class StreamTranslator:
    """Base for the stream translators: feed events, get OpenAI chunk dicts back.

    Translators set `usage` from the provider's counts as they come, `final_usage` when the
    provider's final counts have come (the stream completed), and `count` every piece of
    output the provider produced, relayed or not (text, refusals, tool calls, reasoning,
    thinking): the provider bills all of it, and a stream that ends early is billed from it.
    """

    def __init__(self, *, model: str, include_usage: bool, stream_id: str | None = None) -> None:
        self.model = model
        self.include_usage = include_usage
        self.id = ids.completion_id() if stream_id is None else stream_id
        self.created = now()
        self.usage: Usage | None = None
        self.final_usage = False  # `usage` holds the provider's counts for the whole answer
        self.finished = False  # the provider said the message is complete
        self.show_reasoning = True  # reasoning text goes to the caller (not `exclude`d)
        # Output seen so far, in ASCII and other characters (see `output_estimate`).
        self.ascii_chars = 0
        self.other_chars = 0

    def count(self, text: str) -> None:
        """Adds a piece of the provider's output to what a stream ending early is billed."""
        if text.isascii():
            self.ascii_chars += len(text)
        else:
            ascii_chars = len(text.encode("ascii", "ignore"))
            self.ascii_chars += ascii_chars
            self.other_chars += len(text) - ascii_chars

    def count_function(self, function: Any) -> None:
        """A tool call's function: its name and arguments are output."""
        if isinstance(function, dict):
            for text in (function.get("name"), function.get("arguments")):
                if isinstance(text, str):
                    self.count(text)

    @property
    def produced(self) -> bool:
        """The provider started answering: it sent counts or output (thinking included)."""
        return self.usage is not None or bool(self.ascii_chars or self.other_chars)

    def output_estimate(self) -> int:
        """Tokens of the output seen: four ASCII characters a token, any other character a
        token of its own (CJK text runs about a token a character, and other scripts take
        fewer characters a token than English), rounded up once over the whole stream."""
        return -(-self.ascii_chars // 4) + self.other_chars

    def billable_usage(self, prompt_estimate: int) -> Usage:
        """What the call is billed for. A stream that completed: the provider's final counts,
        as they are. One that ended early (client gone, provider broke off, time-out, server
        stopping, error mid-stream): the provider's counts so far or, where larger, the
        estimate of all the output seen; the provider's prompt count, else `prompt_estimate`.
        """
        usage = self.usage
        if self.final_usage and usage is not None:
            return usage
        if usage is None:
            usage = Usage()
        return Usage(
            # (a provider's prompt count is never 0: a 0 is one it has not sent yet)
            prompt_tokens=usage.prompt_tokens or prompt_estimate,
            completion_tokens=max(usage.completion_tokens, self.output_estimate()),
            cached_tokens=usage.cached_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            cache_write_1h_tokens=usage.cache_write_1h_tokens,
        )

    def chunk(self, delta: JSON, finish_reason: str | None = None, index: int = 0) -> JSON:
        chunk: JSON = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def usage_chunk(self) -> JSON:
        return {
            "id": self.id or ids.completion_id(),
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": (self.usage or Usage()).as_openai(),
        }

    def feed(self, event: SSEEvent) -> list[JSON]:
        raise NotImplementedError

    def close(self) -> list[JSON]:
        """After the provider's last event: the usage chunk, if the client asked for it."""
        return [self.usage_chunk()] if self.include_usage else []


class Provider:
    """Adapters override what their provider supports; the rest answers 400."""

    name = "base"

    # --- chat ---
    def build_chat_request(self, body: JSON, deployment: Deployment) -> UpstreamRequest:
        raise bad_request(f"chat completions are not available from {self.name}")

    def parse_chat_response(
        self, data: bytes, *, model: str, deployment: Deployment
    ) -> tuple[JSON, Usage]:
        raise NotImplementedError

    def stream_translator(
        self, *, model: str, include_usage: bool, deployment: Deployment
    ) -> StreamTranslator:
        raise NotImplementedError

    # --- embeddings ---
    def build_embeddings_request(self, body: JSON, deployment: Deployment) -> UpstreamRequest:
        raise bad_request(f"embeddings are not available from {self.name}")

    def parse_embeddings_response(
        self, data: bytes, *, model: str, body: JSON
    ) -> tuple[JSON, Usage]:
        raise NotImplementedError

    # --- images ---
    def build_images_request(self, body: JSON, deployment: Deployment) -> UpstreamRequest:
        raise bad_request(f"image generation is not available from {self.name}")

    def parse_images_response(self, data: bytes, *, model: str) -> tuple[JSON, Usage]:
        raise NotImplementedError

    # --- legacy completions (a prompt, not messages) ---
    def build_completions_request(self, body: JSON, deployment: Deployment) -> UpstreamRequest:
        raise not_served("completions", deployment, "/v1/chat/completions")

    def parse_completions_response(
        self, data: bytes, *, model: str, deployment: Deployment
    ) -> tuple[JSON, Usage]:
        raise NotImplementedError

    def completions_stream_translator(
        self, *, model: str, include_usage: bool, deployment: Deployment
    ) -> StreamTranslator:
        raise NotImplementedError

    # --- moderations ---
    def build_moderations_request(self, body: JSON, deployment: Deployment) -> UpstreamRequest:
        raise not_served("moderations", deployment)

    def parse_moderations_response(self, data: bytes, *, model: str) -> tuple[JSON, Usage]:
        raise NotImplementedError

    # --- errors ---
    def error_message(self, data: bytes) -> str | None:
        """The provider's own error message, if its body has one."""
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            message: str = error["message"]
            return message
        if isinstance(error, str):
            return error
        return None

    def map_error(self, status: int, data: bytes, secret: str = "") -> GatewayError:
        """A provider's non-2xx answer, in terms that never blame the caller for our faults.

        400/404/413/422 (the request itself) keep the provider's message as a 400, with
        secrets (`secret`, the operator's key, and anything key-like) and internal
        addresses redacted; 401/403 (the operator's provider key) become 502; 429 and 5xx
        become 503/502 after the relay's retries.
        """
        if status in (400, 404, 413, 422):
            message = self.error_message(data)
            message = redact(message, secret) if message else None
            return bad_request(message or f"{self.name} rejected the request")
        if status in (401, 403):
            return upstream_error(
                502, f"the {self.name} provider refused the gateway's credentials"
            )
        if status == 429:
            return upstream_error(
                503,
                f"the {self.name} provider is overloaded; retry shortly",
                headers={"retry-after": "1"},
            )
        return upstream_error(502, f"the {self.name} provider failed (HTTP {status})")


# --- reading the caller's body: validation checked its top level; the parts an adapter
# reads deeper are checked here, so that a malformed one is the caller's 400 -------------


def object_field(value: Any, name: str, param: str = "messages") -> JSON:
    """A field the adapter reads as an object; absent or null is empty."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request(f"'{name}' must be an object.", param=param)
    return value


def text_field(value: Any, name: str, param: str = "messages") -> str:
    """A field the adapter reads as text; absent or null is empty."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise bad_request(f"'{name}' must be a string.", param=param)
    return value


def file_data(part: JSON) -> str:
    """A `file` content part's data URL ("" when it has none)."""
    file = object_field(part.get("file"), "content[].file")
    return text_field(file.get("file_data"), "content[].file.file_data")


def tool_calls_of(message: JSON) -> list[tuple[str, str, JSON]]:
    """An assistant message's tool calls as (id, function name, arguments object)."""
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise bad_request("'tool_calls' must be an array.", param="messages")
    out = []
    for call in calls:
        call = object_field(call, "tool_calls[]")
        function = object_field(call.get("function"), "tool_calls[].function")
        call_id = text_field(call.get("id"), "tool_calls[].id")
        name = text_field(function.get("name"), "tool_calls[].function.name")
        try:
            arguments = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            arguments = None
        if not isinstance(arguments, dict):
            raise bad_request("tool call arguments must be a JSON object", param="messages")
        out.append((call_id, name, arguments))
    return out


def not_served(api: str, deployment: Deployment, instead: str | None = None) -> GatewayError:
    """A 400: this deployment's provider does not have the API the caller called."""
    message = f"{api} are not available from {deployment.provider}"
    if instead:
        message += f" (its models are called through {instead})"
    return bad_request(message + ".")


def upstream_invalid(provider: str) -> GatewayError:
    return GatewayError(502, f"the {provider} provider sent an unreadable answer", type=API_ERROR)


def token_count(value: Any, provider: str) -> int:
    """A provider's token count: a whole number, not negative (absent: 0); anything else
    makes the answer unreadable (a 502), as it cannot be billed."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise upstream_invalid(provider)
    if isinstance(value, float) and not value.is_integer():
        raise upstream_invalid(provider)
    return int(value)


def load_object(data: bytes | str, provider: str) -> JSON:
    """A provider's JSON object body, or a 502 that says the answer was unreadable."""
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise upstream_invalid(provider) from None
    if not isinstance(payload, dict):
        raise upstream_invalid(provider)
    return payload
