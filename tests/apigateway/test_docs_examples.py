"""Every example on the docs page is real: its curl, Python (openai and anthropic SDKs) and
Node (openai npm) snippets, taken from the rendered page with this gateway's base URL and a
real key in place of `nex-sk-...`, run against the gateway and the fake providers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html import unescape
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from apigateway import app
from tests.support import PROJECT_DIR

NODE_DIR = PROJECT_DIR / "tests" / "node"
APIGATEWAY_DIR = PROJECT_DIR / "apigateway"
# Each /v1 endpoint and the docs' example(s) for it.
EXAMPLES_OF = {
    "/v1/models": ("models",),
    "/v1/chat/completions": ("chat", "chat-stream"),
    "/v1/responses": ("responses", "responses-stream"),
    "/v1/messages": ("messages", "messages-stream"),
    "/v1/messages/count_tokens": ("count-tokens",),
    "/v1/completions": ("completions", "completions-stream"),
    "/v1/moderations": ("moderations",),
    "/v1/embeddings": ("embeddings",),
    "/v1/images/generations": ("images",),
    "/v1/credits": ("credits",),
    "/v1/key": ("key",),
    "/v1/openapi.json": ("openapi",),
}
CURL_ONLY = {"openapi"}  # a document to read, not an SDK call
# What each example's Python and Node versions print (the fakes echo the last user text).
PRINTS = {
    "models": "gpt-4o-mini",
    "chat": "Echo: Hello!",
    "chat-stream": "Echo: Write a haiku about the sea.",
    "responses": "Echo: Hello!",
    "responses-stream": "Echo: Write a haiku about the sea.",
    "messages": "Echo: Hello!",
    "messages-stream": "Echo: Write a haiku about the sea.",
    "count-tokens": "1",
    "completions": "Echo: Say this is a test",
    "completions-stream": "Echo: Say this is a test",
    "moderations": "flagged: ",
    "embeddings": "1536 dimensions",
    "images": "https://images.example/fake-0.png",
    "credits": "total_credits",
    "key": "label",
}
# What ends each streamed answer curl prints.
STREAM_ENDS = {
    "chat-stream": "data: [DONE]",
    "completions-stream": "data: [DONE]",
    "responses-stream": "event: response.completed",
    "messages-stream": "event: message_stop",
}


def page_of(client, url: str) -> str:
    return client.get("/docs/", HTTP_HOST=urlsplit(url).netloc).content.decode()


def examples_on(page: str) -> dict[tuple[str, str], str]:
    """(example, language) -> the code as the page shows it."""
    found = re.findall(
        r'<pre id="example-[^"]+" data-example="([^"]+)" data-lang="([^"]+)">'
        r"<code>(.*?)</code></pre>",
        page,
        re.S,
    )
    return {(name, lang): unescape(code) for name, lang, code in found}


@pytest.fixture
def examples(tenant, client) -> dict[tuple[str, str], str]:
    shown = examples_on(page_of(client, tenant.url))
    assert shown, "no example found on the docs page"
    return {where: code.replace("nex-sk-...", tenant.key) for where, code in shown.items()}


@pytest.mark.django_db
def test_every_endpoint_has_a_curl_python_and_node_example(client):
    assert set(EXAMPLES_OF) == set(app.POST_ENDPOINTS) | app.GET_ENDPOINTS
    shown = examples_on(page_of(client, "http://localhost:8765"))
    for names in EXAMPLES_OF.values():
        for name in names:
            languages = ("curl",) if name in CURL_ONLY else ("curl", "python", "node")
            for lang in languages:
                code = shown[(name, lang)]
                assert "http://localhost:8765/v1" in code or 'http://localhost:8765"' in code
                assert "api.nexeonai.com" not in code
    assert {name for name, _ in shown} == {name for names in EXAMPLES_OF.values() for name in names}


def run(lang: str, code: str) -> subprocess.CompletedProcess:
    if lang == "curl":
        command, cwd = ["bash", "-ec", code.replace("curl ", "curl -sS ")], PROJECT_DIR
    elif lang == "python":
        command, cwd = [sys.executable, "-c", code], PROJECT_DIR
    else:  # Node: `import OpenAI from "openai"` resolves from tests/node
        command, cwd = ["node", "--input-type=module", "-e", code], NODE_DIR
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("lang", ["curl", "python", "node"])
def test_every_example_runs_against_the_gateway(examples, lang):
    ran = 0
    for (name, example_lang), code in sorted(examples.items()):
        if example_lang != lang:
            continue
        result = run(lang, code)
        where = f"{name} ({lang}): {result.stderr[-2000:]}"
        assert result.returncode == 0, where
        output = result.stdout
        if lang != "curl":
            assert PRINTS[name] in output, f"{where}\n{output}"
        elif name in STREAM_ENDS:
            assert STREAM_ENDS[name] in output, f"{name}: {output}"
            assert not [event for event in _events(output) if _failed(event)], output
        else:
            for document in _json_documents(output):
                assert document.get("error") is None, f"{name}: {output}"
        ran += 1
    assert ran == sum(1 for _, example_lang in examples if example_lang == lang)
    assert ran >= 14


def _events(output: str) -> list[dict]:
    """The data of each server-sent event curl printed."""
    lines = [line.removeprefix("data: ") for line in output.splitlines()]
    return [json.loads(line) for line in lines if line.startswith("{")]


def _failed(event: dict) -> bool:
    """An error event: OpenAI's in-band {"error": ...}, Anthropic's or the Responses API's
    `error` event."""
    return event.get("error") is not None or event.get("type") == "error"


def _json_documents(output: str) -> list[dict]:
    """The JSON bodies curl printed (an example may make two calls)."""
    decoder, documents, at = json.JSONDecoder(), [], 0
    while at < len(output.rstrip()):
        while output[at].isspace():
            at += 1
        document, at = decoder.raw_decode(output, at)
        documents.append(document)
    assert documents
    return documents


@pytest.mark.django_db
def test_every_contents_link_resolves_and_every_section_is_listed(client):
    page = page_of(client, "http://localhost:8765")
    ids = set(re.findall(r'\sid="([^"]+)"', page))
    links = re.findall(r'href="#([^"]+)"', page)
    assert links and all(link in ids for link in links), set(links) - ids
    contents = page[page.index('class="docs-toc"') : page.index("</nav>", page.index("docs-toc"))]
    article = page[page.index('<article class="docs">') :]
    for section in re.findall(r'<h2 id="([^"]+)"', article):
        assert f'href="#{section}"' in contents, section


@pytest.mark.django_db
def test_the_error_table_has_every_status_the_gateway_sends(client):
    page = page_of(client, "http://localhost:8765")
    table = page[page.index('<table class="error-table') :]
    table = table[: table.index("</table>")]
    sent = set()
    for source in [*APIGATEWAY_DIR.rglob("*.py"), *Path(PROJECT_DIR / "credit").rglob("*.py")]:
        text = source.read_text()
        sent |= set(re.findall(r"(?:GatewayError|upstream_error|Unavailable)\(\s*(\d{3})", text))
    assert {"400", "401", "402", "404", "429", "500", "502", "503", "504"} <= sent
    for status in sent:
        assert f"<td>{status}</td>" in table, status
    for code in ("invalid_api_key", "insufficient_quota", "spend_limit_reached", "model_not_found"):
        assert f"<code>{code}</code>" in table
    for code in ("model_not_available", "unknown_url", "request_too_large", "rate_limit_exceeded"):
        assert f"<code>{code}</code>" in table
