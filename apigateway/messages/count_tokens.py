"""POST /v1/messages/count_tokens: what a Messages request's prompt counts, for free.

A Claude model's count is Anthropic's own (its count_tokens endpoint, which costs nothing);
another family's is an estimate (a token per four characters of the prompt's text and
tools, images at a base cost: ratelimit.estimate_tokens). Either way the call is
authenticated and counted against the key's request limits like any other: it reserves
nothing and settles at zero, so that it leaves a usage record.
"""

from __future__ import annotations

import orjson

from apigateway import http, relay
from apigateway.asgi_io import Headers
from apigateway.messages import passthrough
from apigateway.messages.surface import MessagesSurface, passes_through
from apigateway.providers.anthropic import load
from apigateway.providers.base import JSON, token_count
from apigateway.ratelimit import estimate_tokens


async def count_tokens(call: relay.Call, surface: MessagesSurface, headers: Headers) -> None:
    reservation = await relay.reserve(call, 0, headers)
    try:
        with relay.Outcome(call.log):
            payload = await _count(call, surface)
        body = orjson.dumps(payload)
        await relay.settle(
            call, reservation, 0, answer=lambda: call.respond_json(200, body, headers)
        )
        reservation = None  # type: ignore[assignment]  # settled: nothing to release
    finally:
        if reservation is not None:
            await relay.settle(call, reservation, 0)


async def _count(call: relay.Call, surface: MessagesSurface) -> JSON:
    claude = tuple(route for route in call.routes if passes_through(route))
    if not claude or not passes_through(call.routes[0]):
        return {"input_tokens": estimate_tokens(call.body, max_output_tokens=None)}
    upstream = http.Requests(
        claude,
        lambda route: passthrough.count_request(surface.request, route.deployment, surface.betas),
    )
    _, data = await http.fetch(upstream)
    return {"input_tokens": token_count(load(data).get("input_tokens"), "anthropic")}
