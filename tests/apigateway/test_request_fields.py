"""Only the fields the gateway takes reach a provider; options billed beyond the model's
prices, and fields nobody documents, are a 400 that reaches no provider and costs
nothing."""

from __future__ import annotations

import orjson
import pytest

from apigateway import request_fields, validation
from apigateway.errors import GatewayError
from apigateway.providers.base import Deployment
from apigateway.providers.openai import AzureOpenAIProvider, OpenAIProvider
from apigateway.providers.options import CONFIGURED, HOSTED, OPENAI, SELF_HOSTED
from billing.models import LedgerEntry

USER = {"role": "user", "content": "hi"}
PAID = {
    "service_tier": "priority",
    "store": True,
    "web_search_options": {},
    "prediction": {"type": "content", "content": "hello"},
    "plugins": [{"id": "web"}],
    "transforms": ["middle-out"],
    "route": "fallback",
    "modalities": ["text", "audio"],
    "audio": {"voice": "alloy", "format": "wav"},
}


def chat(**fields) -> dict:
    return {"model": "m", "messages": [USER], **fields}


def refused(validate, body: dict) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        validate(body)
    error = caught.value
    assert (error.status, error.type) == (400, "invalid_request_error")
    return error


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "value"), PAID.items())
def test_an_option_billed_beyond_the_prices_is_a_400_naming_it(name, value):
    error = refused(validation.chat, chat(**{name: value}))
    assert (error.param, error.code) == (name, "unsupported_parameter")


@pytest.mark.parametrize(
    "fields",
    [
        {"service_tier": "auto"},
        {"service_tier": "default"},
        {"service_tier": None},
        {"store": False},
        {"store": None},
        {"modalities": ["text"]},
        {"audio": None, "web_search_options": None, "prediction": None, "plugins": None},
        {"metadata": {"team": "a"}},
    ],
)
def test_the_same_options_at_their_standard_value_are_taken(fields):
    validation.chat(chat(**fields))


def test_every_field_openai_documents_for_chat_is_taken():
    body = chat(
        temperature=1,
        top_p=1,
        n=1,
        stop=["x"],
        presence_penalty=0,
        frequency_penalty=0,
        logit_bias={"50256": -100},
        logprobs=True,
        top_logprobs=2,
        seed=1,
        user="u",
        tools=[{"type": "function", "function": {"name": "f"}}],
        tool_choice="auto",
        parallel_tool_calls=False,
        response_format={"type": "json_object"},
        stream=True,
        stream_options={"include_usage": True},
        reasoning_effort="low",
        verbosity="low",
        prompt_cache_key="k",
        safety_identifier="s",
        max_completion_tokens=5,
        functions=[{"name": "f"}],
        function_call="auto",
        top_k=5,
        min_p=0.1,
        repetition_penalty=1.1,
    )
    validation.chat(body)


@pytest.mark.parametrize(
    ("validate", "body", "name"),
    [
        (validation.chat, chat(foo=1), "foo"),
        (validation.chat, chat(safe_prompt=True), "safe_prompt"),
        (validation.chat, chat(extra_body={"x": 1}), "extra_body"),
        (validation.chat, chat(guided_choice=["a"]), "guided_choice"),
        (validation.chat, chat(best_of=4), "best_of"),
        (validation.chat, chat(temperature=1, zzz=None, aaa=None), "zzz"),  # the first one
        (
            validation.embeddings,
            {"model": "e", "input": "x", "service_tier": "flex"},
            "service_tier",
        ),
        (validation.embeddings, {"model": "e", "input": "x", "input_type": "query"}, "input_type"),
        (validation.images, {"prompt": "p", "background": "transparent"}, "background"),
        (validation.images, {"prompt": "p", "moderation": "low"}, "moderation"),
    ],
)
def test_an_unknown_field_is_a_400_as_openai_words_it(validate, body, name):
    error = refused(validate, body)
    assert error.message == f"Unrecognized request argument supplied: {name}"
    assert (error.param, error.code) == (name, "unknown_parameter")


def test_embeddings_and_images_take_their_documented_fields():
    validation.embeddings(
        {"model": "e", "input": "x", "encoding_format": "float", "dimensions": 8, "user": "u"}
    )
    validation.images(
        {
            "model": "dall-e-3",
            "prompt": "p",
            "n": 1,
            "size": "1024x1024",
            "quality": "hd",
            "style": "vivid",
            "response_format": "url",
            "user": "u",
        }
    )


def test_only_function_tools_are_taken():
    server_tool = {"type": "browser_search", "function": {"name": "search"}}
    assert refused(validation.chat, chat(tools=[server_tool])).param == "tools"


@pytest.mark.parametrize(("name", "value"), [("store", "yes"), ("modalities", "audio")])
def test_a_guarded_option_of_the_wrong_type_is_a_400(name, value):
    assert refused(validation.chat, chat(**{name: value})).param == name


def test_the_usual_body_is_checked_with_one_set_difference():
    body = chat(temperature=0.5, stream=False)
    request_fields.check(body, request_fields.CHAT_TAKEN, request_fields.CHAT_GUARDED)


# --- the OpenAI-shaped adapter builds the body from the list -------------------------------


def sent(body: dict, options=OPENAI, adapter=None, **fields) -> dict:
    deployment = Deployment("p", "up", "https://p.example/v1", "k", options=options, **fields)
    return orjson.loads((adapter or OpenAIProvider()).build_chat_request(body, deployment).body)  # type: ignore[arg-type]


def test_a_body_built_by_hand_is_sent_with_only_the_taken_fields():
    body = chat(
        temperature=0.2, service_tier="priority", plugins=[{"id": "web"}], metadata={}, foo=1
    )
    assert sent(body) == {"model": "up", "messages": [USER], "temperature": 0.2}


def test_store_false_goes_only_to_providers_that_take_it():
    assert sent(chat(store=False))["store"] is False
    assert sent(chat(store=None))["store"] is False
    azure = sent(chat(store=False), adapter=AzureOpenAIProvider(), api_version="2024-10-21")
    assert azure["store"] is False
    for options in (HOSTED, SELF_HOSTED, CONFIGURED):
        assert "store" not in sent(chat(store=False), options)
    assert "store" not in sent(chat())


def test_sampling_extras_go_only_to_providers_that_take_them():
    body = chat(top_k=40, min_p=0.05, repetition_penalty=1.1)
    assert sent(body, SELF_HOSTED) == {
        "model": "up",
        "messages": [USER],
        "top_k": 40,
        "min_p": 0.05,
        "repetition_penalty": 1.1,
    }
    for options in (OPENAI, HOSTED, CONFIGURED):
        with pytest.raises(GatewayError) as caught:
            sent(body, options)
        assert caught.value.message == "Unrecognized request argument supplied: top_k"


def test_embeddings_and_images_bodies_are_built_from_their_lists():
    deployment = Deployment("openai", "up", "https://p.example/v1", "k")
    embeddings = OpenAIProvider().build_embeddings_request(
        {"model": "e", "input": "x", "dimensions": 8, "foo": 1}, deployment
    )
    assert orjson.loads(embeddings.body) == {"model": "up", "input": "x", "dimensions": 8}
    images = OpenAIProvider().build_images_request({"prompt": "p", "foo": 1}, deployment)
    assert orjson.loads(images.body) == {"model": "up", "prompt": "p"}


# --- through the gateway -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [(name, PAID[name]) for name in ("service_tier", "store", "web_search_options")]
    + [(name, PAID[name]) for name in ("prediction", "plugins", "audio")],
)
def test_a_billed_option_reaches_no_provider_and_costs_nothing(
    tenant, fake_openai, fake_anthropic, fake_gemini, name, value
):
    """Forwarded unchanged, these options (service_tier priority, store, web search,
    predicted outputs, OpenRouter plugins, audio output) would cost more upstream than the
    standard price the caller is billed."""
    for model in ("gpt-4o", "llama-3.3-70b-versatile", "claude-3-5-sonnet", "gemini-2.5-flash"):
        response = tenant.post("/chat/completions", {**chat(**{name: value}), "model": model})
        assert response.status_code == 400, (model, response.text)
        error = response.json()["error"]
        assert (error["type"], error["param"]) == ("invalid_request_error", name)
    assert fake_openai.requests == fake_anthropic.requests == fake_gemini.requests == []
    assert not LedgerEntry.objects.filter(kind="usage").exists()


def test_an_unknown_field_reaches_no_provider(tenant, fake_openai):
    response = tenant.post("/chat/completions", {**chat(foo=1), "model": "gpt-4o"})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": "Unrecognized request argument supplied: foo",
        "type": "invalid_request_error",
        "param": "foo",
        "code": "unknown_parameter",
    }
    response = tenant.post(
        "/embeddings", {"model": "text-embedding-3-small", "input": "x", "foo": 1}
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "foo"
    assert fake_openai.requests == []


def test_the_standard_values_still_work_and_store_false_reaches_openai(tenant, fake_openai):
    completion = tenant.client().chat.completions.create(
        model="gpt-4o", messages=[USER], service_tier="auto", store=False
    )
    assert completion.choices[0].message.content == "Echo: hi"
    sent = fake_openai.requests[-1].json()
    assert sent["store"] is False and "service_tier" not in sent
    tenant.client().chat.completions.create(
        model="llama-3.3-70b-versatile", messages=[USER], store=False
    )
    assert "store" not in fake_openai.requests[-1].json()
