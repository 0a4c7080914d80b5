"""Which media URLs a provider may be asked to fetch (apigateway.media_urls), pure."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import replace

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apigateway import media_urls, validation
from apigateway.catalog import snapshot
from apigateway.errors import GatewayError
from apigateway.models import CatalogModel
from apigateway.providers.anthropic import AnthropicProvider
from apigateway.providers.base import Deployment
from apigateway.providers.gemini import GeminiProvider
from apigateway.providers.openai import OpenAIProvider
from tests.apigateway.conftest import UPSTREAM_KEY

FAST = settings(max_examples=300, derandomize=True, database=None, deadline=None)
PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkY"
    "AAAAAYAAjCB0C8AAAAASUVORK5CYII="
)

ACCEPTED = [
    "https://images.example.com/cat.png",
    "https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg",
    "HTTPS://Example.COM/x.jpg",
    "https://example.com:8443/x.png?size=2#top",
    "https://8.8.8.8/x.png",
    "https://[2606:4700:4700::1111]/x.png",
    "https://bücher.example/x.png",
    "data:image/png;base64,iVBORw0KGgo=",
    "DATA:image/png;base64,iVBORw0KGgo=",
]
REFUSED = [
    # schemes other than https and data
    "http://169.254.169.254/latest/meta-data",
    "http://example.com/x.png",
    "file:///etc/passwd",
    "ftp://example.com/x.png",
    "gopher://127.0.0.1:70/_x",
    "javascript:alert(1)",
    "//example.com/x.png",
    "example.com/x.png",
    "",
    " https://example.com/x.png",
    "https:example.com/x.png",
    "https:///127.0.0.1/x",
    # literal private, loopback, link-local, unspecified, multicast, reserved addresses
    "https://169.254.169.254/latest/meta-data",
    "https://127.0.0.1/x",
    "https://127.0.0.1.:443/x",
    "https://10.1.2.3/x",
    "https://172.16.0.1/x",
    "https://192.168.1.1/x",
    "https://100.64.0.1/x",
    "https://0.0.0.0/x",
    "https://224.0.0.1/x",
    "https://240.0.0.1/x",
    "https://255.255.255.255/x",
    # the numeric forms a URL parser reads as IPv4
    "https://2130706433/x",
    "https://0x7f.1/x",
    "https://0x7f000001/x",
    "https://127.1/x",
    "https://0177.0.0.1/x",
    "https://017700000001/x",
    "https://0/x",
    "https://1.2.3.4.5/x",
    "https://example.123/x",
    # IPv6, bracketed; IPv4 inside IPv6
    "https://[::1]/x",
    "https://[::]/x",
    "https://[fe80::1]/x",
    "https://[fc00::1]/x",
    "https://[ff02::1]/x",
    "https://[ff0e::1]/x",
    "https://[::ffff:127.0.0.1]/x",
    "https://[::ffff:169.254.169.254]/x",
    "https://[::ffff:a9fe:a9fe]/x",
    "https://[64:ff9b::7f00:1]/x",
    "https://[2002:7f00:1::]/x",
    "https://[fe80::1%25eth0]/x",
    "https://[::1/x",
    "https://a]b/c",
    # names that resolve only inside a network
    "https://localhost/x",
    "https://LOCALHOST./x",
    "https://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/x",  # fullwidth
    "https://app.localhost/x",
    "https://printer.local/x",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://vllm.default.svc/x",
    "https://vllm.default.svc.cluster.local/x",
    "https://intranet/x",
    "https://router.lan/x",
    "https://files.corp/x",
    # userinfo, and what parsers read differently
    "https://user:pass@example.com/x",
    "https://example.com@127.0.0.1/x",
    "https://example.com\\@127.0.0.1/x",
    "https://127.0.0.1\\.example.com/x",
    "https://exa mple.com/x",
    "https://127.0.0.\n1/x",
    "https://example.com:99999/x",
    "https://example.com:port/x",
    "https://a..b/x",
]


@pytest.mark.parametrize("url", ACCEPTED)
def test_data_and_public_https_urls_are_accepted(url):
    assert media_urls.problem(url) is None
    media_urls.check(url)


@pytest.mark.parametrize("url", REFUSED)
def test_other_schemes_and_internal_hosts_are_a_400_naming_messages(url):
    assert media_urls.problem(url)
    with pytest.raises(GatewayError) as caught:
        media_urls.check(url)
    assert (caught.value.status, caught.value.param) == (400, "messages")


def test_urls_are_found_in_image_file_and_audio_parts_only():
    parts = [
        {"type": "text", "text": "http://10.0.0.1/"},
        {"type": "image_url", "image_url": {"url": "https://a.example/x.png", "detail": "low"}},
        {"type": "image_url", "image_url": "https://b.example/y.png"},
        {"type": "image_url", "image_url": {"url": 5}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE"}},
        {"type": "file", "file": {"file_data": "JVBERi0xLjQK"}},  # bare base64
        {"type": "file", "file": {"file_id": "file-abc"}},
        {"type": "input_audio", "input_audio": {"data": "http://10.0.0.1/a.wav"}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
    ]
    found = [url for part in parts for url in media_urls.urls_in(part)]
    assert found == [
        "https://a.example/x.png",
        "https://b.example/y.png",
        "data:application/pdf;base64,JVBE",
        "http://10.0.0.1/a.wav",
    ]
    for part in parts[:3]:
        media_urls.check_part(part)
    with pytest.raises(GatewayError):
        media_urls.check_part(parts[-2])


def test_providers_that_may_fetch_nothing_take_only_inline_data():
    inline = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}
    remote = {"type": "image_url", "image_url": {"url": "https://images.example.com/x.png"}}
    media_urls.refuse_remote([{"role": "user", "content": [inline]}, {"role": "user"}])
    with pytest.raises(GatewayError) as caught:
        media_urls.refuse_remote([{"role": "user", "content": [inline, remote]}])
    assert caught.value.param == "messages"


def image_body(url: str) -> dict:
    content = [{"type": "text", "text": "?"}, {"type": "image_url", "image_url": {"url": url}}]
    return {"model": "m", "messages": [{"role": "user", "content": content}]}


@pytest.mark.parametrize(
    ("adapter", "provider"),
    [(AnthropicProvider(), "anthropic"), (GeminiProvider(), "gemini"), (OpenAIProvider(), "p")],
)
def test_adapters_take_public_https_or_data_and_refuse_remote_media_when_told(adapter, provider):
    fetching = Deployment(provider, "up", "https://p.example", "k")
    inline_only = replace(fetching, options=replace(fetching.options, remote_media=False))
    public = image_body("https://images.example.com/cat.png")
    adapter.build_chat_request(public, fetching)
    adapter.build_chat_request(image_body(PIXEL), inline_only)
    with pytest.raises(GatewayError) as caught:
        adapter.build_chat_request(public, inline_only)
    assert caught.value.param == "messages"
    if provider != "p":  # (the OpenAI-shaped adapter relies on validation for this)
        with pytest.raises(GatewayError):
            adapter.build_chat_request(image_body("http://10.0.0.1/x.png"), fetching)


@pytest.mark.parametrize("kind", ["video_url", "audio_url", "image", "document", "input_file"])
def test_validation_takes_only_openais_content_part_types(kind):
    body = {"model": "m", "messages": [{"role": "user", "content": [{"type": kind, kind: {}}]}]}
    with pytest.raises(GatewayError) as caught:
        validation.chat(body)
    assert caught.value.param == "messages[0].content"


def test_validation_checks_every_media_url():
    validation.chat(image_body("https://images.example.com/cat.png"))
    validation.chat(image_body(PIXEL))
    with pytest.raises(GatewayError):
        validation.chat(image_body("http://169.254.169.254/latest/meta-data"))


# --- properties ----------------------------------------------------------------------------


def internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not address.is_global or address.is_multicast


ipv4 = st.integers(min_value=0, max_value=2**32 - 1).map(ipaddress.IPv4Address)
ipv6 = st.integers(min_value=0, max_value=2**128 - 1).map(ipaddress.IPv6Address)


@FAST
@given(ipv4)
def test_every_spelling_of_an_internal_ipv4_address_is_refused(address):
    number = int(address)
    spellings = [
        str(address),
        str(number),
        hex(number),
        ".".join(oct(int(octet)).replace("0o", "0") for octet in str(address).split(".")),
        f"[::ffff:{address}]",
    ]
    for host in spellings:
        if socket.inet_aton(host.strip("[]").removeprefix("::ffff:")) != address.packed:
            continue  # (not a spelling inet_aton reads as this address)
        verdict = media_urls.problem(f"https://{host}/x.png")
        assert (verdict is not None) == internal(address), host


@FAST
@given(ipv6)
def test_an_ipv6_literal_is_refused_when_it_or_the_ipv4_inside_is_internal(address):
    verdict = media_urls.problem(f"https://[{address}]/x.png")
    embedded = address.ipv4_mapped or address.sixtofour
    if embedded is None and address in media_urls.NAT64:
        embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    refused = internal(address) or (embedded is not None and internal(embedded))
    assert (verdict is not None) == refused


@FAST
@given(st.text(max_size=80))
def test_anything_is_answered_without_an_exception_and_only_https_or_data_passes(url):
    verdict = media_urls.problem(url)
    if verdict is None:
        assert url[:8].lower() == "https://" or url[:5].lower() == "data:"


@FAST
@given(
    st.sampled_from(["http", "file", "ftp", "gopher", "ws", "wss", "dict", "ldap", "jar"]),
    st.text(max_size=40),
)
def test_no_scheme_but_https_and_data_passes(scheme, rest):
    assert media_urls.problem(f"{scheme}:{rest}") is not None


# --- through the gateway -------------------------------------------------------------------

CHAT_MODELS = ("gpt-4o", "llama-3.3-70b-versatile", "claude-3-5-sonnet", "gemini-2.5-flash")


def image_call(tenant, model: str, url: str) -> httpx.Response:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    return httpx.post(
        f"{tenant.url}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": content}]},
        headers={"authorization": f"Bearer {tenant.key}"},
        timeout=30,
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "file:///etc/passwd",
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:127.0.0.1]:8000/x.png",
        "https://0x7f.1/x.png",
        "https://metadata.google.internal/computeMetadata/v1/",
    ],
)
def test_an_internal_or_non_https_media_url_reaches_no_provider(
    tenant, fake_openai, fake_anthropic, fake_gemini, url
):
    """Unchecked, such a URL would go as it is to OpenAI-shaped providers, and Anthropic's
    and Gemini's adapters would pass on any http(s) URL."""
    for model in CHAT_MODELS:
        response = image_call(tenant, model, url)
        assert response.status_code == 400, (model, response.text)
        assert response.json()["error"]["param"] == "messages"
    assert fake_openai.requests == fake_anthropic.requests == fake_gemini.requests == []


def self_hosted_model(providers, fake_openai, name: str, **options) -> str:
    providers[name] = {"api_key": UPSTREAM_KEY, "base_url": fake_openai.base_url + "/v1", **options}
    if name not in ("ollama", "vllm"):
        providers[name]["adapter"] = "openai"
    CatalogModel.objects.create(
        public_id=f"{name}-qwen",
        provider=name,
        upstream_model="Qwen/Qwen2.5-VL-7B-Instruct",
        owned_by="qwen",
        created=1,
        prices={"prompt": "0.10", "completion": "0.10"},
    )
    snapshot.loaded_at = float("-inf")
    return f"{name}-qwen"


def test_self_hosted_providers_take_media_only_inline(tenant, fake_openai, providers):
    for name in ("vllm", "lab"):
        model = self_hosted_model(providers, fake_openai, name)
        response = image_call(tenant, model, "https://upload.wikimedia.org/cat.png")
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == "messages"
        assert fake_openai.requests == []
        assert image_call(tenant, model, PIXEL).status_code == 200
        sent = fake_openai.requests.pop().json()
        assert sent["messages"][0]["content"][1]["image_url"]["url"] == PIXEL


def test_a_self_hosted_provider_may_be_allowed_remote_media(tenant, fake_openai, providers):
    model = self_hosted_model(providers, fake_openai, "lab", remote_media=True)
    assert image_call(tenant, model, "https://upload.wikimedia.org/cat.png").status_code == 200
