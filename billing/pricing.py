"""What a call costs, in integer nano-dollars, from the catalog's prices.

Prices are US dollars per million tokens as decimal strings, so one token costs
price * 1000 nano-dollars, exactly. A charge that is not whole rounds up once (money.py).

Prompt tokens have up to four prices: `prompt`; `cached_prompt` for those read from the
provider's cache; `cache_write_prompt` for those written to it (Anthropic: 1.25 times the
prompt price, for five minutes) and `cache_write_prompt_1h` for those written for an hour
(Anthropic: twice the prompt price). A missing one costs what `prompt` does (a missing 1h
price: what `cache_write_prompt` does).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from functools import lru_cache
from math import lcm
from typing import Any

from billing.money import NANOS_PER_USD

NANOS_PER_TOKEN_PER_USD_PER_MTOK = Decimal(1000)


@lru_cache(maxsize=4096)
def _nanos_per_token(price: str) -> tuple[int, int]:
    """A $/1M-token price as nano-dollars per token, an exact fraction (numerator,
    denominator): every call is priced twice, and integers keep Decimal off the hot path."""
    return (Decimal(price) * NANOS_PER_TOKEN_PER_USD_PER_MTOK).as_integer_ratio()


@lru_cache(maxsize=4096)
def _token_rates(*prices: str) -> tuple[int, ...]:
    """The per-token rates over one common denominator: (numerators..., denominator), in
    the order given. Cached per price tuple, so that pricing a call is a few
    multiplications and no Python call but this cache's lookup."""
    fractions = [_nanos_per_token(price) for price in prices]
    den = lcm(*(d for _, d in fractions))
    return (*(n * (den // d) for n, d in fractions), den)


def _ceil(amount: Decimal) -> int:
    return int(amount.to_integral_value(rounding=ROUND_CEILING))


def _prompt_prices(prices: dict[str, Any]) -> tuple[str, str, str, str]:
    """(prompt, cached, 5m cache write, 1h cache write) prices, the missing ones filled in
    (see the module's docstring)."""
    prompt = str(prices.get("prompt") or 0)
    cached = prices.get("cached_prompt")
    write = prices.get("cache_write_prompt")
    write = prompt if write is None else str(write)
    write_1h = prices.get("cache_write_prompt_1h")
    return (
        prompt,
        prompt if cached is None else str(cached),
        write,
        (write if write_1h is None else str(write_1h)),
    )


def token_cost_nanos(
    prices: dict[str, Any],
    *,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int = 0,
    cache_write_tokens: int = 0,
    cache_write_1h_tokens: int = 0,
) -> int:
    """The exact cost, rounded up once: sum(tokens * n / d) over the rates. Cached and
    cache-written tokens are parts of prompt_tokens (the 1h writes, of the writes)."""
    write_5m = max(cache_write_tokens - cache_write_1h_tokens, 0)
    uncached = max(prompt_tokens - cached_tokens - write_5m - cache_write_1h_tokens, 0)
    prompt, cached, write, write_1h = _prompt_prices(prices)
    completion = str(prices.get("completion") or 0)
    if not cache_write_tokens:  # (the usual call: three rates)
        p, c, o, den = _token_rates(prompt, cached, completion)
        num = uncached * p + cached_tokens * c + completion_tokens * o
        return -(-num // den)
    p, c, w, h, o, den = _token_rates(prompt, cached, write, write_1h, completion)
    num = uncached * p + cached_tokens * c + write_5m * w + cache_write_1h_tokens * h
    return -(-(num + completion_tokens * o) // den)


def image_cost_nanos(prices: dict[str, Any], *, quality: str, size: str, n: int) -> int:
    table = prices.get("image") or {}
    each = table.get(f"{quality}/{size}") or table.get(f"standard/{size}") or 0
    return _ceil(Decimal(str(each)) * NANOS_PER_USD * n)


def max_cost_nanos(prices: dict[str, Any], *, prompt_tokens: int, completion_tokens: int) -> int:
    """The most a call of at most these many tokens can cost (what its reservation
    covers): every prompt token at the highest prompt price (a cache write can cost more
    than an ordinary prompt token)."""
    highest = _highest(_prompt_prices(prices))
    completion = str(prices.get("completion") or 0)
    p, o, den = _token_rates(highest, completion)
    return -(-(prompt_tokens * p + completion_tokens * o) // den)


@lru_cache(maxsize=4096)
def _highest(rates: tuple[str, ...]) -> str:
    """The highest of a model's prompt-side prices (every call reserves with it: cached)."""
    return max(rates, key=Decimal)


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
    if prices.get("cache_write_prompt") is not None:
        result["input_cache_write"] = per_token_usd(prices["cache_write_prompt"])
    if prices.get("cache_write_prompt_1h") is not None:
        result["input_cache_write_1h"] = per_token_usd(prices["cache_write_prompt_1h"])
    if images:
        result["images"] = {variant: _plain(Decimal(str(p))) for variant, p in images.items()}
    return result
