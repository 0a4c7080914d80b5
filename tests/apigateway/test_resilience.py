"""Upstream resilience through the real gateway: fallback to a model's next deployment
(another key, region or provider family), what is never retried, the circuit breaker,
per-provider time-outs, and streams that break or stall after bytes were sent.

The tenant fixture's teardown checks that the balance reconciles with the ledger, so a
call that was tried on two deployments must have been charged once."""

from __future__ import annotations

import logging
import time

import httpx
import openai
import pytest

from apigateway.catalog import snapshot
from apigateway.models import CatalogModel
from billing import pricing
from tests.apigateway.conftest import UPSTREAM_KEY
from tests.apigateway.test_usage_records import record_of
from tests.support import free_port

HI = [{"role": "user", "content": "hi there"}]
CHAT = {"model": "gpt-4o", "messages": HI}
HAIKU = {"provider": "anthropic", "upstream_model": "claude-3-5-haiku-20241022"}
BOOM = {"error": {"message": "boom", "type": "server_error"}}


def serve_model(public_id: str = "gpt-4o", *, provider: str | None = None, fallbacks=()):
    """Edit the catalog row (and make every gateway process see it at once)."""
    changes = {"fallbacks": list(fallbacks)}
    if provider:
        changes["provider"] = provider  # type: ignore[assignment]
    assert CatalogModel.objects.filter(public_id=public_id).update(**changes) == 1
    snapshot.loaded_at = float("-inf")


def gpt_4o_cost(usage) -> int:
    prices = CatalogModel.objects.get(public_id="gpt-4o").prices
    return pricing.token_cost_nanos(
        prices, prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens
    )


@pytest.fixture
def dead_provider(providers) -> str:
    """A configured provider nobody listens for: every connection is refused."""
    providers["dead"] = {
        "api_key": "sk-dead",
        "base_url": f"http://127.0.0.1:{free_port()}/v1",
        "adapter": "openai",
    }
    return "dead"


@pytest.mark.parametrize("failure", ["500", "429", "refused"])
def test_a_failing_primary_falls_back_to_another_provider_family(
    tenant, fake_openai, fake_anthropic, dead_provider, failure
):
    if failure == "refused":
        serve_model(provider=dead_provider, fallbacks=[HAIKU])
    else:
        serve_model(fallbacks=[HAIKU])
        # a Retry-After of 5 s concerns this deployment only: the fallback is tried at once
        fake_openai.fail_next(int(failure), BOOM, headers={"retry-after": "5"})
    started = time.monotonic()
    completion = tenant.client().chat.completions.with_raw_response.create(
        model="gpt-4o", messages=HI
    )
    assert time.monotonic() - started < 1.5
    parsed = completion.parse()
    assert parsed.model == "gpt-4o" and parsed.choices[0].message.content == "Echo: hi there"
    assert len(fake_openai.requests) == (0 if failure == "refused" else 1)
    assert [r.json()["model"] for r in fake_anthropic.requests] == [HAIKU["upstream_model"]]
    # The customer pays the public model's price, whichever deployment served.
    cost = gpt_4o_cost(parsed.usage)
    assert completion.headers["x-nexeon-cost"] and round(parsed.usage.cost * 1e9) == cost
    record = record_of(completion.http_response)
    assert (record.status, record.provider, record.cost_nanos) == (200, "anthropic", cost)


def test_a_stream_falls_back_before_its_first_byte_and_is_translated_by_the_fallback(
    tenant, fake_openai, fake_anthropic
):
    serve_model(fallbacks=[HAIKU])
    fake_openai.fail_next(503, BOOM)
    stream = tenant.client().chat.completions.create(
        model="gpt-4o", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: hi there"
    assert chunks[-1].usage.cost == pytest.approx(gpt_4o_cost(chunks[-1].usage) / 1e9)
    assert len(fake_openai.requests) == 1 and len(fake_anthropic.requests) == 1
    assert fake_anthropic.requests[0].json()["stream"] is True


def test_another_key_or_region_of_the_same_provider_is_a_fallback(tenant, fake_openai, providers):
    providers["openai-eu"] = {
        "api_key": UPSTREAM_KEY,
        "base_url": fake_openai.base_url + "/v1",
        "adapter": "openai",
        "headers": {"X-Region": "eu"},
    }
    serve_model("text-embedding-3-small", fallbacks=[{"provider": "openai-eu"}])
    fake_openai.fail_next(502, BOOM)
    response = tenant.post("/embeddings", {"model": "text-embedding-3-small", "input": "hi"})
    assert response.status_code == 200, response.text
    first, second = fake_openai.requests
    assert "x-region" not in first.headers and second.headers["x-region"] == "eu"
    assert second.json()["model"] == "text-embedding-3-small"  # upstream_model defaults
    assert record_of(response).provider == "openai-eu"


def test_a_fallback_that_cannot_take_the_request_is_skipped(tenant, fake_openai, fake_anthropic):
    serve_model(fallbacks=[HAIKU])
    fake_openai.fail_next(500, BOOM)
    response = tenant.post(
        "/chat/completions", {**CHAT, "n": 2}
    )  # Anthropic serves one choice only
    assert response.status_code == 200, response.text
    assert len(fake_openai.requests) == 2 and fake_anthropic.requests == []


def test_unconfigured_fallbacks_are_ignored(tenant, fake_openai):
    serve_model(fallbacks=[{"provider": "nowhere"}, {"provider": "deepseek"}])
    fake_openai.fail_next(500, BOOM)
    assert tenant.post("/chat/completions", CHAT).status_code == 200
    assert len(fake_openai.requests) == 2


def test_a_model_served_only_by_a_fallback_is_listed_and_served(tenant, fake_anthropic):
    serve_model(provider="deepseek", fallbacks=[HAIKU])  # DeepSeek has no key here
    assert "gpt-4o" in {m.id for m in tenant.client().models.list().data}
    assert tenant.post("/chat/completions", CHAT).status_code == 200
    assert len(fake_anthropic.requests) == 1


def test_a_provider_400_is_neither_retried_nor_fallen_back(tenant, fake_openai, fake_anthropic):
    serve_model(fallbacks=[HAIKU])
    fake_openai.fail_next(400, {"error": {"message": "maximum context length is 128000"}})
    response = tenant.post("/chat/completions", CHAT)
    assert response.status_code == 400
    assert "maximum context length" in response.json()["error"]["message"]
    assert len(fake_openai.requests) == 1 and fake_anthropic.requests == []


def test_rejected_operator_credentials_are_502_without_fallback(
    tenant, fake_openai, fake_anthropic, providers
):
    serve_model(fallbacks=[HAIKU])
    providers["openai"]["api_key"] = "sk-wrong-operator-key"
    response = tenant.post("/chat/completions", CHAT)
    assert response.status_code == 502 and response.json()["error"]["type"] == "api_error"
    assert fake_anthropic.requests == []


def test_a_time_out_is_a_504_at_once_within_the_providers_own_timeout(
    tenant, fake_openai, fake_anthropic, providers, settings
):
    assert settings.UPSTREAM_TIMEOUT > 5
    providers["openai"]["timeout"] = 0.5  # NEXEON_PROVIDERS {"openai": {"timeout": 0.5}}
    serve_model(fallbacks=[HAIKU])
    fake_openai.latency = 3
    started = time.monotonic()
    response = tenant.post("/chat/completions", CHAT)
    took = time.monotonic() - started
    assert response.status_code == 504, response.text
    assert response.json()["error"]["type"] == "api_error"
    assert "0.5 seconds" in response.json()["error"]["message"]
    assert 0.5 <= took < 2.0
    assert len(fake_openai.requests) == 1 and fake_anthropic.requests == []
    assert record_of(response).cost_nanos == 0


def test_a_providers_429_ends_as_503_with_its_retry_after_not_as_a_rate_limit(
    tenant, fake_openai, settings
):
    settings.UPSTREAM_RETRIES = 0
    fake_openai.fail_next(429, {"error": {"message": "slow down"}}, headers={"retry-after": "7"})
    response = tenant.post("/chat/completions", CHAT)
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["type"] == "api_error" and error["code"] is None
    assert response.headers["retry-after"] == "7"


def test_the_breaker_rests_a_failing_deployment_then_tries_it_again(
    tenant, fake_openai, fake_anthropic, settings, caplog
):
    caplog.set_level(logging.INFO, logger="apigateway.breaker")
    assert settings.GATEWAY_BREAKER_FAILURES == 5  # the default
    settings.GATEWAY_BREAKER_REST_SECONDS = 1
    serve_model(fallbacks=[HAIKU])
    fake_openai.fail_next(500, BOOM, times=100)

    def call() -> None:
        assert tenant.post("/chat/completions", CHAT).status_code == 200

    for _ in range(5):
        call()
    assert len(fake_openai.requests) == 5 and len(fake_anthropic.requests) == 5
    assert "circuit opened after 5 consecutive failures" in caplog.text
    for _ in range(3):
        call()
    assert len(fake_openai.requests) == 5, "a resting deployment was called"
    assert len(fake_anthropic.requests) == 8
    time.sleep(1.1)
    call()  # the trial fails: rests again
    assert len(fake_openai.requests) == 6 and len(fake_anthropic.requests) == 9
    call()
    assert len(fake_openai.requests) == 6
    fake_openai.failures.clear()
    time.sleep(1.1)
    call()  # the trial succeeds: closed
    call()
    assert len(fake_openai.requests) == 8 and len(fake_anthropic.requests) == 10
    assert "circuit closed" in caplog.text
    assert UPSTREAM_KEY not in caplog.text and "127.0.0.1" not in caplog.text


def test_when_every_deployment_rests_the_call_is_503_and_reaches_no_provider(
    tenant, fake_openai, settings
):
    settings.GATEWAY_BREAKER_FAILURES = 2
    settings.GATEWAY_BREAKER_REST_SECONDS = 30
    fake_openai.fail_next(500, BOOM, times=2)
    first = tenant.post(
        "/chat/completions", CHAT
    )  # two failures open it; the third attempt is not made
    assert first.status_code == 502 and len(fake_openai.requests) == 2
    response = tenant.post("/chat/completions", CHAT)
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "api_error"
    assert 1 <= int(response.headers["retry-after"]) <= 30
    assert len(fake_openai.requests) == 2
    with pytest.raises(openai.InternalServerError) as caught:
        tenant.client().chat.completions.create(**CHAT)
    assert caught.value.status_code == 503
    assert record_of(response).cost_nanos == 0


def test_a_stream_that_breaks_mid_way_ends_with_an_error_event(
    tenant, fake_openai, fake_anthropic, settings
):
    settings.GATEWAY_BREAKER_FAILURES = 1
    serve_model(fallbacks=[HAIKU])
    fake_openai.break_after = 3
    stream = tenant.client().chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "one two three four five"}],
        stream=True,
    )
    received = []
    started = time.monotonic()
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert time.monotonic() - started < 2
    assert "broke off" in str(caught.value)
    assert "".join(received) == "Echo: one"  # what came before the break was relayed
    assert fake_anthropic.requests == [], "bytes were sent: no fallback"
    # the break counted against the deployment (threshold 1): the next call goes elsewhere
    fake_openai.break_after = None
    assert tenant.post("/chat/completions", CHAT).status_code == 200
    assert len(fake_openai.requests) == 1 and len(fake_anthropic.requests) == 1


def test_a_stream_that_stalls_mid_way_ends_with_an_error_event_within_the_providers_timeout(
    tenant, fake_openai, providers
):
    providers["openai"]["timeout"] = 0.5
    fake_openai.chunk_delay = 3
    with httpx.stream(
        "POST",
        f"{tenant.url}/v1/chat/completions",
        json={**CHAT, "stream": True},
        headers={"authorization": f"Bearer {tenant.key}"},
        timeout=10,
    ) as response:
        started = time.monotonic()
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line]
    assert time.monotonic() - started < 2
    assert '"role":"assistant"' in lines[0]
    assert lines[-1].startswith('data: {"error":') and "0.5 seconds" in lines[-1]
    assert "data: [DONE]" not in lines
    record = record_of(response)
    assert record.status == 200 and record.error_code == "api_error"
