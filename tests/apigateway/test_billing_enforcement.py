"""What the gateway charges and refuses: prices in /v1/models, usage.cost, spend limits,
/v1/credits and /v1/key, and credit held for calls in flight."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx
from django.conf import settings

from accounts.models import ApiKey
from accounts.services import api_key_create
from apigateway import catalog
from billing.models import EntryKind, LedgerEntry
from billing.money import nanos_to_usd
from credit.stores import current as credit_store
from tests.ledger_check import assert_balance_reconciles, available_nanos, held_nanos
from tests.support import forget_cached_key
from usage import pipeline

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello there"}]}
GPT_4O_PROMPT_NANOS = 2500  # $2.50 / 1M tokens
GPT_4O_COMPLETION_NANOS = 10_000  # $10.00 / 1M tokens


def test_models_carry_openrouter_style_pricing_per_token(tenant):
    models = {m["id"]: m for m in tenant.get("/models").json()["data"]}
    assert models["gpt-4o"]["pricing"] == {
        "prompt": "0.0000025",
        "completion": "0.00001",
        "request": "0",
        "image": "0",
        "input_cache_read": "0.00000125",
    }
    dalle = models["dall-e-3"]["pricing"]
    assert dalle["image"] == "0.04" and dalle["images"]["hd/1024x1792"] == "0.12"
    embedding = tenant.get("/models/text-embedding-3-small").json()["pricing"]
    assert embedding["prompt"] == "0.00000002" and embedding["completion"] == "0"


def test_usage_cost_in_body_and_header_is_what_the_ledger_books(tenant, fake_openai):
    completion = tenant.client().chat.completions.with_raw_response.create(**CHAT)
    parsed = completion.parse()
    usage = parsed.usage
    expected = (
        usage.prompt_tokens * GPT_4O_PROMPT_NANOS
        + usage.completion_tokens * GPT_4O_COMPLETION_NANOS
    )
    assert Decimal(completion.headers["x-nexeon-cost"]) == nanos_to_usd(expected)
    assert Decimal(str(usage.model_extra["cost"])) == nanos_to_usd(expected)
    pipeline.drain()
    entry = LedgerEntry.objects.get(kind=EntryKind.USAGE)
    assert entry.amount_nanos == -expected
    assert entry.api_key_id == ApiKey.objects.get(organization=tenant.organization).pk
    assert_balance_reconciles(tenant.organization.pk)


def test_a_streams_usage_chunk_carries_the_cost(tenant, fake_openai):
    stream = tenant.client().chat.completions.create(
        **CHAT, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    final = chunks[-1]
    assert final.choices == [] and final.usage is not None
    expected = (
        final.usage.prompt_tokens * GPT_4O_PROMPT_NANOS
        + final.usage.completion_tokens * GPT_4O_COMPLETION_NANOS
    )
    assert Decimal(str(final.usage.model_extra["cost"])) == nanos_to_usd(expected)
    assert all(chunk.usage is None for chunk in chunks[:-1])
    pipeline.drain()
    assert LedgerEntry.objects.get(kind=EntryKind.USAGE).amount_nanos == -expected
    assert_balance_reconciles(tenant.organization.pk)


def test_embeddings_report_their_cost(tenant, fake_openai):
    response = tenant.client().embeddings.with_raw_response.create(
        model="text-embedding-3-small", input=["one two three", "four"]
    )
    body = response.parse()
    expected = body.usage.prompt_tokens * 20  # $0.02 / 1M tokens
    assert Decimal(str(body.usage.model_extra["cost"])) == nanos_to_usd(expected)
    assert Decimal(response.headers["x-nexeon-cost"]) == nanos_to_usd(expected)


def test_the_operators_markup_raises_listed_and_charged_prices(tenant, fake_openai, settings):
    settings.PRICE_MARKUP_PERCENT = Decimal("10")
    catalog.snapshot.loaded_at = float("-inf")
    try:
        pricing = tenant.get("/models/gpt-4o").json()["pricing"]
        assert pricing["prompt"] == "0.00000275" and pricing["completion"] == "0.000011"
        usage = tenant.client().chat.completions.create(**CHAT).usage
        expected = usage.prompt_tokens * 2750 + usage.completion_tokens * 11_000
        assert Decimal(str(usage.model_extra["cost"])) == nanos_to_usd(expected)
    finally:
        settings.PRICE_MARKUP_PERCENT = Decimal("0")
        catalog.snapshot.loaded_at = float("-inf")


def test_credits_and_key_endpoints_follow_openrouters_shape(tenant, fake_openai):
    credits = tenant.get("/credits").json()
    assert credits == {"data": {"total_credits": 10.0, "total_usage": 0.0}}
    key = tenant.get("/key").json()["data"]
    assert key["label"] == "test"
    assert key["usage"] == 0 and key["limit"] is None and key["limit_remaining"] is None
    # The standard plan's default RPM per key (accounts/plans.py); no TPM by default.
    assert key["rate_limit"] == {"requests": 500, "tokens": None, "interval": "1m"}

    cost = Decimal(
        tenant.client().chat.completions.with_raw_response.create(**CHAT).headers["x-nexeon-cost"]
    )
    pipeline.drain()
    credits = tenant.get("/credits").json()["data"]
    assert Decimal(str(credits["total_usage"])) == cost
    assert credits["total_credits"] == 10.0
    assert Decimal(str(tenant.get("/key").json()["data"]["usage"])) == cost


def test_credits_and_key_need_a_key(tenant):
    for path in ("/credits", "/key"):
        response = httpx.get(f"{tenant.url}/v1{path}")
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "invalid_request_error"
        assert httpx.post(f"{tenant.url}/v1{path}", headers={}).status_code == 405


def chat_as(tenant, key: str, **extra) -> httpx.Response:
    return tenant.post("/chat/completions", {**CHAT, **extra}, key=key)


def limited_key(tenant, limit_usd: str) -> tuple[str, ApiKey]:
    created = api_key_create(organization=tenant.organization, name="capped")
    row = ApiKey.objects.get(pk=created.api_key.pk)
    row.monthly_spend_limit_nanos = int(Decimal(limit_usd) * 10**9)
    row.save()
    return created.plaintext, row


def test_a_keys_monthly_spend_limit_answers_402_when_reached(tenant, fake_openai):
    # One call costs a few tenths of a cent at most with max_tokens=50.
    key, _ = limited_key(tenant, "0.001")
    client = tenant.client(key=key)
    ok = client.chat.completions.create(**CHAT, max_tokens=50)
    spent = Decimal(str(ok.usage.model_extra["cost"]))
    assert spent > 0
    calls = 1
    while True:
        response = chat_as(tenant, key, max_tokens=50)
        if response.status_code == 402:
            break
        assert response.status_code == 200
        calls += 1
        assert calls < 50, "the spend limit never stopped the key"
    error = response.json()["error"]
    assert error["type"] == "insufficient_quota" and error["code"] == "spend_limit_reached"
    assert "$0.00" in error["message"] and "limit" in error["message"]
    assert len(fake_openai.requests) == calls  # the refused call never went upstream
    pipeline.drain()
    data = tenant.get("/key", key=key).json()["data"]
    assert data["limit"] == 0.001
    assert Decimal(str(data["usage"])) <= Decimal("0.001")
    assert Decimal(str(data["limit_remaining"])) == Decimal("0.001") - Decimal(str(data["usage"]))
    # The organization's other key is not limited.
    assert tenant.client().chat.completions.create(**CHAT, max_tokens=50).usage
    assert_balance_reconciles(tenant.organization.pk)


def test_a_spend_limit_below_one_calls_maximum_is_402_before_spending(tenant, fake_openai):
    key, _ = limited_key(tenant, "0.0001")  # gpt-4o with 4096 output tokens could cost $0.04
    response = chat_as(tenant, key)
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "spend_limit_reached"
    assert fake_openai.requests == []


def test_a_limit_lowered_on_the_dashboard_applies_within_seconds(tenant, fake_openai):
    key, row = limited_key(tenant, "1")
    assert tenant.client(key=key).chat.completions.create(**CHAT, max_tokens=10).usage
    row.monthly_spend_limit_nanos = 1
    row.save()
    forget_cached_key(row.digest)
    deadline = time.monotonic() + settings.GATEWAY_KEY_CACHE_SECONDS + 2
    while True:
        response = chat_as(tenant, key, max_tokens=10)
        if response.status_code == 402:
            break
        assert time.monotonic() < deadline, "the lowered limit was not applied"
        time.sleep(0.2)


# --- holds ---------------------------------------------------------------------------


def test_credit_is_held_during_a_call_and_released_after(tenant, fake_openai):
    import threading

    fake_openai.latency = 0.5
    result = {}
    worker = threading.Thread(
        target=lambda: result.update(r=tenant.client().chat.completions.create(**CHAT))
    )
    worker.start()
    deadline = time.monotonic() + 5
    while held_nanos(tenant.organization.pk) == 0:
        assert time.monotonic() < deadline, "no hold while the call was in flight"
        time.sleep(0.02)
    held = held_nanos(tenant.organization.pk)
    assert held >= 16_384 * GPT_4O_COMPLETION_NANOS  # the model's maximum output, reserved
    assert available_nanos(tenant.organization.pk) == 10 * 10**9 - held
    worker.join()
    assert held_nanos(tenant.organization.pk) == 0
    assert_balance_reconciles(tenant.organization.pk)


def test_a_hold_past_its_deadline_goes_back_and_a_late_settle_still_charges_once(
    tenant, fake_openai
):
    """A process taken for dead mid-call (its hold not renewed in time): its hold returns
    whole; if the call settles after all, the cost is charged and not the difference."""
    import threading

    fake_openai.latency = 1.0
    result = {}
    worker = threading.Thread(
        target=lambda: result.update(r=tenant.client().chat.completions.create(**CHAT))
    )
    worker.start()
    time.sleep(0.5)
    assert credit_store().reap(now=time.time() + 3600) == 1  # as the reaper an hour later
    assert available_nanos(tenant.organization.pk) == 10 * 10**9
    worker.join()
    cost = int(Decimal(str(result["r"].usage.model_extra["cost"])) * 10**9)
    assert available_nanos(tenant.organization.pk) == 10 * 10**9 - cost
    assert_balance_reconciles(tenant.organization.pk)
