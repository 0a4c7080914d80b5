"""Every authenticated call to chat, embeddings and images leaves exactly one usage record,
whatever its outcome; an unauthenticated one leaves none."""

from __future__ import annotations

import time

import httpx

from accounts.models import ApiKey
from tests.support import forget_cached_key
from usage import pipeline
from usage.models import UsageRecord

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}]}


def post(tenant, path: str, body, key: str | None = None) -> httpx.Response:
    return httpx.post(
        f"{tenant.url}/v1{path}",
        json=body,
        headers={"authorization": f"Bearer {key or tenant.key}"},
        timeout=30,
    )


def record_of(response: httpx.Response) -> UsageRecord:
    request_id = response.headers["x-request-id"]
    deadline = time.monotonic() + 5
    while True:
        pipeline.drain()
        found = UsageRecord.objects.filter(request_id=request_id).first()
        if found is not None:
            return found
        assert time.monotonic() < deadline, f"no usage record for {request_id}"
        time.sleep(0.05)


def test_a_successful_call_is_recorded_with_tokens_cost_and_times(tenant, fake_openai):
    response = post(tenant, "/chat/completions", CHAT)
    assert response.status_code == 200
    record = record_of(response)
    usage = response.json()["usage"]
    assert record.organization_id == tenant.organization.pk
    assert record.api_key_id == ApiKey.objects.get(organization=tenant.organization).pk
    assert (record.endpoint, record.model, record.provider) == ("chat", "gpt-4o-mini", "openai")
    assert record.status == 200 and record.error_code == ""
    assert record.prompt_tokens == usage["prompt_tokens"]
    assert record.completion_tokens == usage["completion_tokens"]
    assert record.cost_nanos == round(usage["cost"] * 1e9) > 0
    assert 0 < record.ttfb_ms <= record.duration_ms < 5000
    assert not record.streamed and not record.client_disconnected
    assert UsageRecord.objects.count() == 1


def test_a_stream_is_recorded_as_streamed(tenant, fake_openai):
    fake_openai.chunk_delay = 0.05
    stream = tenant.client().chat.completions.with_raw_response.create(**CHAT, stream=True)
    chunks = list(stream.parse())
    record = record_of(stream.http_response)
    assert record.streamed and record.status == 200 and record.completion_tokens > 0
    assert record.ttfb_ms < record.duration_ms  # the first byte came before the last
    assert chunks


def test_refused_calls_are_recorded_with_their_status(tenant, fake_openai):
    cases = [
        (post(tenant, "/chat/completions", {**CHAT, "temperature": 3}), 400),
        (post(tenant, "/chat/completions", {**CHAT, "model": "no-such-model"}), 404),
        (post(tenant, "/chat/completions", {**CHAT, "max_tokens": 10**9}), 402),
        (post(tenant, "/embeddings", {"model": "gpt-4o", "input": "x"}), 404),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        record = record_of(response)
        assert record.status == status and record.cost_nanos == 0
        error = response.json()["error"]
        assert record.error_code == (error["code"] or error["type"])
    assert fake_openai.requests == []
    assert UsageRecord.objects.count() == len(cases)


def test_rate_limited_calls_are_recorded(tenant, fake_openai):
    key = ApiKey.objects.get(organization=tenant.organization)
    key.rpm_limit = 1
    key.save()
    forget_cached_key(key.digest)
    assert post(tenant, "/chat/completions", CHAT).status_code == 200
    limited = post(tenant, "/chat/completions", CHAT)
    assert limited.status_code == 429
    assert record_of(limited).status == 429


def test_an_upstream_failure_is_recorded_against_the_provider(tenant, fake_openai):
    fake_openai.fail_next(500, {"error": {"message": "boom"}}, times=3)
    response = post(tenant, "/chat/completions", CHAT)
    assert response.status_code == 502
    record = record_of(response)
    assert (record.status, record.provider, record.cost_nanos) == (502, "openai", 0)


def test_a_client_that_leaves_mid_stream_is_recorded_as_disconnected(tenant, fake_openai):
    fake_openai.chunk_delay = 0.2
    body = {**CHAT, "messages": [{"role": "user", "content": " ".join(["w"] * 40)}], "stream": True}
    with httpx.stream(
        "POST",
        f"{tenant.url}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {tenant.key}"},
    ) as response:
        for line in response.iter_lines():
            if '"content":"Echo:"' in line:
                break
    record = record_of(response)
    assert record.client_disconnected and record.streamed and record.status == 200
    assert record.cost_nanos > 0  # billed for what the provider produced
    # No usage from the provider yet: estimated from the text produced so far, four
    # characters a token (at least "Echo:", which the client saw).
    assert record.completion_tokens >= len("Echo:") // 4 + 1


def test_unauthenticated_calls_leave_no_record(tenant, fake_openai):
    response = httpx.post(f"{tenant.url}/v1/chat/completions", json=CHAT)
    assert response.status_code == 401
    time.sleep(0.2)
    pipeline.drain()
    assert not UsageRecord.objects.exists()
