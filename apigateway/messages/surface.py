"""Anthropic's Messages API as a surface of the relay (apigateway/surfaces.py): one instance
per request, which keeps the caller's request for the deployments that pass it through to
Anthropic and its chat body for sizing and for the other families.

Errors are Anthropic's: {"type": "error", "error": {"type", "message"}, "request_id"},
and, once a stream has started, an `error` event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from apigateway.errors import GatewayError, bad_request
from apigateway.messages import answers, passthrough
from apigateway.messages.request import Translation, check, check_betas, to_chat
from apigateway.surfaces import Surface, encode_typed, with_cost

if TYPE_CHECKING:
    from apigateway.providers.base import JSON, StreamTranslator, UpstreamRequest, Usage
    from apigateway.routing import Route

# Anthropic's error types by HTTP status (the SDK picks its exception by the status).
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
}


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def passes_through(route: Route) -> bool:
    """Claude deployments take the Messages API as it is."""
    return route.adapter.name == "anthropic"


class MessagesSurface(Surface):
    name = "messages"
    stream_end = b""  # (message_stop is the stream's last event)

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.request: JSON = {}  # as the caller sent it
        self.translation = Translation({})
        self.betas = ""

    @property
    def chat_body(self) -> JSON:
        return self.translation.body

    def accept(self, payload: JSON, betas: str | None, *, counting: bool = False) -> str:
        """Check the caller's request and keep it (and its chat body); returns the model."""
        model = check(payload, counting=counting)
        self.betas = check_betas(betas)
        self.request = payload
        self.translation = to_chat(payload)
        return model

    # --- the upstream side ---
    def build(self, route: Route, body: JSON) -> UpstreamRequest:
        if passes_through(route):
            return passthrough.build(self.request, body, route.deployment, self.betas)
        if self.translation.problems:
            raise bad_request(self.translation.problems[0])
        return route.adapter.build_chat_request(body, route.deployment)

    def parse(self, route: Route, data: bytes, model: str) -> tuple[JSON, Usage]:
        if passes_through(route):
            return passthrough.parse(data, model)
        completion, usage = route.adapter.parse_chat_response(
            data, model=model, deployment=route.deployment
        )
        return answers.message_from_chat(completion, usage, model), usage

    def translator(self, route: Route, model: str, body: JSON) -> StreamTranslator:
        if passes_through(route):
            return passthrough.PassthroughStream(model=model, secret=route.deployment.api_key)
        inner = route.adapter.stream_translator(
            model=model, include_usage=True, deployment=route.deployment
        )
        return answers.MessagesFromChat(inner, model)  # type: ignore[return-value]

    # --- the caller's side ---
    def with_cost(self, payload: JSON, cost: str) -> JSON:
        return with_cost(payload, cost)

    def closing(self, translator: StreamTranslator, cost: Callable[[Usage], str]) -> list[JSON]:
        """The held or made message_delta carries the call's cost in its usage."""
        closing = translator.close()
        for event in closing:
            if event.get("type") == "message_delta" and translator.usage:
                with_cost(event, cost(translator.usage))
        return closing

    def encode(self, events: list[JSON]) -> bytes:
        return encode_typed(events)

    def error(self, error: GatewayError) -> JSON:
        return {"type": error_type(error.status), "message": error.message}

    def error_body(self, error: GatewayError) -> bytes:
        body = {"type": "error", "error": self.error(error), "request_id": self.request_id}
        return orjson.dumps(body)

    def stream_error(self, error: GatewayError) -> bytes:
        return encode_typed([{"type": "error", "error": self.error(error)}])
