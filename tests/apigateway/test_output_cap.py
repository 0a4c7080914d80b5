"""The cap on a reply's length: one field after validation, the one field each provider
reads upstream, never above the model's maximum output, never larger than what credit was
reserved for."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import orjson
import pytest

from apigateway import routing, validation
from apigateway.catalog import CatalogEntry
from apigateway.providers.anthropic import AnthropicProvider
from apigateway.providers.base import Deployment, output_cap
from apigateway.providers.gemini import GeminiProvider
from apigateway.providers.openai import AzureOpenAIProvider, OpenAIProvider
from apigateway.providers.options import (
    CONFIGURED,
    HOSTED,
    OPENAI,
    SAMPLING_EXTRAS,
    SELF_HOSTED,
    configured,
    options_for,
)
from tests.ledger_check import held_nanos
from tests.support import manage_env, run_manage

USER = {"role": "user", "content": "one two three four five"}


def chat(**fields) -> dict:
    return {"model": "m", "messages": [USER], **fields}


# --- validation: one field -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "left"),
    [
        ({}, {}),
        ({"max_tokens": 50}, {"max_completion_tokens": 50}),
        ({"max_completion_tokens": 50}, {"max_completion_tokens": 50}),
        ({"max_completion_tokens": 1, "max_tokens": 8192}, {"max_completion_tokens": 1}),
        ({"max_completion_tokens": 8192, "max_tokens": 1}, {"max_completion_tokens": 1}),
        ({"max_tokens": None}, {}),
        ({"max_tokens": None, "max_completion_tokens": 7}, {"max_completion_tokens": 7}),
        ({"max_tokens": 7, "max_completion_tokens": None}, {"max_completion_tokens": 7}),
        ({"max_completion_tokens": None}, {}),
    ],
)
def test_validation_leaves_the_smaller_cap_in_max_completion_tokens_alone(given, left):
    body = chat(**given)
    validation.chat(body)
    assert {k: v for k, v in body.items() if k.startswith("max_")} == left


# --- adapters: the field each provider reads -----------------------------------------------


def deployment(provider: str, options, max_output_tokens: int | None = None) -> Deployment:
    return Deployment(
        provider, "up", "https://p.example/v1", "k", {}, max_output_tokens, options=options
    )


def openai_sent(body: dict, target: Deployment) -> dict:
    return orjson.loads(OpenAIProvider().build_chat_request(body, target).body)  # type: ignore[arg-type]


def test_the_cap_is_the_bodys_never_above_the_models_maximum():
    capped = deployment("openai", OPENAI, 1000)
    assert output_cap(chat(max_completion_tokens=50), capped) == 50
    assert output_cap(chat(max_completion_tokens=5000), capped) == 1000
    assert output_cap(chat(), capped) is None
    assert output_cap(chat(max_completion_tokens=5000), deployment("openai", OPENAI)) == 5000
    # A body built by hand with both fields: the smaller.
    assert output_cap(chat(max_completion_tokens=300, max_tokens=5), capped) == 5


@pytest.mark.parametrize(
    ("options", "field", "other"),
    [
        (OPENAI, "max_completion_tokens", "max_tokens"),
        (HOSTED, "max_tokens", "max_completion_tokens"),
        (SELF_HOSTED, "max_tokens", "max_completion_tokens"),
    ],
)
def test_openai_shaped_providers_get_the_cap_in_the_one_field_they_read(options, field, other):
    body = chat(max_completion_tokens=1, max_tokens=8192)
    validation.chat(body)
    for target in (deployment("p", options), deployment("p", options, 16384)):
        sent = openai_sent(body, target)
        assert sent[field] == 1 and other not in sent
    sent = openai_sent(chat(max_completion_tokens=40000), deployment("p", options, 16384))
    assert sent[field] == 16384 and other not in sent
    assert field not in openai_sent(chat(), deployment("p", options, 16384))


def test_azure_reads_max_completion_tokens():
    body = chat(max_completion_tokens=3)
    target = replace(deployment("azure", options_for("azure", {})), api_version="2024-10-21")
    sent = orjson.loads(AzureOpenAIProvider().build_chat_request(body, target).body)
    assert sent["max_completion_tokens"] == 3 and "max_tokens" not in sent


def test_anthropic_gets_the_cap_as_max_tokens_not_the_models_maximum():
    claude = deployment("anthropic", HOSTED, 32000)
    sent = orjson.loads(
        AnthropicProvider().build_chat_request(chat(max_completion_tokens=4096), claude).body
    )
    assert sent["max_tokens"] == 4096 and "max_completion_tokens" not in sent
    sent = orjson.loads(
        AnthropicProvider().build_chat_request(chat(max_completion_tokens=64000), claude).body
    )
    assert sent["max_tokens"] == 32000
    # No cap in the body (the relay always sets one): the model's maximum, as above.
    assert (
        orjson.loads(AnthropicProvider().build_chat_request(chat(), claude).body)["max_tokens"]
        == 32000
    )


def test_gemini_gets_the_cap_as_max_output_tokens():
    flash = deployment("gemini", HOSTED, 65536)
    config = orjson.loads(
        GeminiProvider().build_chat_request(chat(max_completion_tokens=100), flash).body
    )["generationConfig"]
    assert config["maxOutputTokens"] == 100
    config = orjson.loads(
        GeminiProvider().build_chat_request(chat(max_completion_tokens=10**6), flash).body
    )["generationConfig"]
    assert config["maxOutputTokens"] == 65536


# --- provider options ----------------------------------------------------------------------


def test_each_provider_reads_its_own_cap_field_by_default():
    for name in ("openai", "azure"):
        assert options_for(name, {}).output_cap_field == "max_completion_tokens"
    for name in ("mistral", "groq", "deepseek", "together", "xai", "openrouter", "ollama"):
        assert options_for(name, {}).output_cap_field == "max_tokens"
    assert options_for("vllm", {}) == SELF_HOSTED
    assert options_for("lab", {"adapter": "openai"}) == CONFIGURED
    assert options_for("azure-eu", {"adapter": "azure"}).output_cap_field == (
        "max_completion_tokens"
    )
    assert options_for("groq", {"output_cap_field": "max_completion_tokens"}) == replace(
        HOSTED, output_cap_field="max_completion_tokens"
    )
    assert options_for("lab", {"extra_fields": ["top_k"], "remote_media": True}) == replace(
        CONFIGURED, extra_fields=frozenset({"top_k"}), remote_media=True
    )


def test_routing_gives_each_deployment_its_providers_options(settings):
    settings.PROVIDERS = {
        "groq": {"api_key": "k", "base_url": "https://g/v1"},
        "lab": {"api_key": "", "base_url": "http://10.0.0.5/v1", "adapter": "openai"},
    }
    entry = CatalogEntry(
        id="m", provider="groq", upstream_model="up", owned_by="o", created=1, mode="chat",
        context_window=None, max_output_tokens=1000, prices={}, fallbacks=(("lab", "up"),),
    )  # fmt: skip
    groq, lab = routing.deployments_for(entry)
    assert groq.deployment.options == HOSTED
    assert lab.deployment.options == CONFIGURED


@pytest.mark.parametrize(
    "given",
    [
        {"output_cap_field": "max_output_tokens"},
        {"extra_fields": "top_k"},
        {"extra_fields": ["service_tier"]},
        {"extra_fields": [["top_k"]]},
        {"store_field": "yes"},
        {"remote_media": 1},
    ],
)
def test_a_malformed_option_is_refused_at_start(given):
    with pytest.raises(ValueError, match="NEXEON_PROVIDERS"):
        configured("lab", given)


def test_nexeon_providers_options_are_read_and_checked_at_start():
    code = (
        "from django.conf import settings; p = settings.PROVIDERS; "
        "print(p['groq']['output_cap_field'], p['lab']['extra_fields'], p['lab']['remote_media'])"
    )
    given = (
        '{"groq": {"output_cap_field": "max_completion_tokens"}, "lab": {"base_url": '
        '"http://10.0.0.5/v1", "extra_fields": ["top_k"], "remote_media": true}}'
    )
    result = run_manage(
        "shell", "--no-imports", "-c", code, env=manage_env(DEBUG="1", NEXEON_PROVIDERS=given)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["max_completion_tokens", "['top_k']", "True"]
    bad = '{"groq": {"output_cap_field": "max_output_tokens"}}'
    broken = run_manage("check", env=manage_env(DEBUG="1", NEXEON_PROVIDERS=bad))
    assert broken.returncode != 0 and "output_cap_field must be one of" in broken.stderr


def test_well_formed_options_are_kept():
    given = {"output_cap_field": "max_tokens", "extra_fields": sorted(SAMPLING_EXTRAS)}
    assert configured("lab", {**given, "remote_media": True, "timeout": 3}) == {
        **given,
        "remote_media": True,
    }


# --- through the gateway -------------------------------------------------------------------


def test_a_provider_reading_only_max_tokens_gets_the_smaller_cap(tenant, fake_openai):
    """Both fields forwarded as given would reserve credit for 1 output token while Groq
    (which reads max_tokens) could produce 8192."""
    tenant.client().chat.completions.create(
        model="llama-3.3-70b-versatile",
        messages=[USER],
        max_completion_tokens=1,
        max_tokens=8192,
    )
    sent = fake_openai.requests[-1].json()
    assert sent["max_tokens"] == 1
    assert "max_completion_tokens" not in sent


def test_openai_gets_the_smaller_cap_as_max_completion_tokens(tenant, fake_openai):
    tenant.client().chat.completions.create(
        model="gpt-4o", messages=[USER], max_completion_tokens=9000, max_tokens=7
    )
    sent = fake_openai.requests[-1].json()
    assert sent["max_completion_tokens"] == 7
    assert "max_tokens" not in sent


def test_a_claude_call_without_a_cap_is_capped_at_what_was_reserved(tenant, fake_anthropic):
    """The cap sent upstream and the credit reserved are both the model's maximum (32,000
    for claude-opus-4-1): sending it while reserving for 4,096 tokens lets the provider
    bill beyond the reservation."""
    fake_anthropic.latency = 0.3
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(
            tenant.client().chat.completions.create, model="claude-opus-4-1", messages=[USER]
        )
        time.sleep(0.15)
        held = held_nanos(tenant.organization.pk)
        answer.result()
    sent = fake_anthropic.requests[-1].json()
    assert sent["max_tokens"] == 32_000
    assert held >= 32_000 * 75_000  # $75 / 1M output tokens, all reserved


def test_a_call_without_a_cap_is_capped_at_what_was_reserved(tenant, fake_openai):
    tenant.client().chat.completions.create(model="mistral-small-latest", messages=[USER])
    assert fake_openai.requests[-1].json()["max_tokens"] == 32_768  # the model's maximum
