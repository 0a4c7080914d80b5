"""The public models page (/models/): every enabled catalog model, its prices, capabilities
and whether this server can serve it now, as HTML and as JSON, in one query."""

from __future__ import annotations

import re
from decimal import Decimal
from html import unescape

import pytest

from apigateway.catalog import catalog_load_defaults, default_rows, read_entries
from apigateway.listing import model_object
from apigateway.models import CatalogModel

ONLY_OPENAI = {"openai": {"api_key": "sk-operator", "base_url": "https://api.openai.invalid/v1"}}


@pytest.fixture
def catalog(db, settings):
    catalog_load_defaults()
    settings.PROVIDERS = ONLY_OPENAI
    return {row["id"]: row for row in default_rows()}


def cards(page: str) -> dict[str, str]:
    """Each model card's HTML by model id."""
    found = re.findall(r'<li class="model-card" id="model-[^"]*"(.*?)</li>', page, re.S)
    return {unescape(re.search(r"<h2><code>(.*?)</code>", card).group(1)): card for card in found}


def plain(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def test_anyone_sees_every_model_with_unconfigured_ones_marked_unavailable(client, catalog):
    response = client.get("/models/")
    assert response.status_code == 200
    shown = cards(response.content.decode())
    assert set(shown) == set(catalog)
    assert "Available</span>" in shown["gpt-4o"] and "Unavailable" not in shown["gpt-4o"]
    for model_id in ("claude-3-5-sonnet", "gemini-2.5-pro", "mistral-large-latest"):
        assert "Unavailable</span>" in shown[model_id]
    assert "gpt-4o-mini" in response.content.decode()
    assert re.search(r"\d+ models, 13 available on this server", response.content.decode())


def test_a_disabled_model_is_not_listed(client, catalog):
    CatalogModel.objects.filter(public_id="grok-3").update(enabled=False)
    assert "grok-3" not in cards(client.get("/models/").content.decode())


def test_prices_per_million_tokens_context_and_capabilities(client, catalog):
    shown = cards(client.get("/models/").content.decode())
    text = {model_id: plain(html) for model_id, html in shown.items()}
    assert "Input $2.50 per 1M tokens" in text["gpt-4o"]
    assert "Output $10.00 per 1M tokens" in text["gpt-4o"]
    assert "Cached input $1.25 per 1M tokens" in text["gpt-4o"]
    assert "Cached input $0.075 per 1M tokens" in text["gpt-4o-mini"]
    assert "Cache write $3.75 per 1M tokens" in text["claude-3-5-sonnet"]
    assert "Cache write (1 h) $6.00 per 1M tokens" in text["claude-3-5-sonnet"]
    assert "Image $0.12 per image (hd/1024x1792)" in text["dall-e-3"]
    assert "Free" in text["omni-moderation-latest"] and "$" not in text["omni-moderation-latest"]
    assert "Context 128,000 tokens" in text["gpt-4o"]
    assert "Max output 16,384 tokens" in text["gpt-4o"]
    assert "Reasoning" in text["o4-mini"] and "Reasoning" not in text["gpt-4o"]
    assert "Tools" in text["gpt-4o"] and "Streaming" in text["gpt-4o"]
    assert "Tools" not in text["text-embedding-3-small"]
    # Anthropic takes JSON schemas natively only where the catalog says so.
    assert "Structured output" in text["claude-opus-4-1"]
    assert "Structured output" not in text["claude-3-5-sonnet"]
    assert "/v1/messages" in text["claude-3-5-sonnet"]
    assert "/v1/embeddings" in text["text-embedding-3-small"]


def test_prices_include_the_operators_markup(client, catalog, settings):
    settings.PRICE_MARKUP_PERCENT = Decimal("10")
    text = cards(client.get("/models/").content.decode())["gpt-4o"]
    assert "$2.75" in text and "$11.00" in text


def test_json_form_lists_the_same_models_and_reuses_the_v1_model_object(client, catalog):
    response = client.get("/models/?format=json")
    assert response["Content-Type"] == "application/json"
    data = {item["id"]: item for item in response.json()["data"]}
    assert set(data) == set(catalog)
    gpt = data["gpt-4o"]
    assert gpt["available"] is True and data["claude-3-5-sonnet"]["available"] is False
    assert gpt["provider"] == "openai" and gpt["mode"] == "chat"
    assert gpt["prices_per_million_tokens"] == {
        "prompt": "2.50",
        "completion": "10.00",
        "cached_prompt": "1.25",
    }
    capabilities = ["streaming", "tools", "structured_output", "reasoning"]
    assert data["o4-mini"]["capabilities"] == capabilities
    v1_fields = model_object(read_entries()["gpt-4o"])
    assert {name: gpt[name] for name in v1_fields} == v1_fields
    assert gpt["pricing"]["prompt"] == "0.0000025"


def test_filters_work_without_javascript(client, catalog):
    shown = cards(client.get("/models/?q=claude&available=1").content.decode())
    assert shown == {}
    shown = cards(client.get("/models/?q=claude").content.decode())
    assert set(shown) == {model_id for model_id in catalog if "claude" in model_id}
    shown = cards(client.get("/models/?mode=embedding&available=1").content.decode())
    assert set(shown) == {"text-embedding-3-small", "text-embedding-3-large"}
    shown = cards(client.get("/models/?q=reasoning+anthropic").content.decode())
    assert set(shown) == {"claude-sonnet-4", "claude-opus-4-1"}
    assert client.get("/models/?mode=nonsense").status_code == 200


def test_one_query_however_many_models(client, catalog, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert client.get("/models/").status_code == 200
    CatalogModel.objects.bulk_create(
        CatalogModel(
            public_id=f"extra-{number}",
            provider="anthropic",
            upstream_model=f"extra-{number}",
            owned_by="anthropic",
            created=0,
            prices={"prompt": "1", "completion": "2"},
        )
        for number in range(40)
    )
    with django_assert_num_queries(1):
        page = client.get("/models/").content.decode()
    assert len(cards(page)) == len(catalog) + 40
    with django_assert_num_queries(1):
        assert len(client.get("/models/?format=json").json()["data"]) == len(catalog) + 40


def test_the_top_bar_and_the_dashboard_link_to_it(client, catalog, django_user_model):
    assert 'href="/models/"' in client.get("/docs/").content.decode()
    user = django_user_model.objects.create_user(email="ada@example.com", password="x-pass-42")
    client.force_login(user)
    dashboard = client.get("/").content.decode()
    assert dashboard.count('href="/models/"') == 2  # the top bar and the sidebar
