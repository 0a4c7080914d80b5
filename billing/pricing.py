"""What a call costs, in integer nano-dollars, from the catalog's prices.

Prices are US dollars per million tokens as decimal strings, so one token costs
price * 1000 nano-dollars, exactly. A charge that is not whole rounds up once (money.py).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from functools import lru_cache
from math import lcm
from typing import Any

NANOS_PER_TOKEN_PER_USD_PER_MTOK = Decimal(1000)


@lru_cache(maxsize=4096)
def _nanos_per_token(price: str) -> tuple[int, int]:
    """A $/1M-token price as nano-dollars per token, an exact fraction (numerator,
    denominator): every call is priced twice, and integers keep Decimal off the hot path."""
    return (Decimal(price) * NANOS_PER_TOKEN_PER_USD_PER_MTOK).as_integer_ratio()


@lru_cache(maxsize=4096)
def _token_rates(prompt: str, cached: str, completion: str) -> tuple[int, int, int, int]:
    """The three per-token rates over one common denominator: (prompt, cached prompt,
    completion numerators, denominator). Cached per price triple, so that pricing a call
    is three multiplications and no Python call but this cache's lookup."""
    (pn, pd), (cn, cd), (on, od) = map(_nanos_per_token, (prompt, cached, completion))
    den = lcm(pd, cd, od)
    return pn * (den // pd), cn * (den // cd), on * (den // od), den


def _ceil(amount: Decimal) -> int:
    return int(amount.to_integral_value(rounding=ROUND_CEILING))


def token_cost_nanos(
    prices: dict[str, Any], *, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0
) -> int:
    """The exact cost, rounded up once: sum(tokens * n / d) over the three rates."""
    uncached = max(prompt_tokens - cached_tokens, 0)
    prompt, cached, completion = (
        prices.get("prompt"),
        prices.get("cached_prompt"),
        prices.get("completion"),
    )
    if cached is None:
        cached = prompt  # no cache discount: cached tokens cost what other prompt tokens do
    p, c, o, den = _token_rates(str(prompt or 0), str(cached or 0), str(completion or 0))
    num = uncached * p + cached_tokens * c + completion_tokens * o
    return -(-num // den)


def image_cost_nanos(prices: dict[str, Any], *, quality: str, size: str, n: int) -> int:
    table = prices.get("image") or {}
    each = table.get(f"{quality}/{size}") or table.get(f"standard/{size}") or 0
    return _ceil(Decimal(str(each)) * 1_000_000_000 * n)


def max_cost_nanos(prices: dict[str, Any], *, prompt_tokens: int, completion_tokens: int) -> int:
    """The most a call of at most these many tokens can cost (what its reservation
    covers): every prompt token at the full prompt price."""
    return token_cost_nanos(
        prices, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
    )


def with_markup(prices: dict[str, Any], percent: Decimal) -> dict[str, Any]:
    """The customer's prices: every catalog price times (1 + percent / 100), exactly."""
    if not percent:
        return prices
    factor = 1 + percent / 100

    def scaled(value: Any) -> Any:
        if isinstance(value, dict):
            return {name: scaled(inner) for name, inner in value.items()}
        return _plain(Decimal(str(value)) * factor)

    return {name: scaled(value) for name, value in prices.items()}


def _plain(amount: Decimal) -> str:
    """A decimal string without exponent or trailing zeros ("0.0000025", "10")."""
    return format(amount.normalize(), "f")


def per_token_usd(price_per_million: Any) -> str:
    return _plain(Decimal(str(price_per_million or 0)) / 1_000_000)


def public_pricing(prices: dict[str, Any]) -> dict[str, Any]:
    """OpenRouter's `pricing` object: US dollars per token (or per image / request) as
    decimal strings, so a caller can check every charge. `images` lists every size and
    quality (OpenRouter's `image` is the standard 1024x1024 one)."""
    images = prices.get("image") or {}
    result: dict[str, Any] = {
        "prompt": per_token_usd(prices.get("prompt")),
        "completion": per_token_usd(prices.get("completion")),
        "request": "0",
        "image": _plain(Decimal(str(images.get("standard/1024x1024") or 0))),
    }
    if prices.get("cached_prompt") is not None:
        result["input_cache_read"] = per_token_usd(prices["cached_prompt"])
    if images:
        result["images"] = {variant: _plain(Decimal(str(p))) for variant, p in images.items()}
    return result
