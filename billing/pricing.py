"""What a call costs, in integer nano-dollars, from the catalog's prices.

Prices are US dollars per million tokens as decimal strings, so one token costs
price * 1000 nano-dollars, exactly. A charge that is not whole rounds up once (money.py).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from typing import Any

NANOS_PER_TOKEN_PER_USD_PER_MTOK = Decimal(1000)
DEFAULT_OUTPUT_CAP_TOKENS = 4096  # reserve for this many output tokens if max_tokens is unset
BYTES_PER_TOKEN_ESTIMATE = 3  # conservative: real text averages about 4


def _per_token(prices: dict[str, Any], name: str, fallback: str | None = None) -> Decimal:
    value = prices.get(name)
    if value is None and fallback:
        value = prices.get(fallback)
    return Decimal(str(value or 0)) * NANOS_PER_TOKEN_PER_USD_PER_MTOK


def _ceil(amount: Decimal) -> int:
    return int(amount.to_integral_value(rounding=ROUND_CEILING))


def token_cost_nanos(
    prices: dict[str, Any], *, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0
) -> int:
    uncached = max(prompt_tokens - cached_tokens, 0)
    amount = (
        uncached * _per_token(prices, "prompt")
        + cached_tokens * _per_token(prices, "cached_prompt", fallback="prompt")
        + completion_tokens * _per_token(prices, "completion")
    )
    return _ceil(amount)


def image_cost_nanos(prices: dict[str, Any], *, quality: str, size: str, n: int) -> int:
    table = prices.get("image") or {}
    each = table.get(f"{quality}/{size}") or table.get(f"standard/{size}") or 0
    return _ceil(Decimal(str(each)) * 1_000_000_000 * n)


def max_cost_nanos(prices: dict[str, Any], *, body_bytes: int, max_output_tokens: int) -> int:
    """An upper estimate for reserving credit before the call."""
    prompt_estimate = body_bytes // BYTES_PER_TOKEN_ESTIMATE + 1
    return token_cost_nanos(
        prices, prompt_tokens=prompt_estimate, completion_tokens=max_output_tokens
    )
