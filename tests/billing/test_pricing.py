"""billing.pricing, pure: token and image costs in exact nano-dollars, the cached-prompt
price, one rounding up per charge, the reservation at full price; the integer arithmetic
checked against Decimal by Hypothesis."""

from decimal import ROUND_CEILING, Decimal

from hypothesis import given
from hypothesis import strategies as st

from billing import pricing

PRICES = {"prompt": "2.50", "completion": "10.00", "cached_prompt": "1.25"}


def test_token_cost_is_exact_in_nanodollars():
    cost = pricing.token_cost_nanos(PRICES, prompt_tokens=1000, completion_tokens=100)
    assert cost == 1000 * 2500 + 100 * 10_000


def test_cached_prompt_tokens_use_the_cached_price_or_fall_back():
    cost = pricing.token_cost_nanos(
        PRICES, prompt_tokens=1000, completion_tokens=0, cached_tokens=400
    )
    assert cost == 600 * 2500 + 400 * 1250
    no_cache_price = {"prompt": "2.50"}
    assert pricing.token_cost_nanos(
        no_cache_price, prompt_tokens=10, completion_tokens=0, cached_tokens=10
    ) == (10 * 2500)


def test_a_fraction_rounds_up_once_per_charge():
    assert pricing.token_cost_nanos({"prompt": "0.0001"}, prompt_tokens=1, completion_tokens=0) == 1
    assert (
        pricing.token_cost_nanos({"prompt": "0.0001"}, prompt_tokens=15, completion_tokens=0) == 2
    )


def test_image_cost_by_quality_and_size():
    prices = {"image": {"standard/1024x1024": "0.04", "hd/1024x1792": "0.12"}}
    assert pricing.image_cost_nanos(prices, quality="standard", size="1024x1024", n=2) == 80_000_000
    assert pricing.image_cost_nanos(prices, quality="hd", size="1024x1792", n=1) == 120_000_000


def test_the_reservation_prices_every_token_at_the_full_price():
    reserved = pricing.max_cost_nanos(PRICES, prompt_tokens=300, completion_tokens=1000)
    assert reserved == 1000 * 10_000 + 300 * 2500


prices = st.decimals(min_value=0, max_value=1000, places=6, allow_nan=False).map(str)
counts = st.integers(min_value=0, max_value=10**7)


@given(prices, prices, st.one_of(st.none(), prices), counts, counts, counts)
def test_integer_pricing_matches_exact_decimal_arithmetic(
    prompt, completion, cached, prompt_tokens, completion_tokens, cached_tokens
):
    """The hot path's integer fractions give what Decimal arithmetic gives, rounded up once."""
    table = {"prompt": prompt, "completion": completion}
    if cached is not None:
        table["cached_prompt"] = cached
    cached_tokens = min(cached_tokens, prompt_tokens)
    per_token = {name: Decimal(value) * 1000 for name, value in table.items()}
    expected = (
        (prompt_tokens - cached_tokens) * per_token["prompt"]
        + cached_tokens * per_token.get("cached_prompt", per_token["prompt"])
        + completion_tokens * per_token["completion"]
    ).to_integral_value(rounding=ROUND_CEILING)
    assert pricing.token_cost_nanos(
        table,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cached_tokens=cached_tokens,
    ) == int(expected)


def test_prices_given_as_numbers_cost_the_same_as_strings():
    as_numbers = {"prompt": 2.5, "completion": 10, "cached_prompt": 1.25}
    for tokens in (0, 1, 999, 123_457):
        assert pricing.token_cost_nanos(
            as_numbers, prompt_tokens=tokens, completion_tokens=tokens, cached_tokens=tokens // 3
        ) == pricing.token_cost_nanos(
            PRICES, prompt_tokens=tokens, completion_tokens=tokens, cached_tokens=tokens // 3
        )
