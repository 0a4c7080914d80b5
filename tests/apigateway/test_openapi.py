"""The OpenAPI description of /v1 (apigateway/openapi.json): served without a key, and it
describes every endpoint the gateway routes, with OpenAI's error object for every error (and
Anthropic's on the Messages API)."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson

from apigateway import app

DOCUMENT = Path(app.__file__).with_name("openapi.json")


def served(gateway_url: str) -> dict:
    response = httpx.get(f"{gateway_url}/v1/openapi.json", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"].startswith("req_")
    return response.json()


def test_it_is_served_without_a_key_and_lists_every_endpoint(gateway_url):
    document = served(gateway_url)
    assert document == orjson.loads(DOCUMENT.read_bytes())
    assert document["openapi"].startswith("3.")
    assert document["servers"] == [{"url": "/v1"}]
    routed = {(path, "post") for path in app.POST_ENDPOINTS}
    routed |= {(path, "get") for path in app.GET_ENDPOINTS}
    routed.add(("/v1/models/{model}", "get"))
    # Stored responses: none is, and these say so (a 404).
    routed |= {("/v1/responses/{response_id}", method) for method in ("get", "delete")}
    routed.add(("/v1/responses/{response_id}/input_items", "get"))
    described = {
        ("/v1" + path, method) for path, item in document["paths"].items() for method in item
    }
    assert described == routed
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    assert document["paths"]["/openapi.json"]["get"]["security"] == []


def test_the_document_is_not_under_the_key_check_but_keeps_the_method_check(gateway_url):
    response = httpx.post(f"{gateway_url}/v1/openapi.json", timeout=10)
    assert response.status_code == 405
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def resolve(document: dict, reference: str) -> dict:
    node = document
    for part in reference.removeprefix("#/").split("/"):
        node = node[part]
    return node


def references(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in references(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in references(value)]
    return []


def test_every_reference_resolves_and_every_error_is_openais_error_object():
    document = orjson.loads(DOCUMENT.read_bytes())
    for reference in references(document):
        assert resolve(document, reference), reference
    error_statuses = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                response = resolve(document, response["$ref"]) if "$ref" in response else response
                if int(status) >= 400:
                    error_statuses.add(status)
                    schema = response["content"]["application/json"]["schema"]
                    # Anthropic's Messages API answers in Anthropic's error shape.
                    anthropic = path.startswith("/messages")
                    shape = "AnthropicErrorResponse" if anthropic else "ErrorResponse"
                    assert schema == {"$ref": f"#/components/schemas/{shape}"}, (path, method)
    assert error_statuses == {
        *("400", "401", "402", "404", "405", "408", "413", "429"),
        *("500", "502", "503", "504"),
    }
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["message", "type", "param", "code"]


def test_the_limits_validation_checks_are_the_documented_ones():
    """The ranges the gateway answers 400 for are the ones the description states."""
    schemas = orjson.loads(DOCUMENT.read_bytes())["components"]["schemas"]
    chat = schemas["ChatCompletionRequest"]["properties"]

    def bounds(name):
        number = chat[name]["anyOf"][0]
        return number.get("minimum"), number.get("maximum")

    assert bounds("temperature") == (0, 2)
    assert bounds("top_p") == (0, 1)
    assert bounds("presence_penalty") == bounds("frequency_penalty") == (-2, 2)
    assert bounds("n") == (1, 128)
    assert bounds("max_tokens") == bounds("max_completion_tokens") == (1, None)
    assert schemas["ModelId"]["maxLength"] == 200
    assert schemas["ChatCompletionRequest"]["required"] == ["model", "messages"]
    images = schemas["ImageRequest"]["properties"]
    assert images["n"]["anyOf"][0]["maximum"] == 10
    assert schemas["EmbeddingRequest"]["properties"]["input"]["anyOf"][1]["maxItems"] == 2048
