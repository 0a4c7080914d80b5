"""model_ids: how a caller's model id finds its catalog entry, and the 404s that help."""

from __future__ import annotations

from typing import Any

import pytest

from apigateway.catalog import CatalogEntry
from apigateway.errors import GatewayError
from apigateway.model_ids import closest, find, resolve


def entry(id: str, provider: str, upstream: str | None = None, **fields) -> CatalogEntry:
    values: dict[str, Any] = {
        "owned_by": provider,
        "created": 0,
        "mode": "chat",
        "context_window": None,
    }
    values |= {"max_output_tokens": None, "prices": {}}
    return CatalogEntry(id=id, provider=provider, upstream_model=upstream or id, **values | fields)


CATALOG = {
    e.id: e
    for e in (
        entry("gpt-4o", "openai"),
        entry("gpt-4o-mini", "openai"),
        entry("claude-3-5-haiku", "anthropic", "claude-3-5-haiku-20241022"),
        entry("gemini-2.5-pro", "gemini", owned_by="google"),
        entry("llama-70b", "groq", "llama-3.3-70b-versatile", owned_by="meta"),
        entry("llama-70b-together", "together", "llama-3.3-70b-versatile", owned_by="meta"),
        entry("meta-llama/Llama-3-8b", "vllm", "/models/llama3-8b"),
        entry("text-embedding-3-small", "openai", mode="embedding"),
    )
}


def everything(_: CatalogEntry) -> bool:
    return True


@pytest.mark.parametrize(
    ("given", "found"),
    [
        ("gpt-4o", "gpt-4o"),
        ("openai/gpt-4o", "gpt-4o"),
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
        ("anthropic/claude-3-5-haiku", "claude-3-5-haiku"),
        ("anthropic/claude-3-5-haiku-20241022", "claude-3-5-haiku"),
        ("google/gemini-2.5-pro", "gemini-2.5-pro"),  # owned_by
        ("gemini/gemini-2.5-pro", "gemini-2.5-pro"),  # provider
        ("meta-llama/Llama-3-8b", "meta-llama/Llama-3-8b"),  # an id with a slash of its own
        ("groq/llama-70b", "llama-70b"),
    ],
)
def test_resolves(given, found):
    assert resolve(given, CATALOG).id == found


@pytest.mark.parametrize(
    "given",
    [
        "anthropic/gpt-4o",  # the prefix must be the entry's provider or owner
        "openai/",
        "/gpt-4o",
        "llama-3.3-70b-versatile",  # two entries have this upstream name: ambiguous
        "gpt-4o-2024-08-06",
        "",
    ],
)
def test_does_not_resolve(given):
    assert resolve(given, CATALOG) is None


def test_find_checks_the_key_mode_and_configuration():
    assert find("openai/gpt-4o", CATALOG, allowed=(), available=everything).id == "gpt-4o"
    with pytest.raises(GatewayError) as raised:
        find("gpt-4o", CATALOG, allowed=["gpt-4o-mini"], available=everything)
    assert (raised.value.status, raised.value.code) == (404, "model_not_found")
    assert "Did you mean 'gpt-4o-mini'?" in raised.value.message
    with pytest.raises(GatewayError) as raised:
        find("text-embedding-3-small", CATALOG, allowed=(), available=everything, mode="chat")
    assert "/v1/embeddings" in raised.value.message
    with pytest.raises(GatewayError) as raised:
        find("claude-3-5-haiku", CATALOG, allowed=(), available=lambda e: e.provider != "anthropic")
    assert (raised.value.status, raised.value.code) == (404, "model_not_available")
    assert "anthropic" in raised.value.message


def test_suggestions_are_usable_models_only():
    with pytest.raises(GatewayError) as raised:
        find(
            "gpt-4o-mni",
            CATALOG,
            allowed=(),
            available=lambda e: e.id != "gpt-4o-mini",
            mode="chat",
        )
    assert "gpt-4o-mini" not in raised.value.message
    assert "Did you mean 'gpt-4o'?" in raised.value.message
    with pytest.raises(GatewayError) as raised:
        find("text-embeding-3-small", CATALOG, allowed=(), available=everything, mode="chat")
    assert "Did you mean" not in raised.value.message


def test_closest_looks_past_a_prefix():
    ids = ["gpt-4o", "gpt-4o-mini", "claude-3-5-haiku"]
    assert closest("openrouter/claude-3-5-haiku", ids) == ["claude-3-5-haiku"]
    assert closest("zzz", ids) == []
