"""Anthropic's Messages API on the gateway (POST /v1/messages, /v1/messages/count_tokens),
called with the official anthropic SDK as Claude Code calls it (`ANTHROPIC_BASE_URL` = the
gateway, the key in `x-api-key`): passed through to the fake Anthropic for Claude models,
translated to and from chat completions for the other families."""

from __future__ import annotations

import anthropic
import httpx
import orjson
import pytest

from accounts.models import User
from accounts.services import api_key_create, organization_create
from apigateway.surfaces import encode_typed
from tests.apigateway.conftest import ANTHROPIC_KEY, UPSTREAM_KEY
from tests.apigateway.test_usage_records import record_of
from tests.fakes.anthropic import signature
from tests.ledger_check import assert_balance_reconciles

WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
PIXEL = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
BETAS = "claude-code-20250219,interleaved-thinking-2025-05-14,prompt-caching-2024-07-31"


def sdk(tenant, **options) -> anthropic.Anthropic:
    """The SDK as Claude Code configures it: the gateway's root as base URL, x-api-key."""
    options.setdefault("api_key", tenant.key)
    return anthropic.Anthropic(base_url=tenant.url, max_retries=0, **options)


def say(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


# --- the endpoints exist, with x-api-key or Bearer ----------------------------------------


def test_create_passes_the_request_through_to_anthropic(tenant, fake_anthropic):
    system = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    raw = sdk(tenant).messages.with_raw_response.create(
        model="claude-3-5-sonnet",
        max_tokens=300,
        system=system,
        messages=say("Hello Claude"),
        extra_body={"temperature": 0.5},  # (this SDK has no argument for it)
    )
    message = raw.parse()
    assert message.content[0].text == "Echo: Hello Claude"
    assert message.model == "claude-3-5-sonnet"
    assert message.stop_reason == "end_turn"
    # (the marked system block, 2 words, is written to the cache: Anthropic counts it apart)
    assert message.usage.input_tokens == 2 and message.usage.cache_creation_input_tokens == 2
    assert message.usage.output_tokens == 3
    assert float(raw.headers["x-nexeon-cost"]) > 0
    sent = fake_anthropic.requests[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == ANTHROPIC_KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert tenant.key not in sent.body.decode() and tenant.key not in str(sent.headers)
    assert sent.json() == {
        "model": "claude-3-5-sonnet-20241022",
        "max_tokens": 300,
        "system": system,
        "messages": say("Hello Claude"),
        "temperature": 0.5,
    }


def test_bearer_works_too(tenant, fake_anthropic):
    client = anthropic.Anthropic(base_url=tenant.url, auth_token=tenant.key, max_retries=0)
    message = client.messages.create(model="claude-3-5-haiku", max_tokens=50, messages=say("hi"))
    assert message.content[0].text == "Echo: hi"


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/models", "/v1/credits"])
def test_x_api_key_is_accepted_on_every_v1_path(tenant, fake_openai, path):
    headers = {"x-api-key": tenant.key}
    if path == "/v1/chat/completions":
        body = {"model": "gpt-4o-mini", "messages": say("hello")}
        response = httpx.post(tenant.url + path, json=body, headers=headers, timeout=30)
    else:
        response = httpx.get(tenant.url + path, headers=headers, timeout=30)
    assert response.status_code == 200, response.text


def test_stream_is_relayed_as_anthropic_sends_it(tenant, fake_anthropic):
    with sdk(tenant).messages.stream(
        model="claude-3-5-sonnet", max_tokens=100, messages=say("one two three")
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Echo: one two three"
    assert final.model == "claude-3-5-sonnet"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 4 and final.usage.input_tokens == 3
    assert fake_anthropic.requests[-1].json()["stream"] is True


def test_raw_stream_events_are_anthropics_own(tenant, fake_anthropic):
    response = httpx.post(
        f"{tenant.url}/v1/messages",
        json={
            "model": "claude-3-5-sonnet",
            "max_tokens": 100,
            "stream": True,
            "messages": say("one two"),
        },
        headers={"x-api-key": tenant.key, "anthropic-version": "2023-06-01"},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)
    assert events[0][1]["message"]["model"] == "claude-3-5-sonnet"
    assert "[DONE]" not in response.text
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["output_tokens"] == 3
    assert delta["usage"]["cost"] > 0


def parse_sse(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], orjson.loads(lines["data"])))
    return events


# --- what Claude Code sends ---------------------------------------------------------------


def claude_code_body(stream: bool) -> dict:
    cached = {"type": "ephemeral"}
    return {
        "model": "claude-sonnet-4",
        "max_tokens": 16000,  # (the SDK asks larger ones to stream)
        "stream": stream,
        "system": [
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI."},
            {"type": "text", "text": "Work in /repo.", "cache_control": cached},
        ],
        "tools": [{**WEATHER, "cache_control": cached}],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "metadata": {"user_id": "user_abc_account__session_123"},
        "temperature": 1,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "What is the weather?"}]},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "thinking",
                        "thinking": "I should ask.",
                        "signature": signature("I should ask."),
                    },
                    {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01A",
                        "is_error": True,
                        "content": [{"type": "text", "text": "city is required"}],
                    },
                    {
                        "type": "text",
                        "text": "Try Paris.",
                        "cache_control": cached,
                    },
                ],
            },
        ],
    }


@pytest.mark.parametrize("stream", [False, True])
def test_claude_codes_request_shape_goes_through_as_it_is(tenant, fake_anthropic, stream):
    body = claude_code_body(stream)
    client = sdk(tenant, default_headers={"anthropic-beta": BETAS})
    arguments = {k: v for k, v in body.items() if k not in ("stream", "temperature")}
    extra = {"temperature": body["temperature"]}
    if stream:
        with client.messages.stream(**arguments, extra_body=extra) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**arguments, extra_body=extra)
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "Thinking about: Try Paris."
    assert message.content[0].signature == signature("Thinking about: Try Paris.")
    assert message.content[1].text == "The tool said: city is required"
    sent = fake_anthropic.requests[-1]
    assert sent.headers["anthropic-beta"] == BETAS
    expected = {**body, "model": "claude-sonnet-4-20250514"}
    if not stream:
        del expected["stream"]  # (create() sends none)
    assert sent.json() == expected


def test_prompt_cache_reads_and_writes_are_part_of_the_prompt(tenant, fake_anthropic):
    fake_anthropic.bills.update(cache_read=1000, cache_creation=200)
    raw = sdk(tenant).messages.with_raw_response.create(
        model="claude-3-5-sonnet", max_tokens=100, messages=say("hi there")
    )
    message = raw.parse()
    assert message.usage.cache_read_input_tokens == 1000
    assert message.usage.cache_creation_input_tokens == 200
    record = record_of(raw.http_response)
    assert record.endpoint == "messages"
    assert record.model == "claude-3-5-sonnet" and record.provider == "anthropic"
    assert record.prompt_tokens == message.usage.input_tokens + 1200
    assert record.cached_tokens == 1000
    assert record.completion_tokens == message.usage.output_tokens
    assert record.cost_nanos == round(float(raw.headers["x-nexeon-cost"]) * 1e9) > 0


def test_a_streams_usage_is_billed_with_its_cache_counts(tenant, fake_anthropic):
    fake_anthropic.bills.update(cache_read=500)
    with sdk(tenant).messages.with_streaming_response.create(
        model="claude-3-5-sonnet", max_tokens=100, messages=say("a b c"), stream=True
    ) as response:
        text = response.read().decode()
        record = record_of(response.http_response)
    assert record.streamed and record.endpoint == "messages"
    assert record.cached_tokens == 500
    assert record.prompt_tokens == 3 + 500
    assert record.completion_tokens == 4
    assert '"cache_read_input_tokens":500' in text


def test_a_beta_that_changes_the_price_is_refused(tenant, fake_anthropic):
    client = sdk(tenant, default_headers={"anthropic-beta": "context-1m-2025-08-07"})
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="claude-sonnet-4", max_tokens=10, messages=say("hi"))
    assert "context-1m-2025-08-07" in caught.value.message
    assert fake_anthropic.requests == []


@pytest.mark.parametrize("stream", [False, True])
def test_claude_codes_request_shape_is_translated_for_a_reasoning_model(
    tenant, providers, fake_openai, stream
):
    providers["deepseek"] = {"api_key": UPSTREAM_KEY, "base_url": fake_openai.base_url + "/v1"}
    body = {**claude_code_body(stream), "model": "deepseek-reasoner"}
    client = sdk(tenant, default_headers={"anthropic-beta": BETAS})
    arguments = {k: v for k, v in body.items() if k not in ("stream", "temperature")}
    if stream:
        with client.messages.stream(**arguments) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**arguments)
    assert message.model == "deepseek-reasoner"
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].thinking.strip() == "Thinking about: Try Paris."
    assert message.content[1].text == "Echo: Try Paris."
    sent = fake_openai.requests[-1]
    assert sent.path == "/v1/chat/completions"
    chat = sent.json()
    assert b"cache_control" not in sent.body and b"signature" not in sent.body
    assert chat["thinking"] == {"type": "enabled"}
    assert chat["user"] == "user_abc_account__session_123"
    assert chat["tools"][0]["function"]["name"] == "get_weather"
    assert chat["messages"] == [
        {
            "role": "system",
            "content": "You are Claude Code, Anthropic's official CLI.\n\nWork in /repo.",
        },
        {"role": "user", "content": "What is the weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_01A",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_01A", "content": "Error: city is required"},
        {"role": "user", "content": "Try Paris."},
    ]


def test_claude_codes_thinking_on_a_model_that_cannot_reason_is_a_400(tenant, fake_openai):
    body = {**claude_code_body(False), "model": "gpt-4o"}
    arguments = {k: v for k, v in body.items() if k not in ("stream", "temperature")}
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk(tenant).messages.create(**arguments)
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert "cannot reason" in caught.value.message
    assert fake_openai.requests == []


# --- translated for the other families ----------------------------------------------------


def test_create_is_translated_for_an_openai_model(tenant, fake_openai):
    message = sdk(tenant).messages.create(
        model="gpt-4o",
        max_tokens=200,
        system="Be brief.",
        messages=say("Hello GPT"),
        stop_sequences=["never"],
        metadata={"user_id": "u-1"},
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert message.model == "gpt-4o"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Echo: Hello GPT"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 3 and message.usage.input_tokens == 4
    sent = fake_openai.requests[-1]
    assert sent.path == "/v1/chat/completions"
    body = sent.json()
    assert body["model"] == "gpt-4o"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello GPT"},
    ]
    assert body["max_completion_tokens"] == 200
    assert body["stop"] == ["never"] and body["user"] == "u-1"


def test_translated_stream_has_anthropics_event_sequence(tenant, fake_openai):
    with sdk(tenant).messages.stream(
        model="gpt-4o-mini", max_tokens=100, messages=say("one two three")
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    types = [event.type for event in events]
    assert types[0] == "message_start"
    assert types[-2:] == ["message_delta", "message_stop"]
    assert "content_block_start" in types and "content_block_stop" in types
    assert final.content[0].text == "Echo: one two three"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 4 and final.usage.input_tokens == 3
    assert final.model == "gpt-4o-mini"


def test_translated_tool_use_round_trip(tenant, fake_openai):
    client = sdk(tenant)
    first = client.messages.create(
        model="gpt-4o",
        max_tokens=100,
        tools=[WEATHER],
        tool_choice={"type": "any"},
        messages=say("What is the weather in Paris?"),
    )
    assert first.stop_reason == "tool_use"
    call = first.content[-1]
    assert call.type == "tool_use" and call.name == "get_weather"
    assert call.input == {"city": "Paris"}
    sent = fake_openai.requests[-1].json()
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather in a city",
                "parameters": WEATHER["input_schema"],
            },
        }
    ]
    assert sent["tool_choice"] == "required"
    second = client.messages.create(
        model="gpt-4o",
        max_tokens=100,
        tools=[WEATHER],
        messages=[
            *say("What is the weather in Paris?"),
            {"role": "assistant", "content": [c.model_dump() for c in first.content]},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": call.id,
                        "content": [{"type": "text", "text": "sunny"}],
                    }
                ],
            },
        ],
    )
    assert second.content[0].text == "The tool said: sunny"
    messages = fake_openai.requests[-1].json()["messages"]
    assert messages[1]["tool_calls"][0]["id"] == call.id
    assert messages[2] == {"role": "tool", "tool_call_id": call.id, "content": "sunny"}


def test_translated_stream_of_a_tool_call(tenant, fake_openai):
    with sdk(tenant).messages.stream(
        model="gpt-4o", max_tokens=100, tools=[WEATHER], messages=say("weather in Paris?")
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[-1].type == "tool_use"
    assert final.content[-1].input == {"city": "Paris"}


def test_translated_stream_carries_reasoning_as_thinking(tenant, fake_openai):
    fake_openai.script = [
        {"reasoning_content": "Thinking"},
        {"reasoning_content": " hard."},
        {"content": "Done."},
    ]
    with sdk(tenant).messages.stream(
        model="mistral-large-latest", max_tokens=100, messages=say("think")
    ) as stream:
        final = stream.get_final_message()
    assert [block.type for block in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "Thinking hard."
    assert final.content[1].text == "Done."


def test_images_are_translated_for_other_families(tenant, fake_openai):
    sdk(tenant).messages.create(
        model="gpt-4o",
        max_tokens=50,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PIXEL},
                    },
                ],
            }
        ],
    )
    content = fake_openai.requests[-1].json()["messages"][0]["content"]
    assert content[1] == {
        "type": "image_url",
        "image_url": {"url": f"data:image/png;base64,{PIXEL}"},
    }


def test_a_gemini_model_answers_in_anthropics_shape(tenant, fake_gemini):
    message = sdk(tenant).messages.create(
        model="gemini-2.5-flash", max_tokens=100, messages=say("Hello Gemini")
    )
    assert message.model == "gemini-2.5-flash"
    assert "Hello Gemini" in message.content[0].text
    assert message.usage.output_tokens > 0


def test_cache_control_is_dropped_for_families_that_cache_by_themselves(tenant, fake_openai):
    sdk(tenant).messages.create(
        model="gpt-4o",
        max_tokens=50,
        system=[{"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral"}}],
        messages=say("hi"),
    )
    assert "cache_control" not in fake_openai.requests[-1].body.decode()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"tools": [{"type": "bash_20250124", "name": "bash"}]}, "bash_20250124"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "Read this."},
                            {"type": "document", "source": {"type": "file", "file_id": "f_1"}},
                        ],
                    }
                ]
            },
            "'file' source",
        ),
    ],
)
def test_what_only_claude_takes_is_a_400_for_the_other_families(tenant, fake_openai, change, words):
    arguments = {"model": "gpt-4o", "max_tokens": 50, "messages": say("hi"), **change}
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk(tenant).messages.create(**arguments)
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert words in caught.value.message
    assert fake_openai.requests == []


# --- count_tokens ----------------------------------------------------------------------------


def test_count_tokens_asks_anthropic_and_costs_nothing(tenant, fake_anthropic):
    before = assert_balance_reconciles(tenant.organization.pk)
    counted = sdk(tenant).messages.count_tokens(
        model="claude-3-5-sonnet", system="Be brief.", messages=say("one two three")
    )
    assert counted.input_tokens == 5
    sent = fake_anthropic.requests[-1]
    assert sent.path == "/v1/messages/count_tokens"
    assert sent.json()["model"] == "claude-3-5-sonnet-20241022"
    assert assert_balance_reconciles(tenant.organization.pk) == before


def test_count_tokens_estimates_for_other_families(tenant, fake_openai):
    counted = sdk(tenant).messages.count_tokens(
        model="gpt-4o", messages=say("a fairly long sentence of words " * 20)
    )
    assert 100 < counted.input_tokens < 400
    assert fake_openai.requests == []


def test_count_tokens_is_rate_limited_as_a_request(tenant, fake_anthropic):
    key = api_key_create(organization=tenant.organization, name="rpm1", rpm_limit=1).plaintext
    client = sdk(tenant, api_key=key)
    client.messages.count_tokens(model="claude-3-5-sonnet", messages=say("hi"))
    with pytest.raises(anthropic.RateLimitError):
        client.messages.count_tokens(model="claude-3-5-sonnet", messages=say("hi"))


# --- errors in Anthropic's shape ------------------------------------------------------------


def assert_anthropic_error(response: httpx.Response, status: int, kind: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"type", "error", "request_id"}
    assert body["type"] == "error"
    assert body["error"]["type"] == kind
    assert body["request_id"] == response.headers["x-request-id"]
    return body["error"]["message"]


def test_a_wrong_key_is_an_authentication_error(tenant):
    with pytest.raises(anthropic.AuthenticationError) as caught:
        sdk(tenant, api_key="nex-sk-" + "0" * 48).messages.create(
            model="claude-3-5-sonnet", max_tokens=10, messages=say("hi")
        )
    assert "API key" in caught.value.message
    response = httpx.post(f"{tenant.url}/v1/messages", json={}, timeout=30)
    message = assert_anthropic_error(response, 401, "authentication_error")
    assert "x-api-key" in message


def test_an_unknown_model_is_not_found(tenant):
    with pytest.raises(anthropic.NotFoundError) as caught:
        sdk(tenant).messages.create(model="claude-nope", max_tokens=10, messages=say("hi"))
    assert "claude-nope" in caught.value.message
    assert caught.value.body["error"]["type"] == "not_found_error"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"frobnicate": True}, "frobnicate"),
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "system", "content": "x"}]}, "role"),
        ({"messages": [{"role": "user", "content": [{"type": "frob"}]}]}, "frob"),
        ({"system": 5}, "system"),
        ({"tools": [{"name": "x"}]}, "input_schema"),
        ({"thinking": {"type": "enabled"}}, "budget_tokens"),
        ({"speed": "fast"}, "speed"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "web_search"),
    ],
)
def test_bad_requests_are_400_in_anthropics_shape(tenant, fake_anthropic, change, words):
    body = {"model": "claude-3-5-sonnet", "max_tokens": 10, "messages": say("hi"), **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = httpx.post(
        f"{tenant.url}/v1/messages", json=body, headers={"x-api-key": tenant.key}, timeout=30
    )
    message = assert_anthropic_error(response, 400, "invalid_request_error")
    assert words in message
    assert fake_anthropic.requests == []


def test_bad_json_is_400_in_anthropics_shape(tenant):
    response = httpx.post(
        f"{tenant.url}/v1/messages",
        content=b"{not json",
        headers={"x-api-key": tenant.key},
        timeout=30,
    )
    assert_anthropic_error(response, 400, "invalid_request_error")


def test_sdk_raises_bad_request_with_the_message(tenant):
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk(tenant).messages.create(
            model="claude-3-5-sonnet", max_tokens=10, messages=say("hi"), extra_body={"bogus": 1}
        )
    assert "bogus" in caught.value.message


def test_no_credit_is_402_billing_error(tenant, fake_anthropic):
    owner = User.objects.create_user(email="broke@example.com")
    broke = organization_create(name="Broke", owner=owner)
    key = api_key_create(organization=broke, name="k").plaintext
    with pytest.raises(anthropic.APIStatusError) as caught:
        sdk(tenant, api_key=key).messages.create(
            model="claude-3-5-sonnet", max_tokens=10, messages=say("hi")
        )
    assert caught.value.status_code == 402
    assert caught.value.body["error"]["type"] == "billing_error"
    assert "credit" in caught.value.message.lower()
    assert fake_anthropic.requests == []


def test_rate_limit_is_a_rate_limit_error(tenant, fake_anthropic):
    key = api_key_create(organization=tenant.organization, name="rpm1", rpm_limit=1).plaintext
    client = sdk(tenant, api_key=key)
    client.messages.create(model="claude-3-5-sonnet", max_tokens=10, messages=say("hi"))
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="claude-3-5-sonnet", max_tokens=10, messages=say("hi"))
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert "retry-after" in caught.value.response.headers


def test_a_providers_400_keeps_its_message(tenant, fake_anthropic):
    fake_anthropic.fail_next(
        400,
        {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": "prompt is too long"},
        },
    )
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk(tenant).messages.create(model="claude-3-5-sonnet", max_tokens=10, messages=say("hi"))
    assert "prompt is too long" in caught.value.message


def test_an_error_mid_stream_is_an_error_event(tenant, fake_anthropic):
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    fake_anthropic.script = [
        ({"type": "text", "text": ""}, [{"type": "text_delta", "text": "Hel"}]),
        encode_typed([overloaded]),
    ]
    fake_anthropic.hold = True
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        sdk(tenant).messages.stream(
            model="claude-3-5-sonnet", max_tokens=10, messages=say("hi")
        ) as stream,
    ):
        list(stream)
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "overloaded_error"
    assert "Overloaded" in caught.value.message
