"""OpenAI and every OpenAI-compatible API (Mistral, Groq, DeepSeek, Together, xAI,
OpenRouter, Ollama, vLLM, ...): requests and answers pass through nearly untouched.

The provider's body holds only the fields the gateway takes (`request_fields`, plus the
sampling extras the provider's options allow). What changes on the way: the model name
(public id → upstream name and back), the key (the operator's, never the caller's), the
output cap (in the one field the provider reads), `store` (only ever false, and only to
providers that take it), and streams always ask for usage (`stream_options.include_usage`)
so that billing uses the provider's own counts.

Reasoning (models the catalog marks `reasoning`, else a 400): `reasoning_effort` or the
`reasoning` object, in the field the provider reads (options.py `reasoning_field`). The
reasoning text a provider returns in `reasoning_content` (DeepSeek) or `reasoning`
(OpenRouter, vLLM, Groq) is returned in both, on messages and deltas; OpenAI's own models
return none. `cache_control` and `reasoning_details` are Anthropic's and never sent: these
providers cache prompts by themselves.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

import orjson

from apigateway import media_urls
from apigateway.errors import API_ERROR, GatewayError
from apigateway.providers import reasoning
from apigateway.providers.base import (
    JSON,
    Deployment,
    Provider,
    StreamTranslator,
    UpstreamRequest,
    Usage,
    load_object,
    not_served,
    output_cap,
    token_count,
    upstream_invalid,
)
from apigateway.providers.options import SAMPLING_EXTRAS, ProviderOptions
from apigateway.redaction import redact
from apigateway.request_fields import (
    CHAT_FORWARDED,
    COMPLETIONS_FORWARDED,
    EMBEDDINGS_TAKEN,
    IMAGES_TAKEN,
    unsupported,
)
from apigateway.sizing import COMPLETION_DEFAULT_OUTPUT_TOKENS
from apigateway.sse import SSEEvent


def usage_from(payload: JSON) -> Usage:
    usage = payload.get("usage") or {}
    details = (usage.get("prompt_tokens_details") or {}) if isinstance(usage, dict) else None
    if not isinstance(details, dict):
        raise upstream_invalid("openai")
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    cached = details.get("cached_tokens")
    output = usage.get("completion_tokens_details") or {}
    thought = output.get("reasoning_tokens") if type(output) is dict else -1
    if (  # the usual answer: whole counts, nothing to check further
        type(prompt) is int
        and type(completion) is int
        and (cached is None or type(cached) is int)
        and (thought is None or type(thought) is int)
        and prompt >= 0
        and completion >= 0
        and (cached or 0) >= 0
        and (thought or 0) >= 0
    ):
        return Usage(
            prompt_tokens=prompt,
            completion_tokens=completion,
            cached_tokens=cached or 0,
            reasoning_tokens=thought or 0,
        )
    if not isinstance(output, dict):
        raise upstream_invalid("openai")
    return Usage(
        prompt_tokens=token_count(usage.get("prompt_tokens"), "openai"),
        completion_tokens=token_count(usage.get("completion_tokens"), "openai"),
        cached_tokens=token_count(details.get("cached_tokens"), "openai"),
        reasoning_tokens=token_count(output.get("reasoning_tokens"), "openai"),
    )


class OpenAIProvider(Provider):
    name = "openai"

    def url(self, deployment: Deployment, path: str) -> str:
        return f"{deployment.base_url}/{path}"

    def headers(self, deployment: Deployment) -> dict[str, str]:
        headers = {"content-type": "application/json", **deployment.extra_headers}
        if deployment.api_key:
            headers["authorization"] = f"Bearer {deployment.api_key}"
        return headers

    def _request(self, path: str, body: JSON, deployment: Deployment) -> UpstreamRequest:
        return UpstreamRequest(
            "POST",
            self.url(deployment, path),
            self.headers(deployment),
            orjson.dumps(body),
        )

    def build_chat_request(self, body: JSON, deployment: Deployment) -> UpstreamRequest:
        options = deployment.options
        forwarded, refused = chat_fields(options)
        upstream: JSON = {}
        for name, value in body.items():  # (one pass, on every call)
            if name in forwarded:
                upstream[name] = value
            elif name in refused:
                raise unsupported(name)
        upstream["model"] = deployment.upstream_model
        if (cap := output_cap(body, deployment)) is not None:
            upstream[options.output_cap_field] = cap
        if options.store_field and "store" in body:
            upstream["store"] = False  # (it is taken only as false or null)
        if not options.remote_media:
            media_urls.refuse_remote(body.get("messages") or [])
        if body.get("stream"):
            upstream["stream_options"] = {
                **(body.get("stream_options") or {}),
                "include_usage": True,
            }
        upstream.pop("reasoning_effort", None)  # (sent below, where the model reasons)
        if asked := reasoning.accepted(deployment.reasoning, body, body.get("model") or ""):
            reasoning_controls(upstream, asked, options.reasoning_field, body, cap)
        messages, tools = reasoning.without_cache_control(body)
        if messages is not None:
            upstream["messages"] = messages
        if tools is not None:
            upstream["tools"] = tools
        return self._request("chat/completions", upstream, deployment)

    def parse_chat_response(
        self, data: bytes, *, model: str, deployment: Deployment
    ) -> tuple[JSON, Usage]:
        payload = load_object(data, self.name)
        payload["model"] = model
        for choice in payload.get("choices") or ():
            if isinstance(choice, dict) and isinstance(message := choice.get("message"), dict):
                reasoning.mirrored(message)
        return payload, usage_from(payload)

    def stream_translator(
        self, *, model: str, include_usage: bool, deployment: Deployment
    ) -> StreamTranslator:
        return OpenAIStreamTranslator(
            model=model, include_usage=include_usage, secret=deployment.api_key
        )

    def build_embeddings_request(self, body: JSON, deployment: Deployment) -> UpstreamRequest:
        upstream = {name: value for name, value in body.items() if name in EMBEDDINGS_TAKEN}
        upstream["model"] = deployment.upstream_model
        return self._request("embeddings", upstream, deployment)

    def parse_embeddings_response(
        self, data: bytes, *, model: str, body: JSON
    ) -> tuple[JSON, Usage]:
        payload = load_object(data, self.name)
        payload["model"] = model
        return payload, usage_from(payload)

    def build_completions_request(self, body: JSON, deployment: Deployment) -> UpstreamRequest:
        if not deployment.options.completions:
            raise not_served("completions", deployment, "/v1/chat/completions")
        upstream = {k: v for k, v in body.items() if k in COMPLETIONS_FORWARDED}
        upstream["model"] = deployment.upstream_model
        # Always sent (a server's default may be larger): what the relay reserved for.
        cap = body.get("max_completion_tokens")
        cap = COMPLETION_DEFAULT_OUTPUT_TOKENS if cap is None else cap
        limit = deployment.max_output_tokens
        upstream["max_tokens"] = limit if limit and limit < cap else cap
        if body.get("stream"):
            upstream["stream_options"] = {
                **(body.get("stream_options") or {}),
                "include_usage": True,
            }
        return self._request("completions", upstream, deployment)

    def parse_completions_response(
        self, data: bytes, *, model: str, deployment: Deployment
    ) -> tuple[JSON, Usage]:
        return self.parse_chat_response(data, model=model, deployment=deployment)

    def completions_stream_translator(
        self, *, model: str, include_usage: bool, deployment: Deployment
    ) -> StreamTranslator:
        return CompletionStreamTranslator(
            model=model, include_usage=include_usage, secret=deployment.api_key
        )

    def build_moderations_request(self, body: JSON, deployment: Deployment) -> UpstreamRequest:
        if not deployment.options.moderations:
            raise not_served("moderations", deployment)
        upstream = {"model": deployment.upstream_model, "input": body["input"]}
        return self._request("moderations", upstream, deployment)

    def parse_moderations_response(self, data: bytes, *, model: str) -> tuple[JSON, Usage]:
        """OpenAI's moderation answers carry no usage (the calls are free); a server that
        counts tokens has them billed at the catalog's prices."""
        payload = load_object(data, self.name)
        payload["model"] = model
        return payload, usage_from(payload) if payload.get("usage") else Usage()

    def build_images_request(self, body: JSON, deployment: Deployment) -> UpstreamRequest:
        upstream = {name: value for name, value in body.items() if name in IMAGES_TAKEN}
        upstream["model"] = deployment.upstream_model
        return self._request("images/generations", upstream, deployment)

    def parse_images_response(self, data: bytes, *, model: str) -> tuple[JSON, Usage]:
        payload = load_object(data, self.name)
        return payload, usage_from(payload)


def reasoning_controls(
    upstream: JSON, asked: reasoning.Reasoning, field: str, body: JSON, cap: int | None
) -> None:
    """The caller's reasoning in the field(s) the provider reads (see options.py)."""
    if field == "reasoning":  # OpenRouter: its own object, as the caller would send it
        given = body.get("reasoning")
        upstream["reasoning"] = given if given is not None else {"effort": asked.effort}
        return
    if field == "thinking":  # DeepSeek: a switch, and an effort beside it
        upstream["thinking"] = {"type": "enabled" if asked.on else "disabled"}
        if asked.on and (asked.effort or asked.max_tokens):
            upstream["reasoning_effort"] = asked.effort_for(cap)
        return
    upstream["reasoning_effort"] = asked.effort_for(cap)


@cache
def chat_fields(options: ProviderOptions) -> tuple[frozenset[str], frozenset[str]]:
    """The chat fields a provider with these options is sent as the caller gave them, and
    the sampling extras it does not take (a 400: the caller asked for them)."""
    return _chat_fields(options.extra_fields)


@lru_cache(maxsize=64)  # (a few sets of extras; a frozenset keeps its hash: a cheap hit)
def _chat_fields(extra_fields: frozenset[str]) -> tuple[frozenset[str], frozenset[str]]:
    return CHAT_FORWARDED | extra_fields, SAMPLING_EXTRAS - extra_fields


class AzureOpenAIProvider(OpenAIProvider):
    """Azure OpenAI: the deployment name is in the path, the key in `api-key`."""

    name = "azure"

    def url(self, deployment: Deployment, path: str) -> str:
        return (
            f"{deployment.base_url}/openai/deployments/{deployment.upstream_model}/{path}"
            f"?api-version={deployment.api_version}"
        )

    def headers(self, deployment: Deployment) -> dict[str, str]:
        return {
            "content-type": "application/json",
            "api-key": deployment.api_key,
            **deployment.extra_headers,
        }


class OpenAIStreamTranslator(StreamTranslator):
    """Relays OpenAI chunks as they are, renaming the model and keeping the provider's id.

    The provider is always asked for usage; its usage chunk (choices == []) is held back
    and re-sent by `close()` only when the client asked for it, and the `usage: null`
    field is dropped from chunks of clients that did not.
    """

    def __init__(self, *, model: str, include_usage: bool, secret: str = "") -> None:
        # The stream's id is the provider's, from its chunks: none is made here.
        super().__init__(model=model, include_usage=include_usage, stream_id="")
        self.secret = secret  # the operator's key: never repeated in an error message

    def feed(self, event: SSEEvent) -> list[JSON]:
        if event.data == "[DONE]":
            self.finished = True
            # The stream is complete: the provider's latest counts are its final ones (some
            # send them with the last choice rather than in a usage chunk of their own).
            self.final_usage = self.usage is not None
            return []
        try:
            chunk = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            raise upstream_invalid("openai") from None
        if not isinstance(chunk, dict):
            raise upstream_invalid("openai")
        if "error" in chunk:
            raise stream_error(chunk, self.secret)
        if chunk.get("id"):
            self.id = chunk["id"]
        if chunk.get("created"):
            self.created = chunk["created"]
        if usage := chunk.get("usage"):
            self.usage = usage_from(chunk)
        choices = chunk.get("choices")
        if not choices:
            if usage:  # the usage chunk, after the last choice: close() sends it if asked
                self.final_usage = True
            return []
        if not isinstance(choices, list):
            raise upstream_invalid("openai")
        self.count_choices(choices)
        chunk["model"] = self.model
        if self.include_usage:
            chunk["usage"] = None
        else:
            chunk.pop("usage", None)
        return [chunk]

    def count_choices(self, choices: list[Any]) -> None:
        """Each choice as the relay reads it: an object whose delta, if any, is an object
        whose content, if any, is text; all its output counted. (Text first: this runs for
        every event, and most deltas are text alone.)"""
        for choice in choices:
            if not isinstance(choice, dict):
                raise upstream_invalid("openai")
            delta = choice.get("delta") or {}
            if not isinstance(delta, dict):
                raise upstream_invalid("openai")
            content = delta.get("content")
            if content is not None:
                if not isinstance(content, str):
                    raise upstream_invalid("openai")
                if content.isascii():
                    self.ascii_chars += len(content)
                else:
                    self.count(content)
                if len(delta) > 1:
                    self.count_more(delta)
            elif delta:
                self.count_more(delta)
            if "reasoning_content" in delta or "reasoning" in delta:
                if self.show_reasoning:
                    reasoning.mirrored(delta)
                else:
                    for name in reasoning.REASONING_FIELDS:
                        delta.pop(name, None)

    def count_more(self, delta: JSON) -> None:
        """A delta's output besides its content: refusal, reasoning and tool calls."""
        if isinstance(refusal := delta.get("refusal"), str):
            self.count(refusal)
        # DeepSeek's reasoning_content or OpenRouter's (and vLLM's) reasoning: the same text
        # when a provider sends both, so counted once.
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str):
            self.count(reasoning)
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                if isinstance(call, dict):
                    self.count_function(call.get("function"))
        self.count_function(delta.get("function_call"))  # the older functions API


class CompletionStreamTranslator(OpenAIStreamTranslator):
    """The legacy completions API's stream: `text_completion` chunks whose choices carry
    `text` (not a delta), relayed as OpenAI's are."""

    def count_choices(self, choices: list[Any]) -> None:
        for choice in choices:
            text = choice.get("text") if isinstance(choice, dict) else None
            if text is None:
                if not isinstance(choice, dict):
                    raise upstream_invalid("openai")
                continue
            if not isinstance(text, str):
                raise upstream_invalid("openai")
            self.count(text)

    def usage_chunk(self) -> JSON:
        return {**super().usage_chunk(), "object": "text_completion"}


def stream_error(chunk: JSON, secret: str = "") -> GatewayError:
    error = chunk.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    message = redact(message, secret) if isinstance(message, str) else ""
    if not message:
        message = "the provider failed mid-stream"
    return GatewayError(502, message, type=API_ERROR)
