"""What the catalog says about its models in public: /v1/models (the models a key can call
now) and the public models page with its JSON form (every enabled model, available or not).

Both are built from the same CatalogEntry (customer prices, markup included) by
`model_object`; the page adds what a person choosing a model wants to compare. Pure, but
for `catalog_listing`, which reads the catalog in one query.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from apigateway import demo, routing
from apigateway.catalog import CatalogEntry, read_entries
from billing.pricing import public_pricing

# The /v1 endpoints that serve each catalog mode (app.POST_ENDPOINTS, CATALOG_MODES).
ENDPOINTS = {
    "chat": ("/v1/chat/completions", "/v1/responses", "/v1/messages"),
    "completion": ("/v1/completions",),
    "embedding": ("/v1/embeddings",),
    "image": ("/v1/images/generations",),
    "moderation": ("/v1/moderations",),
}
MODE_ORDER = ("chat", "completion", "embedding", "image", "moderation")
CAPABILITY_LABELS = {
    "streaming": "Streaming",
    "tools": "Tools",
    "structured_output": "Structured output",
    "reasoning": "Reasoning",
}
# Token prices, as the page names them (billing/pricing.py: $ per million tokens).
TOKEN_PRICES = (
    ("prompt", "Input"),
    ("completion", "Output"),
    ("cached_prompt", "Cached input"),
    ("cache_write_prompt", "Cache write"),
    ("cache_write_prompt_1h", "Cache write (1 h)"),
)


def model_object(entry: CatalogEntry) -> dict[str, Any]:
    """A model as /v1/models lists it (OpenAI's fields, OpenRouter's context and pricing)."""
    found = {
        "id": entry.id,
        "object": "model",
        "created": entry.created,
        "owned_by": entry.owned_by,
        "context_length": entry.context_window,
        "pricing": public_pricing(entry.prices),
    }
    if entry is demo.ENTRY:
        found["name"] = demo.NAME  # labelled, so nobody takes its echo for a real model
    return found


def capabilities(entry: CatalogEntry) -> tuple[str, ...]:
    """What a caller can ask of the model, from its mode and the catalog's flags. Every
    chat adapter (OpenAI-shaped, Anthropic, Gemini) streams and takes function tools and
    response_format; Anthropic models take JSON schemas natively only when the catalog
    marks them `structured_output` (else as an instruction, so not listed)."""
    found: list[str] = []
    if entry.mode in ("chat", "completion"):
        found.append("streaming")
    if entry.mode == "chat":
        found.append("tools")
        native = routing.adapter_name(entry.provider) != "anthropic" or entry.structured_output
        if native:
            found.append("structured_output")
        if entry.reasoning:
            found.append("reasoning")
    return tuple(found)


@dataclass(frozen=True, slots=True)
class PriceLine:
    label: str
    usd: str  # "$2.50"
    unit: str  # "per 1M tokens", "per image (hd/1024x1024)"


@dataclass(frozen=True, slots=True)
class ModelListing:
    entry: CatalogEntry
    available: bool

    @property
    def capabilities(self) -> tuple[str, ...]:
        return capabilities(self.entry)

    @property
    def capability_labels(self) -> list[str]:
        return [CAPABILITY_LABELS[name] for name in self.capabilities]

    @property
    def endpoints(self) -> tuple[str, ...]:
        return ENDPOINTS.get(self.entry.mode, ())

    @property
    def prices(self) -> list[PriceLine]:
        return price_lines(self.entry.prices)

    @property
    def search_text(self) -> str:
        """What the page's filter box matches (lower case)."""
        entry = self.entry
        words = (entry.id, entry.provider, entry.owned_by, entry.mode, *self.capabilities)
        return " ".join(words).lower().replace("_", " ")

    def as_json(self) -> dict[str, Any]:
        return {
            **model_object(self.entry),
            "provider": self.entry.provider,
            "mode": self.entry.mode,
            "max_output_tokens": self.entry.max_output_tokens,
            "prices_per_million_tokens": {
                name: str(self.entry.prices[name])
                for name, _ in TOKEN_PRICES
                if self.entry.prices.get(name) is not None
            },
            "capabilities": list(self.capabilities),
            "endpoints": list(self.endpoints),
            "available": self.available,
        }


def usd(amount: Any) -> str:
    """$ with at least two decimals and every decimal the price has ("$0.075", "$10.00")."""
    value = Decimal(str(amount))
    # (a price is finite: its exponent is an int, not NaN's or Infinity's letter)
    places = max(2, -value.normalize().as_tuple().exponent)  # type: ignore[operator]
    return f"${value:,.{places}f}"


def price_lines(prices: dict[str, Any]) -> list[PriceLine]:
    """The model's prices, or none for a free model (the page says Free)."""
    tokens = [(name, label) for name, label in TOKEN_PRICES if prices.get(name) is not None]
    images = prices.get("image") or {}
    amounts = [prices[name] for name, _ in tokens] + list(images.values())
    if not any(Decimal(str(amount)) for amount in amounts):
        return []
    lines = [PriceLine(label, usd(prices[name]), "per 1M tokens") for name, label in tokens]
    for variant, each in images.items():
        lines.append(PriceLine("Image", usd(each), f"per image ({variant})"))
    return lines


@dataclass(frozen=True, slots=True)
class Filters:
    query: str = ""
    mode: str = ""
    available_only: bool = False

    def keeps(self, listing: ModelListing) -> bool:
        if self.mode and listing.entry.mode != self.mode:
            return False
        if self.available_only and not listing.available:
            return False
        return all(word in listing.search_text for word in self.query.lower().split())


def catalog_listing(filters: Filters = Filters()) -> list[ModelListing]:
    """Every enabled catalog model (one query), with whether a configured provider can
    serve it on this server now; chat models first, then by id."""
    listings = [
        ModelListing(entry, routing.is_available(entry)) for entry in read_entries().values()
    ]
    listings.sort(key=lambda item: (_mode_rank(item.entry.mode), item.entry.id))
    return [listing for listing in listings if filters.keeps(listing)]


def _mode_rank(mode: str) -> int:
    return MODE_ORDER.index(mode) if mode in MODE_ORDER else len(MODE_ORDER)
