"""OpenAI-compatible providers by configuration alone: base URL, key, model mapping, headers."""

import logging

import httpx

from apigateway.catalog import snapshot
from apigateway.models import CatalogModel
from tests.apigateway.conftest import UPSTREAM_KEY


def test_a_configured_endpoint_with_model_mapping_and_extra_headers(tenant, fake_openai, providers):
    providers["lab"] = {
        "api_key": UPSTREAM_KEY,
        "base_url": fake_openai.base_url + "/v1",
        "adapter": "openai",
        "headers": {"X-Team": "ml"},
    }
    CatalogModel.objects.create(
        public_id="lab-llama",
        provider="lab",
        upstream_model="meta/llama-3.3-70b-instruct",
        owned_by="meta",
        created=1,
        prices={"prompt": "0.10", "completion": "0.10"},
    )
    snapshot.loaded_at = float("-inf")
    completion = tenant.client().chat.completions.create(
        model="lab-llama", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.model == "lab-llama"
    sent = fake_openai.requests[-1]
    assert sent.json()["model"] == "meta/llama-3.3-70b-instruct"
    assert sent.headers["x-team"] == "ml"
    assert "lab-llama" in {m.id for m in tenant.client().models.list().data}


def test_mistral_and_groq_models_go_to_their_configured_endpoints(tenant, fake_openai):
    for model in ("mistral-large-latest", "llama-3.3-70b-versatile"):
        tenant.client().chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}]
        )
        assert fake_openai.requests[-1].json()["model"] == model


def test_keys_never_reach_the_logs(tenant, fake_openai, providers, caplog):
    caplog.set_level(logging.DEBUG)
    providers["openai"]["api_key"] = "sk-operator-secret-123"
    httpx.post(
        f"{tenant.url}/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]},
        headers={"authorization": f"Bearer {tenant.key}"},
    )
    assert caplog.records  # the failure was logged
    assert "sk-operator-secret-123" not in caplog.text
    assert tenant.key not in caplog.text
