"""Which top-level request fields the gateway takes, per endpoint, and which it refuses.

A call is charged the model's token (or image) prices, so only options that those prices
cover are taken: a field that makes the provider bill more (a faster service tier, stored
completions, web search, predicted outputs, audio output, a router's plugins or provider
routing) is a 400 before anything is reserved or sent, and so is a field the gateway does
not know, as OpenAI answers one ("Unrecognized request argument supplied: ..."). Adapters
build the provider's body from these lists, so nothing else reaches a provider. Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apigateway.errors import GatewayError, bad_request
from apigateway.providers.options import SAMPLING_EXTRAS

JSON = dict[str, Any]

# OpenAI's chat completion fields that OpenAI-shaped providers are sent as they are.
# (The output cap and `store` are the adapter's to set; see providers/options.py.)
CHAT_FORWARDED = frozenset(
    {"model", "messages", "stream", "stream_options", "n", "stop", "seed", "user"}
    | {"temperature", "top_p", "presence_penalty", "frequency_penalty", "logit_bias"}
    | {"logprobs", "top_logprobs", "reasoning_effort", "verbosity", "response_format"}
    | {"tools", "tool_choice", "parallel_tool_calls", "functions", "function_call"}
    | {"prompt_cache_key", "safety_identifier"}
)
OUTPUT_CAPS = frozenset({"max_tokens", "max_completion_tokens"})
# Taken and never forwarded: `metadata` only labels stored completions, which are off;
# OpenRouter's `reasoning` object is translated by each adapter (providers/reasoning.py).
CHAT_TAKEN = CHAT_FORWARDED | OUTPUT_CAPS | SAMPLING_EXTRAS | {"metadata", "reasoning"}
EMBEDDINGS_TAKEN = frozenset({"model", "input", "encoding_format", "dimensions", "user"})
IMAGES_TAKEN = frozenset(
    {"model", "prompt", "n", "size", "quality", "style", "response_format", "user"}
)

UNPRICED = "unsupported_parameter"
UNKNOWN = "unknown_parameter"


def _service_tier(value: Any) -> str | None:
    if value in (None, "auto", "default"):
        return None
    return (
        f"service_tier {value!r} is not available: calls run on the provider's standard "
        "tier ('auto' or 'default'), the one their price is for."
    )


def _store(value: Any) -> str | None:
    if value is None or value is False:
        return None
    if value is True:
        return "store: true is not available: completions are not stored with the provider."
    raise bad_request("'store' must be a boolean.", param="store")


def _modalities(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
        raise bad_request("'modalities' must be an array of strings.", param="modalities")
    if "audio" in value:
        return "Audio output is not available: 'modalities' may only ask for text."
    return None


def _absent(reason: str) -> Callable[[Any], str | None]:
    return lambda value: None if value is None else reason


# Chat fields that would be billed beyond the model's token prices: each is taken only with
# a value that costs nothing more (null, or the default), and is never forwarded.
CHAT_GUARDED: dict[str, Callable[[Any], str | None]] = {
    "service_tier": _service_tier,
    "store": _store,
    "modalities": _modalities,
    "audio": _absent("Audio output is not available through this API."),
    "web_search_options": _absent("Web search is not available through this API."),
    "prediction": _absent("Predicted outputs are not available through this API."),
    **{
        name: _absent(f"'{name}' (a router's plugins or provider routing) is not available.")
        for name in ("plugins", "transforms", "models", "route", "provider")
    },
}


def check(body: JSON, taken: frozenset[str], guarded: dict[str, Any] | None = None) -> None:
    """400 for the first field (in the caller's order) that is unknown or would be billed
    beyond the prices; the usual body costs one pass over its keys (a subset test)."""
    if body.keys() <= taken:
        return
    for name in body:
        if name in taken:
            continue
        judge = (guarded or {}).get(name)
        if judge is None:
            raise bad_request(
                f"Unrecognized request argument supplied: {name}", param=name, code=UNKNOWN
            )
        if (reason := judge(body[name])) is not None:
            raise bad_request(reason, param=name, code=UNPRICED)


def unsupported(name: str) -> GatewayError:
    """A field the gateway knows that this deployment's provider does not take."""
    return bad_request(f"Unrecognized request argument supplied: {name}", param=name, code=UNKNOWN)
