"""Prompt caching and native structured output on chat completions, through the openai SDK:
`cache_control` reaches Anthropic's blocks (and no other provider), cache writes and reads
are priced from the catalog, and `response_format: json_schema` uses the provider's own
structured output where the model has it."""

from __future__ import annotations

import json
from decimal import ROUND_CEILING, Decimal

import openai
import pytest

from apigateway.catalog import default_rows
from billing import pricing
from tests.fakes.anthropic import signature

DOCUMENT = "Here is a long document. " * 30
LONG_SYSTEM = "You are a careful assistant who answers in one short sentence. " * 20
EPHEMERAL = {"type": "ephemeral"}
ONE_HOUR = {"type": "ephemeral", "ttl": "1h"}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        "cache_control": EPHEMERAL,
    }
]


def cached_messages(question: str) -> list[dict]:
    return [
        {
            "role": "system",
            "content": [{"type": "text", "text": LONG_SYSTEM, "cache_control": EPHEMERAL}],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": DOCUMENT, "cache_control": ONE_HOUR},
                {"type": "text", "text": question},
            ],
        },
    ]


def prices_of(model: str) -> dict:
    return next(row for row in default_rows() if row["id"] == model)["prices"]


def expected_cost(prices: dict, usage, write_5m: int, write_1h: int) -> float:
    """The cost from the catalog's per-million prices, in exact decimals."""
    per_token = {name: Decimal(str(value)) / 10**6 for name, value in prices.items()}
    cached = usage.prompt_tokens_details.cached_tokens
    uncached = usage.prompt_tokens - cached - write_5m - write_1h
    dollars = (
        uncached * per_token["prompt"]
        + cached * per_token["cached_prompt"]
        + write_5m * per_token["cache_write_prompt"]
        + write_1h * per_token["cache_write_prompt_1h"]
        + usage.completion_tokens * per_token["completion"]
    )
    return float(dollars.quantize(Decimal("1e-9"), rounding=ROUND_CEILING))


def test_cache_control_reaches_claudes_blocks_and_caching_is_priced(tenant, fake_anthropic):
    client = tenant.client()
    first = client.chat.completions.create(
        model="claude-3-5-sonnet", messages=cached_messages("First question?"), tools=TOOLS
    )
    sent = fake_anthropic.requests[-1].json()
    assert sent["system"] == [{"type": "text", "text": LONG_SYSTEM, "cache_control": EPHEMERAL}]
    assert sent["messages"][0]["content"][0]["cache_control"] == ONE_HOUR
    assert "cache_control" not in sent["messages"][0]["content"][1]
    assert sent["tools"][0]["cache_control"] == EPHEMERAL
    written = first.usage.prompt_tokens_details.cache_write_tokens
    system_words, document_words = len(LONG_SYSTEM.split()), 5 * 30
    assert written >= system_words + document_words
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    prices = prices_of("claude-3-5-sonnet")
    one_hour = document_words  # the stretch that ends at the 1h breakpoint
    assert extra_cost(first) == expected_cost(prices, first.usage, written - one_hour, one_hour)

    second = client.chat.completions.create(
        model="claude-3-5-sonnet", messages=cached_messages("Second question?"), tools=TOOLS
    )
    details = second.usage.prompt_tokens_details
    assert details.cached_tokens == written  # the same prefix, read from the cache
    assert not details.cache_write_tokens
    assert extra_cost(second) == expected_cost(prices, second.usage, 0, 0)
    assert extra_cost(second) < extra_cost(first)


def extra_cost(completion) -> float:
    return completion.usage.model_extra["cost"]


def test_a_message_level_cache_control_marks_its_last_block(tenant, fake_anthropic):
    tenant.client().chat.completions.create(
        model="claude-3-5-sonnet",
        messages=[{"role": "user", "content": "Hello there", "cache_control": EPHEMERAL}],
    )
    block = fake_anthropic.requests[-1].json()["messages"][0]["content"][-1]
    assert block == {"type": "text", "text": "Hello there", "cache_control": EPHEMERAL}


def test_cache_control_is_stripped_for_providers_that_cache_by_themselves(
    tenant, fake_openai, fake_gemini
):
    client = tenant.client()
    for model, fake in (("gpt-4o-mini", fake_openai), ("gemini-2.5-flash", fake_gemini)):
        completion = client.chat.completions.create(
            model=model, messages=cached_messages("A question?"), tools=TOOLS
        )
        assert completion.choices[0].message.content is not None
        assert b"cache_control" not in fake.requests[-1].body


@pytest.mark.parametrize(
    "mark", [{"type": "persistent"}, {"type": "ephemeral", "ttl": "2h"}, "ephemeral"]
)
def test_a_malformed_cache_control_is_a_400(tenant, fake_anthropic, mark):
    with pytest.raises(openai.BadRequestError) as caught:
        tenant.client().chat.completions.create(
            model="claude-3-5-sonnet",
            messages=[
                {"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": mark}]}
            ],
        )
    assert "cache_control" in caught.value.message
    assert fake_anthropic.requests == []


# --- the reservation covers a prompt that is all cache writes ------------------------------


def test_a_prompt_written_to_the_1h_cache_never_costs_more_than_it_reserved():
    for row in default_rows():
        prices = row["prices"]
        if "prompt" not in prices:
            continue
        for prompt_tokens, completion_tokens in ((1, 0), (1000, 10), (199_999, 8192)):
            reserved = pricing.max_cost_nanos(
                prices, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
            )
            for write_1h in (0, prompt_tokens):
                cost = pricing.token_cost_nanos(
                    prices,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    cache_write_tokens=prompt_tokens,
                    cache_write_1h_tokens=write_1h,
                )
                assert cost <= reserved, row["id"]


def test_cache_writes_are_priced_at_their_own_rates():
    prices = {
        "prompt": "3.00",
        "completion": "15.00",
        "cached_prompt": "0.30",
        "cache_write_prompt": "3.75",
        "cache_write_prompt_1h": "6.00",
    }
    cost = pricing.token_cost_nanos(
        prices,
        prompt_tokens=1000,
        completion_tokens=10,
        cached_tokens=100,
        cache_write_tokens=300,
        cache_write_1h_tokens=200,
    )
    assert cost == 600 * 3000 + 100 * 300 + 100 * 3750 + 200 * 6000 + 10 * 15_000
    assert pricing.max_cost_nanos(prices, prompt_tokens=1000, completion_tokens=10) == (
        1000 * 6000 + 10 * 15_000
    )


def test_the_public_pricing_shows_the_cache_write_prices():
    shown = pricing.public_pricing(prices_of("claude-3-5-sonnet"))
    assert shown["input_cache_write"] == "0.00000375"
    assert shown["input_cache_write_1h"] == "0.000006"


# --- structured output ----------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "degrees": {"type": "number"}},
    "required": ["city", "degrees"],
    "additionalProperties": False,
}
RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "weather", "strict": True, "schema": SCHEMA},
}


def test_json_schema_uses_claudes_native_structured_output(tenant, fake_anthropic):
    completion = tenant.client().chat.completions.create(
        model="claude-opus-4-1",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        response_format=RESPONSE_FORMAT,
    )
    sent = fake_anthropic.requests[-1].json()
    assert sent["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert "system" not in sent  # no instruction in the prompt
    assert json.loads(completion.choices[0].message.content) == {"city": "Echo", "degrees": 1.5}


def test_json_schema_for_a_claude_without_structured_output_stays_an_instruction(
    tenant, fake_anthropic
):
    tenant.client().chat.completions.create(
        model="claude-3-5-sonnet",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        response_format=RESPONSE_FORMAT,
    )
    sent = fake_anthropic.requests[-1].json()
    assert "output_config" not in sent
    assert json.dumps(SCHEMA, separators=(",", ":")) in sent["system"]


def test_structured_output_and_thinking_together(tenant, fake_anthropic):
    completion = tenant.client().chat.completions.create(
        model="claude-opus-4-1",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        response_format=RESPONSE_FORMAT,
        reasoning_effort="low",
    )
    sent = fake_anthropic.requests[-1].json()
    assert sent["thinking"]["type"] == "enabled" and sent["output_config"]["format"]
    thought = "Thinking about: Weather in Paris?"
    details = completion.choices[0].message.model_extra["reasoning_details"]
    assert details[0]["signature"] == signature(thought)
    assert json.loads(completion.choices[0].message.content)["city"] == "Echo"
