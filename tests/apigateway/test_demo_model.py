"""The free demo model (apigateway/demo.py): listed and served only when it is on, through
the same relay as any model (auth, usage records, a settled $0 charge), on chat completions
(whole and streamed), the Messages API and the Responses API, with no provider configured."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest
from django.conf import settings

from accounts.models import User
from accounts.services import api_key_create, organization_create
from apigateway import auth, demo
from apigateway.catalog import catalog_load_defaults, snapshot
from billing.selectors import organization_balance_nanos
from tests.apigateway.conftest import Tenant, assert_all_settled
from tests.apigateway.test_usage_records import record_of

ASK = [{"role": "user", "content": "Hello,   demo world!"}]
ECHO = "NeXeonAI demo: Hello, demo world!"


def _fresh_catalog() -> None:
    catalog_load_defaults()
    snapshot.loaded_at = float("-inf")
    auth._local.clear()


@pytest.fixture
def demo_only(providers):
    """No provider configured but the demo (as under `make run` with no keys)."""
    saved = settings.GATEWAY_DEMO_MODEL
    for name in list(providers):
        del providers[name]
    settings.GATEWAY_DEMO_MODEL = True
    providers["demo"] = {"api_key": "", "base_url": demo.BASE_URL, "adapter": "openai"}
    yield providers
    settings.GATEWAY_DEMO_MODEL = saved


@pytest.fixture
def broke_tenant(transactional_db, money_redis, gateway_url):
    """An organization with $0.00 and one key."""
    _fresh_catalog()
    owner = User.objects.create_user(email="new@example.com", password="x-correct-horse")
    organization = organization_create(name="Newcomer", owner=owner)
    created = api_key_create(organization=organization, name="first", created_by=owner)
    yield Tenant(organization=organization, key=created.plaintext, url=gateway_url)
    assert_all_settled()


def test_listed_with_its_label_when_on(demo_only, broke_tenant):
    models = {model.id: model for model in broke_tenant.client().models.list().data}
    assert list(models) == [demo.MODEL_ID]  # the only model without provider keys
    listed = models[demo.MODEL_ID].model_dump()
    assert listed["owned_by"] == "nexeon-demo"
    assert listed["name"] == "NeXeonAI demo (echo)"
    assert listed["pricing"]["prompt"] == listed["pricing"]["completion"] == "0"


def test_absent_and_refused_when_off(providers, broke_tenant):
    assert settings.GATEWAY_DEMO_MODEL is False  # tests run with DEBUG off, no opt-in
    client = broke_tenant.client()
    assert demo.MODEL_ID not in {model.id for model in client.models.list().data}
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model=demo.MODEL_ID, messages=ASK)


def test_a_whole_answer_at_no_cost_with_counted_tokens(demo_only, broke_tenant):
    client = broke_tenant.client()
    raw = client.chat.completions.with_raw_response.create(model=demo.MODEL_ID, messages=ASK)
    answer = raw.parse()
    assert answer.choices[0].message.content == ECHO
    assert answer.choices[0].finish_reason == "stop"
    # Words and punctuation: "Hello , demo world !" (5) + 3 per message.
    assert answer.usage.prompt_tokens == 8
    assert answer.usage.completion_tokens == demo.count_tokens(ECHO) == 8
    assert raw.headers["x-nexeon-cost"] == "0"
    record = record_of(raw.http_response)
    assert (record.model, record.provider, record.status) == (demo.MODEL_ID, "demo", 200)
    assert (record.prompt_tokens, record.completion_tokens, record.cost_nanos) == (8, 8, 0)
    assert organization_balance_nanos(organization=broke_tenant.organization) == 0


def test_a_stream_in_chunks_with_usage(demo_only, broke_tenant):
    stream = broke_tenant.client().chat.completions.create(
        model=demo.MODEL_ID,
        messages=ASK,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta]
    assert "".join(p or "" for p in pieces) == ECHO
    assert len([p for p in pieces if p]) == len(ECHO.split())  # a word per chunk
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 8
    assert chunks[-1].usage.model_dump()["cost"] == 0


def test_max_tokens_cuts_the_answer(demo_only, broke_tenant):
    answer = broke_tenant.client().chat.completions.create(
        model=demo.MODEL_ID, messages=ASK, max_tokens=4
    )
    assert answer.choices[0].message.content == "NeXeonAI demo: Hello"
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage.completion_tokens == 4


def test_the_messages_and_responses_apis(demo_only, broke_tenant):
    messages = anthropic.Anthropic(
        base_url=broke_tenant.url, api_key=broke_tenant.key, max_retries=0
    ).messages.create(model=demo.MODEL_ID, max_tokens=100, messages=ASK)
    assert messages.content[0].text == ECHO
    assert messages.usage.output_tokens == 8

    response = broke_tenant.client().responses.create(
        model=demo.MODEL_ID, input="Hello,   demo world!"
    )
    assert response.output_text == ECHO


def test_a_bad_key_is_refused_as_for_any_model(demo_only, broke_tenant):
    answer = httpx.post(
        f"{broke_tenant.url}/v1/chat/completions",
        json={"model": demo.MODEL_ID, "messages": ASK},
        headers={"authorization": "Bearer nex-sk-" + "x" * 48},
    )
    assert answer.status_code == 401
