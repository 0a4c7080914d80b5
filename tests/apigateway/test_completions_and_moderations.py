"""/v1/completions (the legacy prompt API) and /v1/moderations, with the official openai
SDK against the gateway and a fake OpenAI behind it: reserved, settled and recorded like
every other call."""

from __future__ import annotations

import openai
import pytest

from billing.models import LedgerEntry
from tests.apigateway.test_usage_records import record_of

INSTRUCT = "gpt-3.5-turbo-instruct"


def test_a_completion_round_trip_is_charged_and_recorded(tenant, fake_openai):
    response = tenant.client().completions.with_raw_response.create(
        model=INSTRUCT, prompt="Say this is a test", max_tokens=5, temperature=0.1, stop=["\n"]
    )
    completion = response.parse()
    assert completion.object == "text_completion"
    assert completion.model == INSTRUCT
    assert completion.choices[0].text == " Echo: Say this is a"
    assert completion.choices[0].finish_reason == "length"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (5, 5)
    sent = fake_openai.requests[-1]
    assert sent.path == "/v1/completions"
    assert sent.json() == {
        "model": INSTRUCT,
        "prompt": "Say this is a test",
        "max_tokens": 5,
        "temperature": 0.1,
        "stop": ["\n"],
    }
    # $1.50/M prompt, $2.00/M completion: 5 * 1500 + 5 * 2000 nano-dollars
    assert response.headers["x-nexeon-cost"] == "0.0000175"
    record = record_of(response.http_response)
    assert (record.endpoint, record.model, record.provider) == ("completions", INSTRUCT, "openai")
    assert (record.prompt_tokens, record.completion_tokens, record.cost_nanos) == (5, 5, 17_500)
    usage = LedgerEntry.objects.get(reference=f"usage:{record.request_id}")
    assert usage.amount_nanos == -17_500


def test_the_default_output_cap_is_openais_16_tokens(tenant, fake_openai):
    tenant.client().completions.create(model="davinci-002", prompt="Hi")
    assert fake_openai.requests[-1].json()["max_tokens"] == 16


def test_several_prompts_and_choices(tenant, fake_openai):
    completion = tenant.client().completions.create(
        model="babbage-002", prompt=["one", "two three"], n=2, max_tokens=3, echo=True
    )
    assert [c.index for c in completion.choices] == [0, 1, 2, 3]
    assert completion.choices[2].text.startswith("two three")
    assert fake_openai.requests[-1].json()["echo"] is True
    assert completion.usage.completion_tokens == 2 * 2 + 2 * 3


def test_a_token_prompt(tenant, fake_openai):
    completion = tenant.client().completions.create(model=INSTRUCT, prompt=[1, 2, 3])
    assert completion.choices[0].text
    assert fake_openai.requests[-1].json()["prompt"] == [1, 2, 3]


def test_a_completion_stream_with_usage(tenant, fake_openai):
    stream = tenant.client().completions.create(
        model=INSTRUCT,
        prompt="one two three",
        max_tokens=10,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(chunk.object == "text_completion" for chunk in chunks)
    assert all(chunk.model == INSTRUCT for chunk in chunks)
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == "Echo: one two three"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 4
    assert chunks[-1].usage.model_extra["cost"] == pytest.approx((3 * 1.5 + 4 * 2.0) / 1e6)
    assert fake_openai.requests[-1].json()["stream_options"] == {"include_usage": True}


def test_a_completion_stream_is_recorded_and_charged(tenant, fake_openai):
    stream = tenant.client().completions.with_raw_response.create(
        model=INSTRUCT, prompt="alpha beta", max_tokens=10, stream=True
    )
    chunks = list(stream.parse())
    assert all(chunk.usage is None for chunk in chunks)
    record = record_of(stream.http_response)
    assert record.endpoint == "completions" and record.streamed
    assert (record.prompt_tokens, record.completion_tokens) == (2, 3)
    assert record.cost_nanos == 2 * 1500 + 3 * 2000


def test_a_chat_model_on_completions_says_which_endpoint_to_use(tenant, fake_openai):
    with pytest.raises(openai.NotFoundError) as raised:
        tenant.client().completions.create(model="gpt-4o", prompt="Hi")
    assert "/v1/chat/completions" in raised.value.message
    assert not fake_openai.requests


def test_best_of_below_n_is_refused(tenant, fake_openai):
    with pytest.raises(openai.BadRequestError) as raised:
        tenant.client().completions.create(model=INSTRUCT, prompt="Hi", n=3, best_of=2)
    assert raised.value.param == "best_of"
    assert not fake_openai.requests


def test_best_of_is_reserved_for(tenant, fake_openai):
    completion = tenant.client().completions.create(
        model=INSTRUCT, prompt="Hi", best_of=3, max_tokens=2
    )
    assert len(completion.choices) == 1
    assert fake_openai.requests[-1].json()["best_of"] == 3


def test_unknown_completion_fields_are_refused(tenant, fake_openai):
    with pytest.raises(openai.BadRequestError) as raised:
        tenant.client().completions.create(model=INSTRUCT, prompt="Hi", extra_body={"messages": []})
    assert raised.value.param == "messages"


def test_a_provider_without_completions_says_so(tenant, fake_openai, providers):
    from apigateway.catalog import snapshot
    from apigateway.models import CatalogModel

    CatalogModel.objects.create(
        public_id="mistral-instruct",
        provider="mistral",
        upstream_model="mistral-small-latest",
        owned_by="mistralai",
        created=1,
        mode="completion",
        prices={"prompt": "1", "completion": "1"},
    )
    snapshot.loaded_at = float("-inf")
    with pytest.raises(openai.BadRequestError) as raised:
        tenant.client().completions.create(model="mistral-instruct", prompt="Hi")
    assert "completions are not available from mistral" in raised.value.message
    assert not fake_openai.requests


def test_moderation_of_a_text(tenant, fake_openai):
    response = tenant.client().moderations.with_raw_response.create(
        model="omni-moderation-latest", input="I will kill the process"
    )
    moderation = response.parse()
    assert moderation.model == "omni-moderation-latest"
    assert moderation.results[0].flagged
    assert moderation.results[0].categories.violence
    assert fake_openai.requests[-1].path == "/v1/moderations"
    record = record_of(response.http_response)
    assert (record.endpoint, record.model, record.status) == (
        "moderations",
        "omni-moderation-latest",
        200,
    )
    assert record.cost_nanos == 0


def test_moderation_of_several_texts_and_of_multimodal_input(tenant, fake_openai):
    client = tenant.client()
    several = client.moderations.create(model="text-moderation-latest", input=["fine", "kill"])
    assert [r.flagged for r in several.results] == [False, True]
    mixed = client.moderations.create(
        input=[
            {"type": "text", "text": "a picture"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        ]
    )
    assert mixed.model == "omni-moderation-latest"  # OpenAI's default
    assert len(mixed.results) == 1
    assert fake_openai.requests[-1].json()["input"][1]["image_url"]["url"].endswith("a.png")


def test_bad_moderation_input_is_a_400(tenant, fake_openai):
    with pytest.raises(openai.BadRequestError) as raised:
        tenant.client().moderations.create(input=[{"type": "video", "video": "x"}])
    assert raised.value.param == "input"
    with pytest.raises(openai.NotFoundError):
        tenant.client().moderations.create(model="gpt-4o", input="hi")
    assert not fake_openai.requests
