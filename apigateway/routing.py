"""Model → deployment: which adapter, which address, which operator key."""

from __future__ import annotations

from functools import cache

from django.conf import settings

from apigateway.catalog import CatalogEntry
from apigateway.providers.base import Deployment, Provider

# Providers whose wire format is not OpenAI's; every other provider name is OpenAI-shaped.
NATIVE_ADAPTERS = {"anthropic": "anthropic", "gemini": "gemini", "azure": "azure"}
# Local servers usually run without a key; they count as configured once they have a URL.
KEYLESS = {"ollama", "vllm"}


@cache
def adapter(name: str) -> Provider:
    if name == "anthropic":
        from apigateway.providers.anthropic import AnthropicProvider

        return AnthropicProvider()
    if name == "gemini":
        from apigateway.providers.gemini import GeminiProvider

        return GeminiProvider()
    from apigateway.providers.openai import AzureOpenAIProvider, OpenAIProvider

    return AzureOpenAIProvider() if name == "azure" else OpenAIProvider()


def adapter_name(provider: str) -> str:
    configured = settings.PROVIDERS.get(provider, {}).get("adapter")
    return configured or NATIVE_ADAPTERS.get(provider, "openai")


def is_configured(provider: str) -> bool:
    config = settings.PROVIDERS.get(provider)
    if not config or not config.get("base_url"):
        return False
    return bool(config.get("api_key")) or provider in KEYLESS or "adapter" in config


def deployment_for(entry: CatalogEntry) -> Deployment | None:
    """None when the operator has not configured the model's provider."""
    if not is_configured(entry.provider):
        return None
    config = settings.PROVIDERS[entry.provider]
    return Deployment(
        provider=entry.provider,
        upstream_model=entry.upstream_model,
        base_url=config["base_url"],
        api_key=config.get("api_key", ""),
        extra_headers=config.get("headers", {}),
        max_output_tokens=entry.max_output_tokens,
        api_version=settings.AZURE_OPENAI_API_VERSION if entry.provider == "azure" else None,
    )
