"""The docs page renders the public API reference with this host's base URL; the reference and
the README name every endpoint the gateway routes."""

import re

import pytest

from apigateway import app
from tests.support import PROJECT_DIR

REFERENCE = (PROJECT_DIR / "docs" / "api-reference.txt").read_text()


@pytest.mark.django_db
def test_every_section_and_endpoint_of_the_reference_is_on_the_page(client):
    page = client.get("/docs/", HTTP_HOST="127.0.0.1:8443").content.decode()
    headings = [
        "Introduction", "Base URL", "Authentication", "List Models", "Chat Completions",
        "Request Body", "Responses", "Anthropic Messages", "Completions (legacy)",
        "Moderations", "Embeddings", "Image Generation", "Streaming",
        "SDK Usage", "Errors", "Credits and key", "OpenAPI description",
    ]  # fmt: skip
    for heading in headings:
        assert heading in REFERENCE
        assert f">{heading}</h" in page
    for endpoint in re.findall(r"(?:GET|POST)(/[a-z_/]+)", REFERENCE):
        assert endpoint in page
    for code in ("400", "401", "402", "404", "429", "500", "502", "503", "504"):
        assert f"<td>{code}</td>" in page


@pytest.mark.django_db
def test_examples_use_this_hosts_base_url(client):
    page = client.get("/docs/", HTTP_HOST="localhost").content.decode()
    assert "https://api.nexeonai.com" in REFERENCE
    assert "api.nexeonai.com" not in page
    assert "http://localhost/v1/chat/completions" in page
    assert "http://localhost/v1/models" in page


def test_every_routed_endpoint_is_in_the_reference_and_the_readme():
    readme = (PROJECT_DIR / "README.md").read_text()
    routed = [("POST", path) for path in app.POST_ENDPOINTS]
    routed += [("GET", path) for path in sorted(app.GET_ENDPOINTS)]
    for method, path in routed:
        assert f"{method}{path.removeprefix('/v1')}" in REFERENCE, path
        assert f"{method} {path}`" in readme, path
