"""The API a caller speaks: what it sends, what it reads back, how its errors look.

Every text call goes through the relay as a chat completion: sized, reserved and settled
the same way. A surface is the client-facing side of that. Chat completions is the
gateway's own shape (`CHAT`); other APIs (Anthropic Messages, OpenAI Responses) subclass
`Surface` and, per deployment, either pass the caller's request through to a provider that
speaks the same API or translate it to and from the adapter's chat shapes. Surfaces are
pure: they build requests and read answers, the relay does the IO.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from apigateway.errors import GatewayError
from apigateway.providers import reasoning
from apigateway.sse import DONE, encode_data, encode_json

if TYPE_CHECKING:
    from apigateway.providers.base import JSON, StreamTranslator, UpstreamRequest, Usage
    from apigateway.routing import Route


class Surface:
    """Chat completions, as OpenAI defines them (and the base for the other APIs)."""

    name = "chat"
    # What ends a stream, after its last event.
    stream_end: bytes = DONE

    # --- the upstream side, per deployment (a fallback may be another provider family) ---
    def build(self, route: Route, body: JSON) -> UpstreamRequest:
        """The provider's request for this deployment. `body` is the call's chat body, with
        `max_completion_tokens` set to the output its reservation pays for."""
        return route.adapter.build_chat_request(body, route.deployment)

    def parse(self, route: Route, data: bytes, model: str) -> tuple[JSON, Usage]:
        """A whole answer: the caller's payload (before the cost is added) and its usage."""
        return route.adapter.parse_chat_response(data, model=model, deployment=route.deployment)

    def translator(self, route: Route, model: str, body: JSON) -> StreamTranslator:
        """A fresh stream translator: fed the provider's events, returns the caller's."""
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        translator = route.adapter.stream_translator(
            model=model, include_usage=include_usage, deployment=route.deployment
        )
        translator.show_reasoning = not reasoning.excluded(body)
        return translator

    # --- the caller's side ---
    def with_cost(self, payload: JSON, cost: str) -> JSON:
        """A whole answer with the call's cost (a plain decimal string of dollars) in it."""
        return with_cost(payload, cost)

    def closing(self, translator: StreamTranslator, cost: Callable[[Usage], str]) -> list[JSON]:
        """The stream's last events, after the provider's: the usage chunk, if the caller
        asked for it, with the call's cost."""
        closing = translator.close()
        for chunk in closing:
            if chunk.get("usage") and not chunk.get("choices") and translator.usage:
                with_cost(chunk, cost(translator.usage))
        return closing

    def encode(self, events: list[JSON]) -> bytes:
        return encode_json(events)

    def error_body(self, error: GatewayError) -> bytes:
        return error.body()

    def stream_error(self, error: GatewayError) -> bytes:
        """An error after the stream's headers went out, in-band (as OpenAI does)."""
        return encode_data(error.body())


def with_cost(payload: JSON, cost: str) -> JSON:
    """usage.cost, a JSON number, from the plain decimal string that x-nexeon-cost carries
    (`usd_plain`). Nano-dollars have at most 9 decimals, so the shortest float repr is the
    exact decimal."""
    usage = payload.get("usage")
    if not isinstance(usage, dict):
        usage = payload["usage"] = {}
    usage["cost"] = float(cost)
    return payload


def encode_typed(events: list[JSON]) -> bytes:
    """Named events, `event: <type>` then `data: <json>`, as Anthropic and OpenAI's
    Responses API send them (each event's name is its `type`)."""
    return b"".join(
        [
            b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
            for event in events
        ]
    )


CHAT = Surface()
