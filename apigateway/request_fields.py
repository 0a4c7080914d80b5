"""Which top-level request fields the gateway takes, per endpoint, and which it refuses.

A call is charged the model's token (or image) prices, so only options that those prices
cover are taken: a field that makes the provider bill more (a faster service tier, stored
completions, web search, predicted outputs, audio output, a router's plugins or its
`route` mode) is a 400 before anything is reserved or sent, and so is a field the gateway does
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
# OpenRouter's `reasoning` object is translated by each adapter (providers/reasoning.py);
# `models` and `provider` choose deployments (validation.routing_request takes them off).
CHAT_TAKEN = (
    CHAT_FORWARDED | OUTPUT_CAPS | SAMPLING_EXTRAS | {"metadata", "reasoning", "models", "provider"}
)
EMBEDDINGS_TAKEN = frozenset({"model", "input", "encoding_format", "dimensions", "user"})
IMAGES_TAKEN = frozenset(
    {"model", "prompt", "n", "size", "quality", "style", "response_format", "user"}
)
# The legacy completions API (a prompt, not messages); the output cap is the adapter's.
COMPLETIONS_FORWARDED = frozenset(
    {"model", "prompt", "suffix", "echo", "best_of", "n", "stop", "seed", "user"}
    | {"stream", "stream_options", "logprobs", "logit_bias"}
    | {"temperature", "top_p", "presence_penalty", "frequency_penalty"}
)
COMPLETIONS_TAKEN = COMPLETIONS_FORWARDED | {"max_tokens"}
MODERATIONS_TAKEN = frozenset({"model", "input"})

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
        name: _absent(f"'{name}' (a router's plugins) is not available.")
        for name in ("plugins", "transforms", "route")
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


def _asks(value: Any) -> bool:
    return value is not None and value is not False and value != {} and value != []


# Chat fields that Anthropic's and Gemini's wire formats have no place for, where a value
# asks for something the answer would then silently lack (token logprobs, a bias, tools
# offered the legacy way, a local server's sampler). Sampling hints with no counterpart
# (seed, penalties) are left out as OpenRouter leaves them out; these are not.
NOT_TRANSLATED = ("logprobs", "top_logprobs", "logit_bias", "functions", "function_call")
NOT_TRANSLATED_SAMPLERS = tuple(sorted(SAMPLING_EXTRAS))


def refuse_untranslated(body: JSON, provider: str) -> None:
    """400 for the first field a translating adapter would have to drop (see NOT_TRANSLATED)."""
    for name in (*NOT_TRANSLATED, *NOT_TRANSLATED_SAMPLERS):
        if _asks(body.get(name)):
            raise bad_request(
                f"'{name}' is not available for {provider} models such as "
                f"'{body.get('model')}': leave it out, or choose a model that takes it.",
                param=name,
                code=UNPRICED,
            )


def unsupported(name: str) -> GatewayError:
    """A field the gateway knows that this deployment's provider does not take."""
    return bad_request(f"Unrecognized request argument supplied: {name}", param=name, code=UNKNOWN)
