"""POST /v1/responses with the official openai SDK: passed through to OpenAI, translated to
and from chat for every other family (an OpenAI-compatible API without the Responses API,
Anthropic, Gemini); billed, limited and recorded as chat is."""

from __future__ import annotations

import httpx
import openai
import orjson
import pytest

from accounts.models import User
from accounts.services import api_key_create, organization_create
from billing.models import LedgerEntry
from tests.apigateway.conftest import UPSTREAM_KEY
from tests.apigateway.test_usage_records import record_of

# One model per way a call is served: passed through, and translated per family.
PASSED = "gpt-4o"
TRANSLATED = ["mistral-large-latest", "claude-3-5-sonnet", "gemini-2.5-flash"]
EVERY = [PASSED, *TRANSLATED]
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def post(tenant, path: str, body, method: str = "POST") -> httpx.Response:
    return httpx.request(
        method,
        f"{tenant.url}/v1{path}",
        json=body,
        headers={"authorization": f"Bearer {tenant.key}"},
        timeout=30,
    )


def sse_events(body: bytes) -> list[tuple[str, dict]]:
    """(event name, data) of a named-event stream."""
    out = []
    for block in body.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((lines["event"], orjson.loads(lines["data"])))
    return out


def ledger_charge(request_id: str) -> int:
    return -LedgerEntry.objects.get(reference=f"usage:{request_id}").amount_nanos


@pytest.mark.parametrize("model", EVERY)
def test_create_answers_a_response_with_usage_and_cost(tenant, model):
    raw = tenant.client().responses.with_raw_response.create(
        model=model, input="Hello there!", instructions="Be brief."
    )
    response = raw.parse()
    assert response.object == "response"
    assert response.id.startswith("resp_")
    assert response.model == model
    assert response.status == "completed"
    assert response.output_text == "Echo: Hello there!"
    assert response.store is False
    message = response.output[-1]
    assert (message.type, message.role, message.status) == ("message", "assistant", "completed")
    usage = response.usage
    assert usage.input_tokens > 0 and usage.output_tokens == 3
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0
    cost = raw.headers["x-nexeon-cost"]
    assert float(cost) > 0 and response.usage.model_extra["cost"] == float(cost)
    record = record_of(raw.http_response)
    assert (record.endpoint, record.model, record.status) == ("responses", model, 200)
    assert (record.prompt_tokens, record.completion_tokens) == (
        usage.input_tokens,
        usage.output_tokens,
    )
    assert ledger_charge(raw.headers["x-request-id"]) == round(float(cost) * 10**9)


def test_openai_models_are_passed_through_stateless(tenant, fake_openai):
    response = tenant.client().responses.create(
        model=PASSED,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Hi"}]}],
        store=True,
        max_output_tokens=50,
        metadata={"ticket": "42"},
    )
    assert response.output_text == "Echo: Hi"
    assert response.store is False  # nothing is kept, whatever the caller asked
    sent = fake_openai.requests[-1]
    assert sent.path == "/v1/responses"
    body = sent.json()
    assert body["model"] == "gpt-4o"
    assert body["store"] is False
    assert body["max_output_tokens"] == 50
    assert body["input"] == [{"role": "user", "content": [{"type": "input_text", "text": "Hi"}]}]


def test_the_passthrough_caps_output_at_what_was_reserved(tenant, fake_openai):
    tenant.client().responses.create(model=PASSED, input="Hi")
    # No cap asked: the model's maximum output, which the reservation pays for.
    assert fake_openai.requests[-1].json()["max_output_tokens"] == 16384


@pytest.mark.parametrize("model", EVERY)
def test_streamed_events_are_the_responses_api_events(tenant, model):
    stream = tenant.client().responses.create(model=model, input="one two three", stream=True)
    events = list(stream)
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    for expected in (
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ):
        assert expected in kinds
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert len({event.response.id for event in events if hasattr(event, "response")}) == 1
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Echo: one two three"
    done = events[-1].response
    assert done.model == model and done.status == "completed" and done.output_text == text
    assert done.usage.output_tokens == 4
    assert done.usage.model_extra["cost"] > 0


@pytest.mark.parametrize("model", EVERY)
def test_the_sdk_stream_helper_accumulates_the_final_response(tenant, model):
    with tenant.client().responses.stream(model=model, input="alpha beta") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "Echo: alpha beta"
    assert final.output_text == "Echo: alpha beta"
    assert final.usage.output_tokens == 3


def test_a_stream_is_billed_and_recorded_as_a_responses_call(tenant):
    with httpx.stream(
        "POST",
        f"{tenant.url}/v1/responses",
        json={"model": "claude-3-5-sonnet", "input": "hello there", "stream": True},
        headers={"authorization": f"Bearer {tenant.key}"},
        timeout=30,
    ) as response:
        body = response.read()
    assert response.headers["content-type"].startswith("text/event-stream")
    name, completed = sse_events(body)[-1]
    assert name == "response.completed"
    record = record_of(response)
    assert (record.endpoint, record.streamed) == ("responses", True)
    cost = completed["response"]["usage"]["cost"]
    assert record.cost_nanos == round(cost * 10**9) > 0
    assert ledger_charge(response.headers["x-request-id"]) == record.cost_nanos


@pytest.mark.parametrize("model", EVERY)
def test_function_tools_round_trip(tenant, model):
    client = tenant.client()
    history: list = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.responses.create(model=model, input=history, tools=[WEATHER_TOOL])
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "get_weather" and orjson.loads(call.arguments) == {"city": "Paris"}
    assert call.call_id
    history += [item.model_dump(exclude_none=True) for item in first.output]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "sunny"})
    second = client.responses.create(model=model, input=history, tools=[WEATHER_TOOL])
    assert second.output_text == "The tool said: sunny"


@pytest.mark.parametrize("model", EVERY)
def test_streamed_function_calls(tenant, model):
    with tenant.client().responses.stream(
        model=model, input="What is the weather in Paris?", tools=[WEATHER_TOOL]
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert "response.function_call_arguments.delta" in kinds
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert len(done) == 1 and orjson.loads(done[0].arguments) == {"city": "Paris"}
    call = final.output[-1]
    assert call.type == "function_call" and call.name == "get_weather"
    assert orjson.loads(call.arguments) == {"city": "Paris"}


def test_request_options_are_translated_to_chat(tenant, fake_openai):
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    tenant.client().responses.create(
        model="mistral-large-latest",
        instructions="You are terse.",
        input=[
            {"role": "developer", "content": "Answer in JSON."},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Describe"},
                    {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="},
                ],
            },
        ],
        max_output_tokens=40,
        temperature=0.3,
        top_p=0.9,
        text={
            "format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": True}
        },
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "name": "get_weather"},
        parallel_tool_calls=False,
        user="end-user-1",
    )
    sent = fake_openai.requests[-1]
    assert sent.path == "/v1/chat/completions"
    body = sent.json()
    assert body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": "Answer in JSON."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        },
    ]
    assert body["max_tokens"] == 40
    assert (body["temperature"], body["top_p"]) == (0.3, 0.9)
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather in a city",
                "parameters": WEATHER_TOOL["parameters"],
            },
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False
    assert body["user"] == "end-user-1"


def test_reasoning_effort_reaches_a_translated_reasoning_model(tenant, providers, fake_openai):
    providers["deepseek"] = {"api_key": UPSTREAM_KEY, "base_url": fake_openai.base_url + "/v1"}
    response = tenant.client().responses.create(
        model="deepseek-reasoner", input="Hi", reasoning={"effort": "high"}
    )
    body = fake_openai.requests[-1].json()
    assert (body["reasoning_effort"], body["thinking"]) == ("high", {"type": "enabled"})
    # DeepSeek thinks aloud: its reasoning_content comes back as a reasoning item.
    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.output[0].content[0].text


def test_reasoning_from_chat_becomes_a_reasoning_item(tenant, fake_openai):
    fake_openai.script = [
        {"reasoning_content": "Think"},
        {"reasoning_content": " hard."},
        {"content": "Done"},
    ]
    with tenant.client().responses.stream(model="mistral-large-latest", input="hi") as stream:
        events = list(stream)
        final = stream.get_final_response()
    reasoning = [e.delta for e in events if e.type == "response.reasoning_text.delta"]
    assert "".join(reasoning) == "Think hard."
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output[0].content[0].text == "Think hard."
    assert final.output_text == "Done"
    indexes = [e.output_index for e in events if e.type == "response.output_item.added"]
    assert indexes == [0, 1]


def test_a_length_stop_is_an_incomplete_response(tenant):
    response = tenant.client().responses.create(
        model="claude-3-5-sonnet", input="one two three four five", max_output_tokens=2
    )
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "Echo: one"


@pytest.mark.parametrize("model", [PASSED, "claude-3-5-sonnet"])
def test_previous_response_id_is_refused_with_what_to_send(tenant, model, fake_openai):
    with pytest.raises(openai.BadRequestError) as caught:
        tenant.client().responses.create(model=model, input="hi", previous_response_id="resp_1")
    error = caught.value.body
    assert error["param"] == "previous_response_id"
    assert "input" in error["message"] and "not stored" in error["message"]
    with pytest.raises(openai.BadRequestError) as caught:
        tenant.client().responses.create(model=model, input="hi", conversation="conv_1")
    assert caught.value.body["param"] == "conversation"
    assert not fake_openai.requests


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/responses/resp_123"),
        ("DELETE", "/responses/resp_123"),
        ("GET", "/responses/resp_123/input_items"),
    ],
)
def test_stored_responses_do_not_exist(tenant, method, path):
    answer = post(tenant, path, None, method=method)
    assert answer.status_code == 404
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "not stored" in error["message"]


def test_retrieving_a_response_with_the_sdk_says_responses_are_not_stored(tenant):
    with pytest.raises(openai.NotFoundError) as caught:
        tenant.client().responses.retrieve("resp_123")
    assert "not stored" in caught.value.body["message"]


@pytest.mark.parametrize("model", [PASSED, "claude-3-5-sonnet"])
@pytest.mark.parametrize(
    "tool", [{"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["vs_1"]}]
)
def test_built_in_tools_are_refused(tenant, model, tool, fake_openai, fake_anthropic):
    with pytest.raises(openai.BadRequestError) as caught:
        tenant.client().responses.create(model=model, input="hi", tools=[tool])
    assert caught.value.body["param"] == "tools"
    assert tool["type"] in caught.value.body["message"]
    assert not fake_openai.requests and not fake_anthropic.requests


def test_include_values_that_need_storage_or_tools_are_refused(tenant):
    with pytest.raises(openai.BadRequestError) as caught:
        tenant.client().responses.create(
            model=PASSED, input="hi", include=["file_search_call.results"]
        )
    assert caught.value.body["param"] == "include"


def test_bad_input_is_a_400_naming_the_field(tenant):
    client = tenant.client()
    for body, param in (
        ({"model": PASSED}, "input"),
        ({"model": PASSED, "input": 5}, "input"),
        ({"model": PASSED, "input": [{"type": "nonsense"}]}, "input[0]"),
        ({"model": PASSED, "input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": PASSED, "input": "hi", "bogus": 1}, "bogus"),
    ):
        answer = post(tenant, "/responses", body)
        assert answer.status_code == 400, body
        assert answer.json()["error"]["param"] == param, body
    assert client is not None


@pytest.mark.parametrize("model", [PASSED, "mistral-large-latest"])
def test_a_stream_broken_off_mid_way_ends_with_response_failed(tenant, fake_openai, model):
    fake_openai.break_after = 6
    with httpx.stream(
        "POST",
        f"{tenant.url}/v1/responses",
        json={"model": model, "input": "one two three four", "stream": True},
        headers={"authorization": f"Bearer {tenant.key}"},
        timeout=30,
    ) as response:
        body = response.read()
    events = sse_events(body)
    name, failed = events[-1]
    assert name == "response.failed"
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"]["message"]
    assert failed["response"]["id"] == events[0][1]["response"]["id"]
    numbers = [data["sequence_number"] for _, data in events]
    assert numbers == list(range(len(events)))
    record = record_of(response)
    assert record.endpoint == "responses" and record.completion_tokens > 0


def test_what_only_the_responses_api_does_is_refused_for_the_other_families(
    tenant, fake_openai, fake_anthropic
):
    client = tenant.client()
    passed = client.responses.create(model=PASSED, input="Hi", top_logprobs=2)
    assert passed.output_text == "Echo: Hi"
    assert fake_openai.requests[-1].json()["top_logprobs"] == 2
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="claude-3-5-sonnet", input="Hi", top_logprobs=2)
    assert caught.value.body["param"] == "top_logprobs"
    assert "anthropic" in caught.value.body["message"]
    assert not fake_anthropic.requests


def test_no_credit_and_a_rate_limit_are_refused_as_on_chat(tenant, fake_openai, fake_anthropic):
    owner = User.objects.create_user(email="broke@example.com")
    broke = api_key_create(organization=organization_create(name="Broke", owner=owner), name="k")
    for model in (PASSED, "claude-3-5-sonnet"):
        with pytest.raises(openai.APIStatusError) as caught:
            tenant.client(key=broke.plaintext).responses.create(model=model, input="hi")
        assert caught.value.status_code == 402
        assert caught.value.code == "insufficient_quota"
    limited = api_key_create(organization=tenant.organization, name="rpm1", rpm_limit=1)
    client = tenant.client(key=limited.plaintext)
    client.responses.create(model="claude-3-5-sonnet", input="hi")
    with pytest.raises(openai.RateLimitError) as limited_out:
        client.responses.create(model="claude-3-5-sonnet", input="hi")
    assert limited_out.value.code == "rate_limit_exceeded"
    assert "retry-after" in limited_out.value.response.headers
    assert not fake_openai.requests and len(fake_anthropic.requests) == 1
