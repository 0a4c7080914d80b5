"""Schemathesis against the gateway's own OpenAPI description of /v1 (apigateway/openapi.json).

The gateway is served by uvicorn on loopback (the `gateway_url` fixture) and called with a
valid key, with request bodies that follow the description and bodies mutated to break it
(schemathesis's negative mode). Every answer must be a documented status with a body that
matches the description — 2xx, or a 4xx in OpenAI's error format — never a 5xx and never a
hang (each call has a timeout). Generated bodies often name real catalog models, so that
they travel through validation, the credit check and each provider adapter to a canned
upstream: the test is of the gateway, not of the fakes, so the upstream answers a fixed
valid reply in the provider's format whatever it is sent (and notes any request that is not
a JSON object).

Bounded to about a minute: a fixed number of examples per operation, derandomized (the same
cases every run), no example database.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import schemathesis
from django.conf import settings as django_settings
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.apigateway.conftest import Tenant, assert_all_settled, new_tenant
from tests.fakes.server import FakeProvider, RecordedRequest, Send, serving
from tests.ledger_check import held_nanos

OPENAPI = Path(__file__).resolve().parents[2] / "apigateway" / "openapi.json"
EXAMPLES_PER_OPERATION = 150
TIMEOUT = 10  # seconds for one call; the gateway answers the canned upstream in milliseconds
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Real models per endpoint, one per adapter (openai, anthropic, gemini) and one of the
# OpenAI-compatible family; any other name is a 404.
MODELS = {
    "/chat/completions": [
        "gpt-4o",
        "claude-3-5-sonnet",
        "gemini-2.5-flash",
        "mistral-small-latest",
    ],
    "/embeddings": ["text-embedding-3-small", "gemini-embedding-001"],
    "/images/generations": ["dall-e-3"],
    "/responses": ["gpt-4o", "claude-3-5-sonnet", "gemini-2.5-flash", "mistral-small-latest"],
}

schema = schemathesis.openapi.from_path(OPENAPI)
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=EXAMPLES_PER_OPERATION,
    deterministic=True,
    database="none",
    with_security_parameters=False,
)
schema.config.update(request_timeout=TIMEOUT)


@schema.hook
def map_case(context, case):
    """Most bodies that name a model by a string name a real one of the operation's kind
    instead (chosen from the body itself, so the same cases run every time), so that they
    reach the credit check and the adapters; the rest keep theirs (a 404, mostly)."""
    models = MODELS.get(case.operation.path)
    body = case.body
    if models and isinstance(body, dict) and isinstance(body.get("model"), str):
        choice = zlib.crc32(repr(sorted(body.items(), key=repr)).encode()) % (len(models) + 1)
        if choice < len(models):
            case.body = {**body, "model": models[choice]}
    return case


# --- the canned upstream -------------------------------------------------------------------

CHAT = {
    "id": "chatcmpl-canned",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "upstream-model",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "canned", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
RESPONSE = {
    "id": "resp_canned",
    "object": "response",
    "created_at": 1700000000,
    "status": "completed",
    "model": "upstream-model",
    "output": [
        {
            "id": "msg_canned",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "canned", "annotations": []}],
        }
    ],
    "usage": {
        "input_tokens": 3,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 1,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 4,
    },
}
ANTHROPIC_MESSAGE = {
    "id": "msg_canned",
    "type": "message",
    "role": "assistant",
    "model": "upstream-model",
    "content": [{"type": "text", "text": "canned"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 3, "output_tokens": 1},
}
GEMINI_ANSWER = {
    "candidates": [
        {
            "content": {"role": "model", "parts": [{"text": "canned"}]},
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1, "totalTokenCount": 4},
}


def sse(payload, event: str | None = None) -> bytes:
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return (f"event: {event}\n".encode() if event else b"") + b"data: " + data + b"\n\n"


def openai_stream() -> list[bytes]:
    def chunk(delta: dict, finish=None) -> dict:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**CHAT, "object": "chat.completion.chunk", "choices": [choice], "usage": None}

    usage = {**CHAT, "object": "chat.completion.chunk", "choices": []}
    return [
        sse(chunk({"role": "assistant", "content": ""})),
        sse(chunk({"content": "canned"})),
        sse(chunk({}, "stop")),
        sse(usage),
        sse(b"[DONE]"),
    ]


def anthropic_stream() -> list[bytes]:
    start = {**ANTHROPIC_MESSAGE, "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": 3, "output_tokens": 0}
    events = [
        ("message_start", {"message": start}),
        ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "canned"}}),
        ("content_block_stop", {"index": 0}),
        ("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}}),
        ("message_stop", {}),
    ]
    return [sse({"type": name, **data}, name) for name, data in events]  # type: ignore[dict-item]


class CannedUpstream(FakeProvider):
    """OpenAI (/v1/...), Anthropic (/v1/messages) and Gemini (/v1beta/...) on one port."""

    def __init__(self) -> None:
        super().__init__()
        self.malformed: list[RecordedRequest] = []

    async def handle(self, request: RecordedRequest, send: Send) -> None:
        try:
            body = request.json()
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            self.malformed.append(request)
            await self.respond_json(send, {"error": {"message": "not JSON"}}, status=400)
            return
        path = request.path
        stream = bool(body.get("stream"))
        if path == "/v1/chat/completions":
            if stream:
                await self.stream(send, openai_stream(), request)
            else:
                await self.respond_json(send, CHAT)
        elif path == "/v1/responses":
            if stream:
                started = {**RESPONSE, "status": "in_progress", "output": [], "usage": None}
                events = [("response.created", started), ("response.completed", RESPONSE)]
                await self.stream(
                    send,
                    [
                        sse({"type": name, "response": data, "sequence_number": n}, name)
                        for n, (name, data) in enumerate(events)
                    ],
                    request,
                )
            else:
                await self.respond_json(send, RESPONSE)
        elif path == "/v1/embeddings":
            item = {"object": "embedding", "index": 0, "embedding": [0.25, -0.5]}
            usage = {"prompt_tokens": 2, "total_tokens": 2}
            reply = {"object": "list", "data": [item], "model": "m", "usage": usage}
            await self.respond_json(send, reply)
        elif path == "/v1/images/generations":
            reply = {"created": 1700000000, "data": [{"url": "https://images.example/c.png"}]}  # type: ignore[dict-item]
            await self.respond_json(send, reply)
        elif path == "/v1/messages":
            if stream:
                await self.stream(send, anthropic_stream(), request)
            else:
                await self.respond_json(send, ANTHROPIC_MESSAGE)
        elif path.endswith(":streamGenerateContent"):
            await self.stream(send, [sse(GEMINI_ANSWER)], request)
        elif path.endswith(":generateContent"):
            await self.respond_json(send, GEMINI_ANSWER)
        elif path.endswith(":batchEmbedContents"):
            await self.respond_json(send, {"embeddings": [{"values": [0.25, -0.5]}]})
        else:
            await self.respond_json(send, {"error": {"message": "not found"}}, status=404)


@pytest.fixture(scope="module")
def canned() -> Iterator[CannedUpstream]:
    upstream = CannedUpstream()
    with serving(upstream):
        yield upstream


@pytest.fixture
def fuzz_tenant(transactional_db, redis_client, canned, gateway_url) -> Iterator[Tenant]:
    saved = django_settings.PROVIDERS
    canned_openai = {"api_key": "sk-canned", "base_url": canned.base_url + "/v1"}
    django_settings.PROVIDERS = {
        **saved,
        "openai": canned_openai,
        "mistral": canned_openai,
        "anthropic": {"api_key": "sk-ant-canned", "base_url": canned.base_url},
        "gemini": {"api_key": "gemini-canned", "base_url": canned.base_url},
    }
    tenant = new_tenant(gateway_url, name="Fuzz", email="fuzz@example.com", dollars=1000)
    canned.reset()
    canned.malformed.clear()
    yield tenant
    django_settings.PROVIDERS = saved
    assert canned.malformed == [], "the gateway sent a provider a body that is not a JSON object"
    assert_all_settled()


def assert_nothing_held(organization_id: int) -> None:
    """Each call settles its credit as it ends (a stream's may take a moment longer)."""
    deadline = time.monotonic() + 5
    while held_nanos(organization_id):
        assert time.monotonic() < deadline, "a call left credit held"
        time.sleep(0.01)


@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # one key per operation
def test_every_generated_request_gets_a_documented_answer_never_a_5xx(
    case, fuzz_tenant, redis_client
):
    started = time.monotonic()
    response = case.call_and_validate(
        base_url=f"{fuzz_tenant.url}/v1",
        headers={"authorization": f"Bearer {fuzz_tenant.key}"},
        checks=CHECKS,
        timeout=TIMEOUT,
    )
    assert time.monotonic() - started < TIMEOUT
    if response.status_code >= 400:
        answer = response.json()
        error = answer["error"]
        if case.path.startswith("/messages"):  # Anthropic's error shape
            assert answer["type"] == "error" and set(answer) == {"type", "error", "request_id"}
            assert set(error) == {"type", "message"}
        else:
            assert set(error) == {"message", "type", "param", "code"}
        assert response.status_code < 500, error
    assert_nothing_held(fuzz_tenant.organization.pk)
