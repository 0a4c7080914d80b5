"""Every error status the gateway documents, in OpenAI's body format, and what never
reaches the provider."""

import threading
import time

import httpx
import openai
import pytest
from django.conf import settings

from accounts.models import ApiKey
from accounts.services import api_key_create, api_key_revoke
from billing.models import LedgerEntry
from tests.apigateway.conftest import assert_error

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
VALID = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]'  # no closing }


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Basic abc", "Bearer sk-not-ours", "Bearer nex-sk-" + "a" * 48],
)
def test_missing_malformed_or_unknown_keys_are_401(tenant, fake_openai, authorization):
    headers = {"authorization": authorization} if authorization else {}
    response = httpx.post(f"{tenant.url}/v1/chat/completions", json=CHAT, headers=headers)
    expected_code = None if authorization is None else "invalid_api_key"
    assert_error(response, 401, "invalid_request_error", expected_code)
    assert fake_openai.requests == []


def test_a_revoked_key_is_refused_within_the_cache_time(tenant, fake_openai):
    assert tenant.post("/chat/completions", CHAT).status_code == 200
    api_key_revoke(api_key=ApiKey.objects.get(organization=tenant.organization))
    deadline = time.monotonic() + settings.GATEWAY_KEY_CACHE_SECONDS + 1
    while tenant.post("/chat/completions", CHAT).status_code != 401:
        assert time.monotonic() < deadline, "revoked key still accepted"
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("content", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', "model"),
        (b'{"model": "gpt-4o"}', "messages"),
        (b'{"model": "gpt-4o", "messages": []}', "messages"),
        (b'{"model": "gpt-4o", "messages": [{"role": "wizard", "content": "x"}]}', None),
        (
            VALID + b', "temperature": 2.5}',
            "temperature",
        ),
        (
            VALID + b', "temperature": -1}',
            "temperature",
        ),
        (VALID + b', "n": 0}', "n"),
        (
            VALID + b', "max_tokens": "9"}',
            "max_tokens",
        ),
    ],
)
def test_bad_requests_are_400_and_never_reach_the_provider(tenant, fake_openai, content, param):
    response = tenant.post("/chat/completions", content=content)
    error = assert_error(response, 400, "invalid_request_error", error_code(response))
    if param:
        assert error["param"] == param
    assert fake_openai.requests == []


def error_code(response):
    return response.json()["error"]["code"]


def test_temperature_out_of_range_through_the_sdk(tenant):
    with pytest.raises(openai.BadRequestError) as caught:
        tenant.client().chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "x"}], temperature=3
        )
    assert caught.value.body["param"] == "temperature"


def test_unknown_model_is_404_model_not_found(tenant, fake_openai):
    response = tenant.post("/chat/completions", {**CHAT, "model": "gpt-9000"})
    assert_error(response, 404, "invalid_request_error", "model_not_found")
    with pytest.raises(openai.NotFoundError):
        tenant.client().models.retrieve("gpt-9000")
    assert fake_openai.requests == []


def test_a_model_of_an_unconfigured_provider_is_404_not_available(tenant, fake_openai):
    response = tenant.post("/chat/completions", {**CHAT, "model": "deepseek-chat"})
    error = assert_error(response, 404, "invalid_request_error", "model_not_available")
    assert "not configured" in error["message"]


def test_a_body_over_the_limit_is_413_before_it_is_read(tenant, fake_openai, settings):
    settings.GATEWAY_MAX_BODY_BYTES = 1000
    response = tenant.post("/chat/completions", content=b"{" + b" " * 5000 + b"}")
    assert_error(response, 413, "invalid_request_error", "request_too_large")

    def chunks():
        yield b'{"model": "gpt-4o", '
        yield b" " * 2000

    streamed = tenant.post("/chat/completions", content=chunks())
    assert_error(streamed, 413, "invalid_request_error", "request_too_large")
    assert fake_openai.requests == []


def test_the_key_is_checked_before_the_body(tenant, fake_openai):
    response = httpx.post(
        f"{tenant.url}/v1/chat/completions", content=b"{broken", headers={"authorization": "x"}
    )
    assert response.status_code == 401


def test_rate_limit_is_429_with_retry_after(tenant, fake_openai):
    limited = api_key_create(organization=tenant.organization, name="slow", rpm_limit=2)
    for _ in range(2):
        assert tenant.post("/chat/completions", CHAT, key=limited.plaintext).status_code == 200
    response = tenant.post("/chat/completions", CHAT, key=limited.plaintext)
    assert_error(response, 429, "rate_limit_exceeded", "rate_limit_exceeded")
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["x-ratelimit-limit-requests"] == "2"
    assert len(fake_openai.requests) == 2


def test_no_credit_is_402(tenant, fake_openai):
    from accounts.models import User
    from accounts.services import organization_create

    broke = organization_create(
        name="Broke", owner=User.objects.create_user(email="broke@example.com")
    )
    key = api_key_create(organization=broke, name="k").plaintext
    response = tenant.post("/chat/completions", CHAT, key=key)
    error = assert_error(response, 402, "insufficient_quota", "insufficient_quota")
    assert "credits" in error["message"].lower()
    with pytest.raises(openai.APIStatusError) as caught:
        tenant.client(key=key).chat.completions.create(**CHAT)
    assert caught.value.status_code == 402
    assert fake_openai.requests == []


def test_a_request_that_could_cost_more_than_the_balance_is_402(tenant, fake_openai):
    response = tenant.post("/chat/completions", {**CHAT, "max_tokens": 10**9})
    assert_error(response, 402, "insufficient_quota", "insufficient_quota")


def test_provider_400_keeps_its_message(tenant, fake_openai):
    fake_openai.fail_next(
        400, {"error": {"message": "This model's maximum context length is 128000 tokens."}}
    )
    response = tenant.post("/chat/completions", CHAT)
    error = assert_error(response, 400, "invalid_request_error")
    assert "maximum context length" in error["message"]


def test_provider_key_rejected_is_502_not_the_callers_fault(tenant, fake_openai, providers):
    providers["openai"]["api_key"] = "sk-wrong-operator-key"
    response = tenant.post("/chat/completions", CHAT)
    error = assert_error(response, 502, "api_error")
    assert "sk-wrong" not in response.text and "127.0.0.1" not in error["message"]


def test_provider_429_is_retried_then_503_with_retry_after(tenant, fake_openai):
    fake_openai.fail_next(429, {"error": {"message": "slow down"}}, times=3)
    response = tenant.post("/chat/completions", CHAT)
    assert_error(response, 503, "api_error")
    assert "retry-after" in response.headers
    assert len(fake_openai.requests) == 3  # one call + UPSTREAM_RETRIES (2)


def test_provider_5xx_once_is_retried_transparently(tenant, fake_openai):
    fake_openai.fail_next(500, {"error": {"message": "boom"}})
    response = tenant.post("/chat/completions", CHAT)
    assert response.status_code == 200
    assert len(fake_openai.requests) == 2


def test_provider_5xx_throughout_is_502(tenant, fake_openai):
    fake_openai.fail_next(500, {"error": {"message": "boom"}}, times=3)
    assert_error(tenant.post("/chat/completions", CHAT), 502, "api_error")


def test_unreadable_provider_answer_is_502(tenant, fake_openai):
    fake_openai.fail_next(200, b"<html>oops</html>")
    assert_error(tenant.post("/chat/completions", CHAT), 502, "api_error")


def test_upstream_timeout_is_504_soon_after_the_deadline_and_not_retried(
    tenant, fake_openai, settings
):
    from apigateway import http

    settings.UPSTREAM_TIMEOUT = 0.5
    http.reset()  # the shared session picks the timeout up when created
    fake_openai.latency = 3
    started = time.monotonic()
    response = tenant.post("/chat/completions", CHAT)
    took = time.monotonic() - started
    http.reset()
    assert_error(response, 504, "api_error")
    assert 0.5 <= took < 2.0
    assert len(fake_openai.requests) == 1


def test_a_failed_call_costs_nothing(tenant, fake_openai):
    fake_openai.fail_next(400, {"error": {"message": "nope"}})
    tenant.post("/chat/completions", CHAT)
    assert not LedgerEntry.objects.filter(kind="usage").exists()


def test_unknown_paths_and_methods_answer_json(tenant):
    response = tenant.post("/nope", {})
    assert_error(response, 404, "invalid_request_error", "unknown_url")
    wrong = httpx.get(f"{tenant.url}/v1/chat/completions", headers={"authorization": "x"})
    assert wrong.status_code == 405 and wrong.json()["error"]["message"]


# The second path is escaped: it reaches the gateway on uvicorn's own road, where no
# `nexeon.on_disconnect` hook is offered and a task waits on receive() instead.
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/%63hat/completions"])
def test_client_disconnect_mid_stream_cancels_upstream_and_gateway_stays_healthy(
    tenant, fake_openai, path
):
    fake_openai.chunk_delay = 0.2
    body = {**CHAT, "messages": [{"role": "user", "content": " ".join(["w"] * 40)}], "stream": True}
    with httpx.stream(
        "POST",
        f"{tenant.url}{path}",
        json=body,
        headers={"authorization": f"Bearer {tenant.key}"},
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if '"content":"Echo:"' in line:
                break  # leave after the first word
    deadline = time.monotonic() + 5
    while fake_openai.disconnected == 0:
        assert time.monotonic() < deadline, "the upstream stream was not cancelled"
        time.sleep(0.05)
    fake_openai.chunk_delay = 0
    assert tenant.post("/chat/completions", CHAT).status_code == 200
    assert threading.active_count() < 50


@pytest.fixture
def short_upstream_timeout(settings):
    from apigateway import http

    settings.UPSTREAM_TIMEOUT = 0.5
    http.reset()
    yield
    http.reset()


def test_a_stream_with_no_first_byte_in_time_is_a_504_json_error(
    tenant, fake_openai, short_upstream_timeout
):
    fake_openai.latency = 3
    response = tenant.post("/chat/completions", {**CHAT, "stream": True})
    assert_error(response, 504, "api_error")
    assert len(fake_openai.requests) == 1


def test_a_stream_that_stalls_between_chunks_ends_with_an_in_band_error(
    tenant, fake_openai, short_upstream_timeout
):
    fake_openai.chunk_delay = 2
    stream = tenant.client().chat.completions.create(**CHAT, stream=True)
    started = time.monotonic()
    with pytest.raises(openai.APIError) as caught:
        list(stream)
    assert time.monotonic() - started < 3
    assert "did not answer within" in str(caught.value)


def test_credits_granted_after_a_402_are_usable_at_once(tenant, fake_openai):
    from accounts.models import User
    from accounts.services import organization_create
    from billing.services import credits_grant

    broke = organization_create(
        name="Topped up", owner=User.objects.create_user(email="topup@example.com")
    )
    key = api_key_create(organization=broke, name="k").plaintext
    assert tenant.post("/chat/completions", CHAT, key=key).status_code == 402
    credits_grant(organization=broke, amount_nanos=10**9, reference="grant:topup")
    assert tenant.post("/chat/completions", CHAT, key=key).status_code == 200
