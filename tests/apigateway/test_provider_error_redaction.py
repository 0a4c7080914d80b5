"""A provider's message reaches the caller without the operator's key, other secrets or
internal addresses: from its error answers (every adapter's map_error) and from errors in
its streams (every stream translator)."""

from __future__ import annotations

import httpx
import orjson
import pytest

from apigateway.errors import GatewayError
from apigateway.providers.anthropic import AnthropicProvider
from apigateway.providers.base import Deployment
from apigateway.providers.gemini import GeminiProvider
from apigateway.providers.openai import OpenAIProvider
from apigateway.sse import SSEEvent
from tests.apigateway.conftest import ANTHROPIC_KEY, GEMINI_KEY, UPSTREAM_KEY

LEAKS = "http://10.1.2.3:8000", "10.1.2.3", "vllm.internal:8000", "vllm.internal"


def leaky(key: str) -> str:
    return (
        f"Invalid image: fetching http://10.1.2.3:8000/v1/files failed (upstream "
        f"vllm.internal:8000, key {key}, header Bearer {key})"
    )


def assert_redacted(message: str, key: str) -> None:
    assert key not in message
    for leak in LEAKS:
        assert leak not in message
    assert "[redacted]" in message
    assert message.startswith("Invalid image: fetching")  # the rest is kept


# --- pure: every adapter -------------------------------------------------------------------

ADAPTERS = [
    (OpenAIProvider(), "sk-operator-Secret-123"),
    (AnthropicProvider(), "sk-ant-operator-Secret-123"),
    (GeminiProvider(), "AIzaSyOperatorSecret1234567890abcdefghi"),
]


@pytest.mark.parametrize(("adapter", "key"), ADAPTERS)
@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_map_error_redacts_the_providers_message(adapter, key, status):
    body = orjson.dumps({"error": {"message": leaky(key), "type": "invalid_request_error"}})
    error = adapter.map_error(status, body, key)
    assert error.status == 400
    assert_redacted(error.message, key)


def stream_error_event(adapter, key: str) -> SSEEvent:
    if isinstance(adapter, AnthropicProvider):
        payload = {"type": "error", "error": {"type": "api_error", "message": leaky(key)}}
        return SSEEvent(orjson.dumps(payload).decode(), "error")
    return SSEEvent(orjson.dumps({"error": {"message": leaky(key), "code": 500}}).decode())


@pytest.mark.parametrize(("adapter", "key"), ADAPTERS)
def test_a_stream_error_is_redacted(adapter, key):
    deployment = Deployment(adapter.name, "up", "https://p.example", key)
    translator = adapter.stream_translator(model="m", include_usage=False, deployment=deployment)
    with pytest.raises(GatewayError) as caught:
        translator.feed(stream_error_event(adapter, key))
    assert caught.value.status == 502
    assert_redacted(caught.value.message, key)


def test_a_gemini_block_reason_is_redacted():
    payload = {"promptFeedback": {"blockReason": "SAFETY at 10.1.2.3:8000"}}
    with pytest.raises(GatewayError) as caught:
        GeminiProvider().parse_chat_response(
            orjson.dumps(payload), model="m", deployment=Deployment("gemini", "g", "https://g", "k")
        )
    assert "10.1.2.3" not in caught.value.message and "SAFETY" in caught.value.message


# --- through the gateway -------------------------------------------------------------------


def post(tenant, model: str, *, stream: bool = False) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    return tenant.post("/chat/completions", body)


def test_a_provider_400_reaches_the_caller_redacted(tenant, fake_openai):
    """Relayed as the provider wrote it, the message would carry the operator's key and the
    internal host."""
    fake_openai.fail_next(400, {"error": {"message": leaky(UPSTREAM_KEY)}})
    response = post(tenant, "gpt-4o")
    assert response.status_code == 400
    assert_redacted(response.json()["error"]["message"], UPSTREAM_KEY)


def test_anthropic_and_gemini_400s_reach_the_caller_redacted(tenant, fake_anthropic, fake_gemini):
    fake_anthropic.fail_next(
        400,
        {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": leaky(ANTHROPIC_KEY)},
        },
    )
    response = post(tenant, "claude-3-5-sonnet")
    assert response.status_code == 400
    assert_redacted(response.json()["error"]["message"], ANTHROPIC_KEY)
    fake_gemini.fail_next(400, {"error": {"code": 400, "message": leaky(GEMINI_KEY)}})
    response = post(tenant, "gemini-2.5-flash")
    assert response.status_code == 400
    assert_redacted(response.json()["error"]["message"], GEMINI_KEY)


@pytest.mark.parametrize(
    ("model", "fake", "key", "event"),
    [
        ("gpt-4o", "fake_openai", UPSTREAM_KEY, None),
        ("claude-3-5-sonnet", "fake_anthropic", ANTHROPIC_KEY, "error"),
        ("gemini-2.5-flash", "fake_gemini", GEMINI_KEY, None),
    ],
)
def test_a_stream_error_reaches_the_caller_redacted(tenant, request, model, fake, key, event):
    if event:
        payload = {"type": "error", "error": {"type": "api_error", "message": leaky(key)}}
        raw = f"event: {event}\ndata: ".encode() + orjson.dumps(payload) + b"\n\n"
    else:
        raw = b"data: " + orjson.dumps({"error": {"message": leaky(key)}}) + b"\n\n"
    request.getfixturevalue(fake).fail_next(200, raw)
    response = post(tenant, model, stream=True)
    text = response.text
    assert key not in text and "10.1.2.3" not in text and "vllm.internal" not in text
    assert "[redacted]" in text
