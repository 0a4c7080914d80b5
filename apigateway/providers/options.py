"""What differs between providers that share a wire format, per provider name.

* `output_cap_field`: the request field the provider reads as the cap on a reply's
  length. OpenAI and Azure read `max_completion_tokens` (their reasoning models refuse
  `max_tokens`); the OpenAI-compatible APIs read `max_tokens`. The cap is sent in this
  field only, so that no provider reads a larger one than was paid for.
* `extra_fields`: sampling options beyond OpenAI's that the provider takes (self-hosted
  servers: top_k, min_p, repetition_penalty); any other provider answers 400 for them.
* `store_field`: the provider takes OpenAI's `store` (it is only ever sent as false).
* `remote_media`: the provider may be given https media URLs to fetch; a self-hosted
  server fetches from inside the operator's network, so by default it takes data: only.
* `reasoning_field`: how the provider takes a reasoning model's controls: OpenAI's
  `reasoning_effort` (the default), DeepSeek's `thinking` ({"type": "enabled"|"disabled"},
  with reasoning_effort beside it), or OpenRouter's `reasoning` object.
* `completions`: the provider serves OpenAI's legacy `/completions` (a prompt, not
  messages): OpenAI, Azure, vLLM, Ollama, Together, OpenRouter and, by default, a server of
  the operator's own. (DeepSeek's is a FIM beta at another base URL: configure it as a
  provider of its own.)
* `moderations`: the provider serves OpenAI's `/moderations` (OpenAI only).
* `responses_api`: the provider has OpenAI's Responses API (`POST {base_url}/responses`,
  with OpenAI's adapter), so /v1/responses calls are passed through to it; the others get
  them as chat completions, translated. OpenAI's only, by default.

settings.PROVIDERS entries (NEXEON_PROVIDERS) override these per provider. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

OUTPUT_CAP_FIELDS = ("max_completion_tokens", "max_tokens")
# Sampling options some servers take beyond OpenAI's: none changes what a token costs.
SAMPLING_EXTRAS = frozenset({"top_k", "min_p", "repetition_penalty"})
REASONING_FIELDS = ("reasoning_effort", "thinking", "reasoning")
FLAGS = ("store_field", "remote_media", "completions", "moderations", "responses_api")
OPTION_KEYS = frozenset({"output_cap_field", "extra_fields", "reasoning_field", *FLAGS})


@dataclass(frozen=True, slots=True)
class ProviderOptions:
    output_cap_field: str = "max_completion_tokens"
    extra_fields: frozenset[str] = frozenset()
    store_field: bool = True
    remote_media: bool = True
    reasoning_field: str = "reasoning_effort"
    completions: bool = False
    moderations: bool = False
    responses_api: bool = False


OPENAI = ProviderOptions(completions=True, moderations=True, responses_api=True)
AZURE = ProviderOptions(completions=True)
HOSTED = ProviderOptions("max_tokens", store_field=False)
HOSTED_WITH_COMPLETIONS = replace(HOSTED, completions=True)
SELF_HOSTED = ProviderOptions(
    "max_tokens",
    extra_fields=SAMPLING_EXTRAS,
    store_field=False,
    remote_media=False,
    completions=True,
)
# An endpoint named in NEXEON_PROVIDERS alone: most often a server of the operator's own
# (one with Azure's adapter is an Azure deployment: it reads max_completion_tokens).
CONFIGURED = ProviderOptions("max_tokens", store_field=False, remote_media=False, completions=True)
CONFIGURED_AZURE = replace(CONFIGURED, output_cap_field="max_completion_tokens")
BUILT_IN = {
    "openai": OPENAI,
    "azure": AZURE,
    "anthropic": HOSTED,
    "gemini": HOSTED,
    "mistral": HOSTED,
    "groq": HOSTED,
    "deepseek": replace(HOSTED, reasoning_field="thinking"),
    "together": HOSTED_WITH_COMPLETIONS,
    "xai": HOSTED,
    "openrouter": replace(HOSTED_WITH_COMPLETIONS, reasoning_field="reasoning"),
    "ollama": SELF_HOSTED,
    "vllm": SELF_HOSTED,
}


def options_for(provider: str, config: Mapping[str, Any]) -> ProviderOptions:
    """The provider's options: its built-in defaults (or CONFIGURED's), with what its
    configuration sets (already checked by `configured`)."""
    defaults = BUILT_IN.get(provider) or (
        CONFIGURED_AZURE if config.get("adapter") == "azure" else CONFIGURED
    )
    given = config.keys() & OPTION_KEYS
    if not given:
        return defaults
    changes = {key: config[key] for key in given}
    if "extra_fields" in changes:
        changes["extra_fields"] = frozenset(changes["extra_fields"])
    return replace(defaults, **changes)


def configured(name: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The options a NEXEON_PROVIDERS entry sets, checked; ValueError names what is wrong."""
    out: dict[str, Any] = {}
    if "output_cap_field" in given:
        if given["output_cap_field"] not in OUTPUT_CAP_FIELDS:
            raise ValueError(
                f"NEXEON_PROVIDERS[{name!r}].output_cap_field must be one of "
                f"{', '.join(OUTPUT_CAP_FIELDS)}"
            )
        out["output_cap_field"] = given["output_cap_field"]
    if "extra_fields" in given:
        extra = given["extra_fields"]
        known = isinstance(extra, list) and all(
            isinstance(field, str) and field in SAMPLING_EXTRAS for field in extra
        )
        if not known:
            raise ValueError(
                f"NEXEON_PROVIDERS[{name!r}].extra_fields must be a list of "
                f"{', '.join(sorted(SAMPLING_EXTRAS))}"
            )
        out["extra_fields"] = sorted(extra)
    if "reasoning_field" in given:
        if given["reasoning_field"] not in REASONING_FIELDS:
            raise ValueError(
                f"NEXEON_PROVIDERS[{name!r}].reasoning_field must be one of "
                f"{', '.join(REASONING_FIELDS)}"
            )
        out["reasoning_field"] = given["reasoning_field"]
    for flag in FLAGS:
        if flag in given:
            if not isinstance(given[flag], bool):
                raise ValueError(f"NEXEON_PROVIDERS[{name!r}].{flag} must be true or false")
            out[flag] = given[flag]
    return out
