"""url_mistakes: which paths are API paths without /v1 or with it twice, and the base URL
it suggests."""

from __future__ import annotations

import pytest

from apigateway.server import is_gateway_path
from apigateway.url_mistakes import base_url, doubled_v1, lacks_v1, missing_v1, twice_v1


@pytest.mark.parametrize(
    "path",
    [
        *("/chat/completions", "/completions", "/embeddings", "/responses", "/messages"),
        *("/models", "/models/gpt-4o", "/images/generations", "/moderations"),
        "/messages/count_tokens",
    ],
)
def test_api_paths_without_v1(path):
    assert lacks_v1(path) and is_gateway_path(path)


@pytest.mark.parametrize(
    "path",
    [
        *("/", "/keys/", "/usage/", "/billing/", "/docs/", "/accounts/login/", "/admin/"),
        *("/api/", "/healthz", "/readyz", "/metrics", "/settings/", "/members/", ""),
        "/models/",  # the public models page
        "/static/app.css",
    ],
)
def test_dashboard_paths_are_not_api_paths(path):
    assert not lacks_v1(path) and not is_gateway_path(path)


@pytest.mark.parametrize(
    ("path", "doubled"),
    [
        ("/v1/v1/messages", True),
        ("/v1/v1/chat/completions", True),
        ("/v1/v1/models/gpt-4o", True),
        ("/v1/messages", False),
        ("/v1/v1", False),
        ("/v1/v1/keys/", False),
    ],
)
def test_api_paths_with_v1_twice(path, doubled):
    assert doubled_v1(path) is doubled


def test_v1_twice_advice_follows_the_sdk():
    scope = {"scheme": "http", "headers": [(b"host", b"gw.example")], "method": "POST"}
    anthropic = twice_v1({**scope, "path": "/v1/v1/messages"}).message
    assert "set ANTHROPIC_BASE_URL to http://gw.example (without /v1)" in anthropic
    openai = twice_v1({**scope, "path": "/v1/v1/embeddings"}).message
    assert "base URL to http://gw.example/v1 (with /v1 once)" in openai


def test_the_suggested_base_url_is_this_hosts():
    scope = {"scheme": "http", "headers": [(b"host", b"gw.example:8000")]}
    assert base_url(scope) == "http://gw.example:8000/v1"
    behind_proxy = {
        "scheme": "http",
        "headers": [(b"host", b"api.example"), (b"x-forwarded-proto", b"https, http")],
    }
    assert base_url(behind_proxy) == "https://api.example/v1"
    error = missing_v1({**behind_proxy, "method": "POST", "path": "/chat/completions"})
    assert error.status == 404 and error.code == "unknown_url"
    assert "https://api.example/v1" in error.message
