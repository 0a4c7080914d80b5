"""Requests and tokens per minute through the running gateway: per key, per organization,
plan defaults and overrides, the x-ratelimit-* headers, and what never reaches a provider.
The window's arithmetic itself is in test_ratelimit_windows.py."""

from __future__ import annotations

import asyncio
import re

import httpx
import openai
import pytest

from accounts.models import ApiKey, User
from accounts.services import api_key_create, organization_create, organization_limits_update
from apigateway import auth
from apigateway.ratelimit import estimate_tokens
from tests.apigateway.conftest import gateway

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
EMBED = {"model": "text-embedding-3-small", "input": "hello"}


def assert_429(response: httpx.Response, unit: str, limit: int) -> dict:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["type"] == "rate_limit_exceeded" and error["code"] == "rate_limit_exceeded"
    assert set(error) == {"message", "type", "param", "code"}
    assert 1 <= int(response.headers["retry-after"]) <= 60  # whole seconds, as SDKs honour
    assert response.headers[f"x-ratelimit-limit-{unit}"] == str(limit)
    assert response.headers[f"x-ratelimit-remaining-{unit}"] == "0"
    assert re.fullmatch(
        r"\d+(\.\d+)?s|\d+ms|\d+m\d+s", response.headers[f"x-ratelimit-reset-{unit}"]
    )
    return error


def test_a_keys_rpm_counts_chat_and_embeddings_but_not_the_get_endpoints(tenant, fake_openai):
    key = api_key_create(organization=tenant.organization, name="rpm3", rpm_limit=3).plaintext
    remaining = []
    for body, path in (
        (CHAT, "/chat/completions"),
        (EMBED, "/embeddings"),
        (CHAT, "/chat/completions"),
    ):
        for free in ("/models", "/key", "/credits"):
            assert tenant.get(free, key=key).status_code == 200
        response = tenant.post(path, body, key=key)
        assert response.status_code == 200, response.text
        assert response.headers["x-ratelimit-limit-requests"] == "3"
        assert re.fullmatch(
            r"[1-6]\d(\.\d+)?s|1m0s", response.headers["x-ratelimit-reset-requests"]
        )
        assert "x-ratelimit-limit-tokens" not in response.headers  # no TPM limit on this key
        remaining.append(response.headers["x-ratelimit-remaining-requests"])
    assert remaining == ["2", "1", "0"]

    error = assert_429(tenant.post("/chat/completions", CHAT, key=key), "requests", 3)
    assert "this API key" in error["message"]
    assert len(fake_openai.requests) == 3  # the refused call never reached the provider


def test_a_call_refused_for_credit_still_counts(tenant, fake_openai):
    owner = User.objects.create_user(email="broke@example.com")
    broke = organization_create(name="Broke", owner=owner)
    key = api_key_create(organization=broke, name="k", rpm_limit=2).plaintext
    assert [tenant.post("/chat/completions", CHAT, key=key).status_code for _ in range(2)] == [
        402,
        402,
    ]
    assert_429(tenant.post("/chat/completions", CHAT, key=key), "requests", 2)
    assert fake_openai.requests == []


def test_requests_refused_as_invalid_count_too(tenant, fake_openai):
    """Every authenticated request to those endpoints counts, whatever its fate."""
    key = api_key_create(organization=tenant.organization, name="k", rpm_limit=3).plaintext
    assert tenant.post("/chat/completions", {**CHAT, "temperature": 7}, key=key).status_code == 400
    assert tenant.post("/chat/completions", {**CHAT, "model": "nope"}, key=key).status_code == 404
    assert (
        tenant.post("/chat/completions", CHAT, key=key).headers["x-ratelimit-remaining-requests"]
        == "0"
    )
    assert_429(tenant.post("/chat/completions", CHAT, key=key), "requests", 3)
    assert len(fake_openai.requests) == 1


def test_an_organizations_limit_is_shared_by_its_keys(tenant, fake_openai):
    organization_limits_update(organization=tenant.organization, plan="standard", rpm_limit=3)
    auth._local.clear()  # (the on_commit forget ran; this process's copy goes too)
    first = api_key_create(organization=tenant.organization, name="a").plaintext
    second = api_key_create(organization=tenant.organization, name="b").plaintext
    answers = [tenant.post("/chat/completions", CHAT, key=k) for k in (first, first, second)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    # The tightest limit is reported: the organization's 3, not the key's plan default 500.
    assert [a.headers["x-ratelimit-remaining-requests"] for a in answers] == ["2", "1", "0"]
    error = assert_429(tenant.post("/chat/completions", CHAT, key=second), "requests", 3)
    assert "organization" in error["message"]
    assert len(fake_openai.requests) == 3


def test_plan_defaults_apply_unless_the_key_overrides_them(tenant, fake_openai, settings):
    settings.RATE_LIMIT_PLANS = {
        **settings.RATE_LIMIT_PLANS,
        "tiny": {"key_rpm": 1, "key_tpm": None, "org_rpm": None, "org_tpm": None},
    }
    organization_limits_update(organization=tenant.organization, plan="tiny")
    auth._local.clear()
    plain = api_key_create(organization=tenant.organization, name="plain").plaintext
    own = api_key_create(organization=tenant.organization, name="own", rpm_limit=2).plaintext
    assert (
        tenant.post("/chat/completions", CHAT, key=plain).headers["x-ratelimit-limit-requests"]
        == "1"
    )
    assert_429(tenant.post("/chat/completions", CHAT, key=plain), "requests", 1)
    assert [tenant.post("/chat/completions", CHAT, key=own).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]
    assert tenant.get("/key", key=plain).json()["data"]["rate_limit"]["requests"] == 1


def test_tokens_per_minute_count_the_estimate_then_the_real_usage(tenant, fake_openai):
    key = api_key_create(organization=tenant.organization, name="tpm", tpm_limit=1000).plaintext
    too_large = tenant.post("/chat/completions", {**CHAT, "max_tokens": 5000}, key=key)
    error = assert_429(too_large, "tokens", 1000)
    assert "Request too large" in error["message"]
    assert fake_openai.requests == []

    body = {**CHAT, "max_tokens": 300}
    estimate = estimate_tokens(body, max_output_tokens=300)
    first = tenant.post("/chat/completions", body, key=key)
    assert first.status_code == 200
    assert "x-ratelimit-limit-requests" in first.headers  # the plan's default RPM
    assert first.headers["x-ratelimit-limit-tokens"] == "1000"
    assert first.headers["x-ratelimit-remaining-tokens"] == str(1000 - estimate)
    used = first.json()["usage"]["total_tokens"]
    assert 0 < used < estimate  # so the correction is visible
    second = tenant.post("/chat/completions", body, key=key)
    # Settled, the first call counts what it really used, not its estimate.
    assert second.headers["x-ratelimit-remaining-tokens"] == str(1000 - used - estimate)


def test_the_openai_sdk_sees_the_limits(tenant, fake_openai):
    key = api_key_create(organization=tenant.organization, name="sdk", rpm_limit=1).plaintext
    client = tenant.client(key)
    raw = client.chat.completions.with_raw_response.create(**CHAT)
    assert raw.headers["x-ratelimit-remaining-requests"] == "0"
    assert raw.parse().choices[0].message.content
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(**CHAT)
    assert refused.value.status_code == 429
    assert refused.value.code == "rate_limit_exceeded"
    assert int(refused.value.response.headers["retry-after"]) >= 1


def test_limits_hold_across_gateway_processes(tenant, fake_openai):
    """Two worker processes, one Redis: a key with RPM 10 gets exactly 10 of 30 calls."""
    key = api_key_create(organization=tenant.organization, name="shared", rpm_limit=10).plaintext
    fake_openai.latency = 0.05

    async def fire(url: str) -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            answers = await asyncio.gather(
                *(
                    client.post(
                        f"{url}/v1/chat/completions",
                        json=CHAT,
                        headers={"authorization": f"Bearer {key}"},
                    )
                    for _ in range(30)
                )
            )
        return sorted(answer.status_code for answer in answers)

    with gateway(fake_openai, workers=2) as (url, _):
        assert asyncio.run(fire(url)) == [200] * 10 + [429] * 20
    assert len(fake_openai.requests) == 10


def test_without_redis_the_limits_are_kept_in_process(tenant, fake_openai):
    """Embedded mode (REDIS_URL unset): the same limits, in the one process."""
    key = ApiKey.objects.get(organization=tenant.organization)
    key.rpm_limit = 2
    key.save()
    with gateway(fake_openai, workers=1, REDIS_URL=None) as (url, _):
        codes = [tenant.post("/chat/completions", CHAT, url=url) for _ in range(3)]
    assert [c.status_code for c in codes] == [200, 200, 429]
    assert codes[1].headers["x-ratelimit-remaining-requests"] == "0"
    assert int(codes[2].headers["retry-after"]) >= 1
    assert len(fake_openai.requests) == 2
