"""What an SDK user gets for the usual set-up mistakes: a model id written the way another
service spells it, a base URL without /v1, a model the operator has not configured. The
official openai SDK against the gateway, fake providers behind it."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from accounts.models import User
from accounts.services import api_key_create
from tests.apigateway.test_usage_records import record_of

HELLO = [{"role": "user", "content": "Hello there"}]


def counted_client(base_url: str, key: str, **options) -> tuple[openai.OpenAI, list[str]]:
    """A client that notes every HTTP request it makes (its retries included)."""
    sent: list[str] = []
    client = openai.OpenAI(
        base_url=base_url,
        api_key=key,
        http_client=httpx.Client(  # type: ignore[arg-type]
            event_hooks={"request": [lambda request: sent.append(str(request.url))]}
        ),
        **options,
    )
    return client, sent


def test_a_provider_prefixed_model_id_is_the_catalog_model(tenant, fake_openai):
    response = tenant.client().chat.completions.with_raw_response.create(
        model="openai/gpt-4o", messages=HELLO
    )
    completion = response.parse()
    assert completion.choices[0].message.content == "Echo: Hello there"
    assert completion.model == "gpt-4o"  # the catalog id it resolved to, as OpenAI answers
    assert fake_openai.requests[-1].json()["model"] == "gpt-4o"
    record = record_of(response.http_response)
    assert (record.model, record.endpoint, record.provider) == ("gpt-4o", "chat", "openai")


def test_a_prefix_naming_another_provider_is_not_found(tenant):
    with pytest.raises(openai.NotFoundError) as raised:
        tenant.client().chat.completions.create(model="anthropic/gpt-4o", messages=HELLO)
    assert raised.value.code == "model_not_found"


def test_a_dated_claude_id_is_its_catalog_model(tenant, fake_anthropic):
    completion = tenant.client().chat.completions.create(
        model="claude-3-5-haiku-20241022", messages=HELLO
    )
    assert completion.model == "claude-3-5-haiku"
    assert fake_anthropic.requests[-1].json()["model"] == "claude-3-5-haiku-20241022"
    prefixed = tenant.client().chat.completions.create(
        model="anthropic/claude-sonnet-4-20250514", messages=HELLO
    )
    assert prefixed.model == "claude-sonnet-4"


def test_models_retrieve_knows_prefixed_and_dated_ids(tenant):
    assert tenant.client().models.retrieve("openai/gpt-4o-mini").id == "gpt-4o-mini"
    assert tenant.client().models.retrieve("claude-opus-4-1-20250805").id == "claude-opus-4-1"


def test_an_unknown_model_suggests_the_closest_ids(tenant):
    with pytest.raises(openai.NotFoundError) as raised:
        tenant.client().chat.completions.create(model="gpt-4o-mni", messages=HELLO)
    assert raised.value.code == "model_not_found"
    assert "Did you mean 'gpt-4o-mini'" in raised.value.message


def test_suggestions_never_name_a_model_the_key_may_not_use(tenant):
    owner = User.objects.get(email="owner@example.com")
    limited = api_key_create(
        organization=tenant.organization,
        name="limited",
        created_by=owner,
        allowed_models=["gpt-4.1", "claude-3-5-haiku"],
    ).plaintext
    client = tenant.client(key=limited)
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="gpt-4o-mni", messages=HELLO)
    assert "gpt-4o-mini" not in raised.value.message
    assert "gpt-4o" not in raised.value.message.replace("'gpt-4o-mni'", "")
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="gpt-4.1-mini", messages=HELLO)
    assert "Did you mean 'gpt-4.1'" in raised.value.message
    assert "gpt-4.1-mini'?" not in raised.value.message
    # An alias of a model outside the key's list is not found either.
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="openai/gpt-4o", messages=HELLO)
    dated = client.chat.completions.create(model="claude-3-5-haiku-20241022", messages=HELLO)
    assert dated.model == "claude-3-5-haiku"


def test_a_model_whose_provider_is_not_configured_is_not_found_once(tenant, providers):
    del providers["anthropic"]
    client, sent = counted_client(f"{tenant.url}/v1", tenant.key, max_retries=2)
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="claude-3-5-sonnet", messages=HELLO)
    assert len(sent) == 1  # a 404 is not retried (a 503 was, twice)
    assert raised.value.code == "model_not_available"
    assert "has not configured" in raised.value.message
    assert "anthropic" in raised.value.message


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.chat.completions.create(model="gpt-4o", messages=HELLO),
        lambda c: c.completions.create(model="gpt-3.5-turbo-instruct", prompt="Hi"),
        lambda c: c.embeddings.create(model="text-embedding-3-small", input="Hi"),
        lambda c: c.responses.create(model="gpt-4o", input="Hi"),
        lambda c: c.moderations.create(model="omni-moderation-latest", input="Hi"),
        lambda c: c.images.generate(model="dall-e-3", prompt="a cat"),
        lambda c: c.models.list(),
        lambda c: c.models.retrieve("gpt-4o"),
    ],
    ids=[
        "chat",
        "completions",
        "embeddings",
        "responses",
        "moderations",
        "images",
        "models",
        "model",
    ],
)
def test_a_base_url_without_v1_says_to_add_it(tenant, call):
    client, sent = counted_client(tenant.url, tenant.key, max_retries=2)
    with pytest.raises(openai.NotFoundError) as raised:
        call(client)
    assert len(sent) == 1
    assert f"{tenant.url}/v1" in raised.value.message
    assert raised.value.code == "unknown_url"
    assert raised.value.response.headers["content-type"].startswith("application/json")


def test_anthropic_messages_without_v1_says_to_add_it(tenant):
    response = httpx.post(
        f"{tenant.url}/messages",
        json={"model": "claude-3-5-haiku", "max_tokens": 5, "messages": HELLO},
        headers={"x-api-key": tenant.key},
    )
    assert response.status_code == 404
    assert "/v1" in response.json()["error"]["message"]


def test_an_anthropic_base_url_with_v1_says_to_drop_it(tenant):
    """The anthropic SDKs add /v1 themselves: ANTHROPIC_BASE_URL=https://host/v1 posts to
    /v1/v1/messages. The answer, in Anthropic's error shape, names the base URL to use."""
    client = anthropic.Anthropic(base_url=f"{tenant.url}/v1", api_key=tenant.key, max_retries=0)
    with pytest.raises(anthropic.NotFoundError) as raised:
        client.messages.create(model="claude-3-5-haiku", max_tokens=5, messages=HELLO)
    body = raised.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    assert f"ANTHROPIC_BASE_URL to {tenant.url} " in body["error"]["message"]
    assert "without /v1" in body["error"]["message"]


def test_an_openai_base_url_with_v1_twice_says_so(tenant):
    client, sent = counted_client(f"{tenant.url}/v1/v1", tenant.key, max_retries=2)
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert len(sent) == 1
    assert "/v1 twice" in raised.value.message and f"{tenant.url}/v1 " in raised.value.message
    assert raised.value.code == "unknown_url"


def test_the_dashboard_is_still_served_by_django(tenant):
    assert httpx.get(f"{tenant.url}/healthz").status_code == 200
    login = httpx.get(f"{tenant.url}/accounts/login/")
    assert login.status_code == 200 and login.headers["content-type"].startswith("text/html")
    # A page that does not exist outside the API's paths is still Django's own 404.
    missing = httpx.get(f"{tenant.url}/no-such-page/")
    assert missing.status_code == 404
    assert not missing.headers["content-type"].startswith("application/json")
