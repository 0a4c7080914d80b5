"""Messages API calls to Anthropic itself: the caller's request goes as it is, with the
deployment's model name and the output cap the reservation pays for; the answer comes back
as Anthropic sent it, with the caller's model id. Pure.

Usage is read from the message (or from message_start and message_delta in a stream) as
the chat adapter reads it: cache reads and writes are part of the prompt. A stream's
message_delta and message_stop are held until its end, so that the call's cost can join
message_delta's usage.
"""

from __future__ import annotations

import orjson

from apigateway import media_urls
from apigateway.providers.anthropic import VERSION, AnthropicStreamTranslator, load, read_usage
from apigateway.providers.base import JSON, Deployment, UpstreamRequest, Usage, output_cap
from apigateway.sse import SSEEvent


def headers(deployment: Deployment, betas: str) -> dict[str, str]:
    found = {
        "x-api-key": deployment.api_key,
        "anthropic-version": VERSION,
        "content-type": "application/json",
    }
    if betas:
        found["anthropic-beta"] = betas
    found.update(deployment.extra_headers)
    return found


def build(request: JSON, chat: JSON, deployment: Deployment, betas: str) -> UpstreamRequest:
    """POST /v1/messages: `request` as the caller sent it; `chat`, its chat body as the relay
    capped it, gives the output cap."""
    if not deployment.options.remote_media:
        media_urls.refuse_remote(chat.get("messages") or [])
    upstream = {**request, "model": deployment.upstream_model}
    upstream["max_tokens"] = output_cap(chat, deployment) or request["max_tokens"]
    url = f"{deployment.base_url}/v1/messages"
    return UpstreamRequest("POST", url, headers(deployment, betas), orjson.dumps(upstream))


def count_request(request: JSON, deployment: Deployment, betas: str) -> UpstreamRequest:
    upstream = {**request, "model": deployment.upstream_model}
    url = f"{deployment.base_url}/v1/messages/count_tokens"
    return UpstreamRequest("POST", url, headers(deployment, betas), orjson.dumps(upstream))


def parse(data: bytes, model: str) -> tuple[JSON, Usage]:
    payload = load(data)
    usage = read_usage({}, payload.get("usage"))
    payload["model"] = model
    return payload, usage


class PassthroughStream(AnthropicStreamTranslator):
    """Anthropic's events as they came (the chat translator it extends reads the usage and
    counts the output); message_start names the caller's model."""

    def __init__(self, *, model: str, secret: str = "") -> None:
        super().__init__(model=model, include_usage=False, secret=secret)
        self.held: list[JSON] = []

    def feed(self, event: SSEEvent) -> list[JSON]:
        super().feed(event)  # usage, output, the end; an error event raises
        payload = load(event.data)
        kind = payload.get("type")
        if kind == "message_start":
            payload["message"]["model"] = self.model
        elif kind in ("message_delta", "message_stop"):
            self.held.append(payload)
            return []
        return [payload]

    def close(self) -> list[JSON]:
        held, self.held = self.held, []
        return held
