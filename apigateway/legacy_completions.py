"""OpenAI's legacy completions API (/v1/completions): a prompt in, `text_completion`s out.

A surface of the relay's chat path: reserved, sent, relayed and settled as a chat call,
with its own request and answer shapes (the adapters' `*_completions_*` methods) and its
own sizing: the output cap is `max_tokens` (16 when absent, as at OpenAI), and every
prompt produces `best_of` (at least `n`) completions, all billed. Providers without the
API answer 400 (providers/options.py: `completions`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from apigateway import sizing
from apigateway.surfaces import Surface

if TYPE_CHECKING:
    from apigateway.catalog import CatalogEntry
    from apigateway.providers.base import JSON, StreamTranslator, UpstreamRequest, Usage
    from apigateway.routing import Route


class CompletionsSurface(Surface):
    name = "completions"

    def build(self, route: Route, body: JSON) -> UpstreamRequest:
        return route.adapter.build_completions_request(body, route.deployment)

    def parse(self, route: Route, data: bytes, model: str) -> tuple[JSON, Usage]:
        return route.adapter.parse_completions_response(
            data, model=model, deployment=route.deployment
        )

    def translator(self, route: Route, model: str, body: JSON) -> StreamTranslator:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return route.adapter.completions_stream_translator(
            model=model, include_usage=include_usage, deployment=route.deployment
        )

    def output_cap(self, body: JSON, entry: CatalogEntry) -> int:
        asked = body.get("max_tokens")
        return sizing.COMPLETION_DEFAULT_OUTPUT_TOKENS if asked is None else asked

    def outputs(self, body: JSON) -> int:
        return sizing.completion_outputs(body)

    def prompt_bound(self, body: JSON, body_bytes: int, entry: CatalogEntry) -> int:
        return sizing.inputs_bound(body.get("prompt"), body_bytes, entry.context_window)


COMPLETIONS = CompletionsSurface()
