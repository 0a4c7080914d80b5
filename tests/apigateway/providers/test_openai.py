"""The OpenAI-shaped adapters (apigateway.providers.openai), pure: the chat request with the
upstream model and the operator's key, Azure's deployment path and api-key header, the
answer under the public model name with its usage, the stream translator (the usage chunk
shown only when asked for, an id always) and the map of upstream errors to the gateway's."""

import orjson
import pytest

from apigateway.errors import GatewayError
from apigateway.providers.base import Deployment
from apigateway.providers.openai import AzureOpenAIProvider, OpenAIProvider
from apigateway.sse import SSEEvent

DEPLOYMENT = Deployment(
    provider="groq",
    upstream_model="llama-3.3-70b-versatile",
    base_url="https://api.groq.example/openai/v1",
    api_key="gsk-operator",
    extra_headers={"x-team": "ml"},
)


def test_request_renames_the_model_and_uses_the_operator_key():
    body = {"model": "llama", "messages": [{"role": "user", "content": "hi"}], "seed": 3}
    request = OpenAIProvider().build_chat_request(body, DEPLOYMENT)
    assert request.url == "https://api.groq.example/openai/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer gsk-operator"
    assert request.headers["x-team"] == "ml"
    sent = orjson.loads(request.body)
    assert sent == {**body, "model": "llama-3.3-70b-versatile"}


def test_streams_always_ask_for_usage():
    body = {"model": "m", "messages": [], "stream": True}
    sent = orjson.loads(OpenAIProvider().build_chat_request(body, DEPLOYMENT).body)
    assert sent["stream_options"] == {"include_usage": True}


def test_azure_puts_the_deployment_in_the_path_and_the_key_in_api_key():
    azure = Deployment(
        provider="azure",
        upstream_model="my-gpt4o",
        base_url="https://acme.openai.azure.com",
        api_key="az-key",
        api_version="2024-10-21",
    )
    request = AzureOpenAIProvider().build_embeddings_request({"input": "x", "model": "e"}, azure)
    assert request.url == (
        "https://acme.openai.azure.com/openai/deployments/my-gpt4o/embeddings"
        "?api-version=2024-10-21"
    )
    assert request.headers["api-key"] == "az-key"
    assert "authorization" not in request.headers


def test_response_gets_the_public_model_name_and_usage():
    data = orjson.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "model": "llama-3.3-70b-versatile",
            "choices": [],
            "usage": {
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "total_tokens": 15,
                "prompt_tokens_details": {"cached_tokens": 4},
            },
        }
    )
    payload, usage = OpenAIProvider().parse_chat_response(
        data, model="llama", deployment=DEPLOYMENT
    )
    assert payload["model"] == "llama"
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (10, 5, 4)


def test_unreadable_answer_is_502():
    with pytest.raises(GatewayError) as caught:
        OpenAIProvider().parse_chat_response(b"<html>", model="m", deployment=DEPLOYMENT)
    assert caught.value.status == 502


def chunk(**fields) -> SSEEvent:
    base = {"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": "up"}
    return SSEEvent(orjson.dumps({**base, **fields}).decode())


@pytest.mark.parametrize("include_usage", [True, False])
def test_stream_hides_the_usage_chunk_unless_asked(include_usage):
    translator = OpenAIProvider().stream_translator(
        model="public", include_usage=include_usage, deployment=DEPLOYMENT
    )
    delta = {"index": 0, "delta": {"content": "hi"}, "finish_reason": None}
    usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    out = translator.feed(chunk(choices=[delta], usage=None))
    out += translator.feed(chunk(choices=[], usage=usage))
    out += translator.feed(SSEEvent("[DONE]"))
    out += translator.close()
    assert translator.finished
    assert out[0]["model"] == "public" and out[0]["id"] == "chatcmpl-up"
    assert translator.usage.prompt_tokens == 3
    assert translator.ascii_chars == len("hi")  # what a stream cut short is billed from
    assert translator.final_usage and translator.billable_usage(1000) == translator.usage
    if include_usage:
        assert out[0]["usage"] is None
        assert out[-1]["choices"] == [] and out[-1]["usage"]["total_tokens"] == 4
        assert out[-1]["id"] == "chatcmpl-up"
        assert len(out) == 2
    else:
        assert "usage" not in out[0]
        assert len(out) == 1


def test_a_usage_chunk_has_an_id_even_when_the_provider_gave_none():
    translator = OpenAIProvider().stream_translator(
        model="public", include_usage=True, deployment=DEPLOYMENT
    )
    delta = {"index": 0, "delta": {"content": "hi"}, "finish_reason": None}
    usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    translator.feed(SSEEvent(orjson.dumps({"choices": [delta]}).decode()))
    translator.feed(SSEEvent(orjson.dumps({"choices": [], "usage": usage}).decode()))
    [last] = translator.close()
    assert last["id"].startswith("chatcmpl-") and len(last["id"]) == len("chatcmpl-") + 24


@pytest.mark.parametrize("content", [0, [], {"text": "x"}, 12])
def test_a_chunk_whose_content_is_not_text_is_502(content):
    translator = OpenAIProvider().stream_translator(
        model="m", include_usage=False, deployment=DEPLOYMENT
    )
    with pytest.raises(GatewayError) as caught:
        translator.feed(chunk(choices=[{"index": 0, "delta": {"content": content}}]))
    assert caught.value.status == 502


def test_an_error_inside_a_stream_is_a_gateway_error():
    translator = OpenAIProvider().stream_translator(
        model="m", include_usage=False, deployment=DEPLOYMENT
    )
    with pytest.raises(GatewayError) as caught:
        translator.feed(SSEEvent('{"error": {"message": "overloaded"}}'))
    assert caught.value.status == 502 and caught.value.message == "overloaded"


@pytest.mark.parametrize(
    ("status", "expected"), [(400, 400), (404, 400), (401, 502), (403, 502), (429, 503), (500, 502)]
)
def test_error_mapping(status, expected):
    error = OpenAIProvider().map_error(status, b'{"error": {"message": "m"}}')
    assert error.status == expected
