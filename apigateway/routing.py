"""Model → deployments: which adapter, which address, which operator key, which time-outs.

A catalog model is served by its primary deployment (provider + upstream model) and the
`deployments` the catalog lists with it, which share its calls by weight (apigateway/
balance.py orders them per call), then, in order, by its `fallbacks` (another key, region
or provider); a deployment whose provider the operator has not configured is left out.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

from apigateway import demo
from apigateway.balance import salt_of
from apigateway.catalog import CatalogEntry
from apigateway.providers.base import Deployment, Provider
from apigateway.providers.options import options_for
from apigateway.upstream_tls import context_for

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
    return _adapter_name(provider, settings.PROVIDERS.get(provider))


def _adapter_name(provider: str, config: dict[str, Any] | None) -> str:
    return (config or {}).get("adapter") or NATIVE_ADAPTERS.get(provider, "openai")


def is_configured(provider: str) -> bool:
    return _configured(provider, settings.PROVIDERS.get(provider))


def _configured(provider: str, config: dict[str, Any] | None) -> bool:
    if not config or not config.get("base_url"):
        return False
    has_key = config.get("api_key") or config.get("api_keys")
    return bool(has_key) or provider in KEYLESS or "adapter" in config


@dataclass(slots=True)
class Route:
    """One deployment a call may be sent to, with the adapter that speaks its wire format,
    its own time-outs (the provider's, else UPSTREAM_TIMEOUT / UPSTREAM_CONNECT_TIMEOUT) and
    TLS context (apigateway/upstream_tls.py; None: the system's trust store)."""

    deployment: Deployment
    adapter: Provider
    connect_timeout: float
    read_timeout: float
    key: str  # the circuit breaker's name for it: "provider/upstream_model" ("provider#2/..."
    # for the provider's second key)
    entry: CatalogEntry  # the model it serves: its id names the answer, its prices bill it
    tls: ssl.SSLContext | None = None
    weight: float | None = None  # its share of the model's calls; None: an ordered fallback
    salt: int = 0  # its key hashed, for balance.ordered
    local: demo.LocalServer | None = None  # answers in process instead of the network (demo)

    @property
    def provider(self) -> str:
        return self.deployment.provider


# Every call asks for its model's routes, which change only with the catalog (new entries)
# or the settings: they are made once per entry and PROVIDERS object, id(entry) -> (entry,
# PROVIDERS, routes). Holding the entry keeps its id from being reused. PROVIDERS is
# replaced, never edited in place, when it changes at run time (tests do so through
# tests.apigateway.conftest's `providers`); other settings changes clear this.
_made: dict[int, tuple[CatalogEntry, dict[str, Any], tuple[Route, ...]]] = {}
ROUTES_KEPT = 4096  # entries of replaced catalogs stay until this many


def deployments_for(entry: CatalogEntry) -> tuple[Route, ...]:
    """The balanced deployments (the primary, then the catalog's `deployments`), then the
    catalog's fallbacks, in order: only configured ones, each once. Empty when none is
    configured."""
    providers = settings.PROVIDERS
    made = _made.get(id(entry))
    if made is not None and made[0] is entry and made[1] is providers:
        return made[2]
    routes = _routes_of(entry, providers)
    if len(_made) >= ROUTES_KEPT:
        _made.clear()
    _made[id(entry)] = (entry, providers, routes)
    return routes


def _forget_routes(**_: object) -> None:
    _made.clear()


setting_changed.connect(_forget_routes)


def _routes_of(entry: CatalogEntry, providers: dict[str, Any]) -> tuple[Route, ...]:
    if not entry.fallbacks and not entry.deployments:
        return tuple(
            _routes_of_deployment(entry, providers, entry.provider, entry.upstream_model, 1.0)
        )
    # The primary weighs 1 unless the deployments list it with another weight.
    weights = {(entry.provider, entry.upstream_model): 1.0}
    for provider, upstream_model, share in entry.deployments:
        weights[(provider, upstream_model)] = share
    listed: list[tuple[str, str, float | None]] = [
        (*deployment, weight) for deployment, weight in weights.items()
    ]
    listed += [(provider, upstream_model, None) for provider, upstream_model in entry.fallbacks]
    routes: dict[str, Route] = {}
    for provider, upstream_model, weight in listed:
        for found in _routes_of_deployment(entry, providers, provider, upstream_model, weight):
            routes.setdefault(found.key, found)
    return tuple(routes.values())


def _routes_of_deployment(
    entry: CatalogEntry,
    providers: dict[str, Any],
    provider: str,
    upstream_model: str,
    weight: float | None,
) -> list[Route]:
    """One route per key of the provider (`api_keys`), sharing the deployment's weight."""
    keys = (providers.get(provider) or {}).get("api_keys")
    if not keys:
        found = _route(entry, providers, provider, upstream_model, weight)
        return [] if found is None else [found]
    share = None if weight is None else weight / len(keys)
    return [
        found
        for number, key in enumerate(keys, start=1)
        if (found := _route(entry, providers, provider, upstream_model, share, key, number))
    ]


def _route(
    entry: CatalogEntry,
    providers: dict[str, Any],
    provider: str,
    upstream_model: str,
    weight: float | None,
    api_key: str | None = None,
    number: int = 1,
) -> Route | None:
    config = providers.get(provider)
    if config is None or not _configured(provider, config):
        return None
    name = _adapter_name(provider, config)
    deployment = Deployment(
        provider,
        upstream_model,
        config["base_url"],
        config.get("api_key", "") if api_key is None else api_key,
        config.get("headers", {}),
        entry.max_output_tokens,
        settings.AZURE_OPENAI_API_VERSION if name == "azure" else None,
        options_for(provider, config),
        reasoning=entry.reasoning,
        structured_output=entry.structured_output,
    )
    # The breaker's and the logs' name: the provider's second key is "openai#2/gpt-4o".
    key = f"{provider}/{upstream_model}" if number == 1 else f"{provider}#{number}/{upstream_model}"
    return Route(
        deployment,
        adapter(name),
        config.get("connect_timeout") or settings.UPSTREAM_CONNECT_TIMEOUT,
        config.get("timeout") or settings.UPSTREAM_TIMEOUT,
        key,
        entry,
        context_for(config),
        weight,
        salt_of(key),
        demo.LOCAL if config["base_url"] == demo.BASE_URL else None,
    )


def has_routes(entry: CatalogEntry) -> bool:
    """is_available, from the routes made once per entry (what every call asks)."""
    return bool(deployments_for(entry))


def is_available(entry: CatalogEntry) -> bool:
    """Has the model a configured deployment (primary, balanced or fallback)?"""
    return (
        is_configured(entry.provider)
        or any(is_configured(provider) for provider, _ in entry.fallbacks)
        or any(is_configured(provider) for provider, _, _ in entry.deployments)
    )
