"""The Responses API of a provider that has it (OpenAI): the caller's request, relayed.

What changes on the way: the model (public id → upstream name, and back in the answer),
the key (the operator's), `max_output_tokens` (the cap the reservation pays for) and
`store` (always false: the provider would otherwise keep every tenant's responses under
the operator's one key, readable by anyone holding an id). Usage is read for billing from
the response (and, streamed, from its last event, which is held back so that the relay
can add the cost to it). Pure.
"""

from __future__ import annotations

from typing import Any, TypeGuard

import orjson

from apigateway.errors import API_ERROR, GatewayError
from apigateway.providers.base import (
    JSON,
    Deployment,
    StreamTranslator,
    UpstreamRequest,
    Usage,
    load_object,
    upstream_invalid,
)
from apigateway.providers.openai import OpenAIProvider
from apigateway.redaction import redact
from apigateway.responses.request import FORWARDED
from apigateway.sse import SSEEvent

PROVIDER = "openai"
# The events that end a response: each carries the whole response, with its usage.
TERMINAL = {"response.completed", "response.incomplete", "response.failed"}
# Events whose `delta` is output the provider bills (a stream that ends early is billed
# from them).
OUTPUT_DELTAS = {
    "response.output_text.delta",
    "response.refusal.delta",
    "response.reasoning_text.delta",
    "response.reasoning_summary_text.delta",
    "response.function_call_arguments.delta",
}


def serves(adapter: Any, deployment: Deployment) -> TypeGuard[OpenAIProvider]:
    """Whether this deployment takes the Responses API as it is."""
    return (
        type(adapter) is OpenAIProvider and deployment.options.responses_api  # (not Azure's)
    )


def build(
    adapter: OpenAIProvider, request: JSON, cap: int, deployment: Deployment
) -> UpstreamRequest:
    upstream = {name: value for name, value in request.items() if name in FORWARDED}
    upstream["model"] = deployment.upstream_model
    limit = deployment.max_output_tokens
    upstream["max_output_tokens"] = limit if limit and limit < cap else cap
    upstream["store"] = False
    return UpstreamRequest(
        "POST",
        adapter.url(deployment, "responses"),
        adapter.headers(deployment),
        orjson.dumps(upstream),
    )


def usage_of(response: Any) -> Usage:
    """A Response's usage (absent: none yet)."""
    usage = response.get("usage") if isinstance(response, dict) else None
    if usage is None:
        return Usage()
    if not isinstance(usage, dict):
        raise upstream_invalid(PROVIDER)
    given = usage.get("input_tokens_details") or {}
    made = usage.get("output_tokens_details") or {}
    if not isinstance(given, dict) or not isinstance(made, dict):
        raise upstream_invalid(PROVIDER)
    counts = (
        usage.get("input_tokens"),
        usage.get("output_tokens"),
        given.get("cached_tokens"),
        given.get("cache_write_tokens"),
        made.get("reasoning_tokens"),
    )
    for value in counts:
        if value is not None and (type(value) is not int or value < 0):
            raise upstream_invalid(PROVIDER)
    prompt, completion, cached, written, reasoning = (value or 0 for value in counts)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=reasoning,
    )


def as_callers(response: JSON, model: str) -> JSON:
    response["model"] = model
    response["store"] = False
    return response


def parse(data: bytes, model: str) -> tuple[JSON, Usage]:
    response = load_object(data, PROVIDER)
    return as_callers(response, model), usage_of(response)


class ResponsesStream(StreamTranslator):
    """Relays the provider's Responses events as they come, the model renamed; holds the
    last one (completed, incomplete or failed) for `close`, so that the cost joins its
    usage; counts the output deltas, for a stream that ends early."""

    def __init__(self, *, model: str, secret: str = "") -> None:
        super().__init__(model=model, include_usage=False, stream_id="")
        self.secret = secret
        self.response: JSON | None = None  # the latest snapshot of the response
        self.sequence = 0  # the next event's sequence number
        self.last: list[JSON] = []

    def feed(self, event: SSEEvent) -> list[JSON]:
        if event.data == "[DONE]":
            return []
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            raise upstream_invalid(PROVIDER) from None
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise upstream_invalid(PROVIDER)
        kind = data["type"]
        number = data.get("sequence_number")
        if type(number) is int:
            self.sequence = number + 1
        if kind == "error":
            message = data.get("message")
            message = redact(message, self.secret) if isinstance(message, str) else ""
            raise GatewayError(502, message or "the provider failed mid-stream", type=API_ERROR)
        response = data.get("response")
        if isinstance(response, dict):
            self.response = as_callers(response, self.model)
            if response.get("id"):
                self.id = response["id"]
        if kind in OUTPUT_DELTAS:
            if isinstance(delta := data.get("delta"), str):
                self.count(delta)
        elif kind == "response.output_item.added":
            item = data.get("item")
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                self.count(item["name"])
        if kind in TERMINAL:
            self.finished = True
            if isinstance(response, dict) and response.get("usage") is not None:
                self.usage = usage_of(response)
                self.final_usage = True  # (else billed from the output seen)
            self.last = [data]
            return []
        return [data]

    def close(self) -> list[JSON]:
        return self.last
