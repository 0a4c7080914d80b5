"""Providers behind TLS, proxies and limits, through the gateway: a provider's own CA,
client certificate or `verify: false`; SSL_CERT_FILE and HTTPS_PROXY as a served process
reads them; an answer over the size cap and callers over the connection cap. Every failure
is an error in the API's format (never a 500) and costs the caller nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import orjson
import pytest

from apigateway import http
from apigateway.upstream_tls import configured as configured_provider_tls
from tests.apigateway.conftest import UPSTREAM_KEY, assert_error, gateway
from tests.fakes.openai import FakeOpenAI
from tests.fakes.proxy import ForwardProxy
from tests.fakes.server import serving
from tests.fakes.tls import TestCA
from tests.ledger_check import assert_balance_reconciles
from tests.support import manage_env, run_manage

GRANTED = 10 * 10**9  # the tenant's $10
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello there"}]}
PROXY_VARIABLES = [f"{n}{s}" for n in ("http", "https", "all", "no") for s in ("_proxy", "_PROXY")]


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def tls_openai(ca):
    fake = FakeOpenAI(api_key=UPSTREAM_KEY)
    with serving(fake, **ca.uvicorn_options()):
        yield fake


@pytest.fixture(scope="module")
def mutual_tls_openai(ca):
    fake = FakeOpenAI(api_key=UPSTREAM_KEY)
    with serving(fake, **ca.uvicorn_options(require_client_cert=True)):
        yield fake


@pytest.fixture(autouse=True)
def fresh_clients():
    """Each test's limits and TLS settings reach a new client (one per loop and process)."""
    http.reset()
    yield
    http.reset()


def assert_api_error(answer: httpx.Response, status: int, *words: str) -> None:
    """A provider call the gateway gave up on: an api_error naming each of `words`."""
    error = assert_error(answer, status, "api_error")
    for word in words:
        assert word in error["message"]


def point_openai_at(providers, fake: FakeOpenAI, **options) -> None:
    providers["openai"] = {"api_key": UPSTREAM_KEY, "base_url": f"{fake.base_url}/v1", **options}


# --- TLS per provider --------------------------------------------------------------------


def test_an_untrusted_certificate_is_a_502_that_costs_nothing(tenant, providers, tls_openai):
    point_openai_at(providers, tls_openai)
    assert_api_error(tenant.post("/chat/completions", CHAT), 502, "openai", "TLS")
    assert assert_balance_reconciles(tenant.organization.pk) == GRANTED


def test_a_providers_own_ca_file(tenant, providers, tls_openai, ca):
    point_openai_at(providers, tls_openai, ca_file=str(ca.ca_file))
    answer = tenant.post("/chat/completions", CHAT)
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"]


def test_a_client_certificate_for_a_server_that_requires_one(
    tenant, providers, mutual_tls_openai, ca
):
    point_openai_at(providers, mutual_tls_openai, ca_file=str(ca.ca_file))
    assert tenant.post("/chat/completions", CHAT).status_code == 502  # refused without one
    http.reset()
    point_openai_at(
        providers,
        mutual_tls_openai,
        ca_file=str(ca.ca_file),
        client_cert=str(ca.client_cert),
        client_key=str(ca.client_key),
    )
    answer = tenant.post("/chat/completions", CHAT)
    assert answer.status_code == 200, answer.text


def test_verify_false_accepts_the_certificate_unchecked(tenant, providers, tls_openai):
    point_openai_at(providers, tls_openai, verify=False)
    assert tenant.post("/chat/completions", CHAT).status_code == 200


# --- as a served process reads its environment ---------------------------------------------


def test_ssl_cert_file_sets_the_default_trust_of_a_served_gateway(tenant, tls_openai, ca):
    with gateway(
        tls_openai,  # (OpenAI's base URL: the TLS fake's)
        workers=1,
        SSL_CERT_FILE=str(ca.ca_file),
        **dict.fromkeys(PROXY_VARIABLES),
    ) as (url, _):
        answer = tenant.post("/chat/completions", CHAT, url=url)
    assert answer.status_code == 200, answer.text


def test_https_proxy_carries_the_egress(tenant, tls_openai, ca):
    proxy = ForwardProxy(user="egress", password="s3cret")
    with (
        proxy.serving() as proxy_url,
        gateway(
            tls_openai,
            workers=1,
            SSL_CERT_FILE=str(ca.ca_file),
            **dict.fromkeys(PROXY_VARIABLES),
            HTTPS_PROXY=proxy_url,
            NO_PROXY="example.com",
        ) as (url, _),
    ):
        answer = tenant.post("/chat/completions", CHAT, url=url)
    assert answer.status_code == 200, answer.text
    port = tls_openai.base_url.rsplit(":", 1)[1]
    assert proxy.seen == [f"CONNECT localhost:{port} HTTP/1.1"]
    assert proxy.refused == 0


# --- limits ------------------------------------------------------------------------------


def test_an_answer_over_the_size_cap_is_a_502_that_costs_nothing(tenant, fake_openai, settings):
    settings.GATEWAY_UPSTREAM_MAX_RESPONSE_BYTES = 4000
    fake_openai.fail_next(200, {"padding": "x" * 5000})
    assert_api_error(tenant.post("/chat/completions", CHAT), 502, "openai", "4000 bytes")
    assert assert_balance_reconciles(tenant.organization.pk) == GRANTED
    assert tenant.post("/chat/completions", CHAT).status_code == 200  # a normal answer still fits


def test_callers_over_the_connection_cap_queue_within_the_connect_deadline(
    tenant, fake_openai, providers, settings
):
    settings.GATEWAY_UPSTREAM_MAX_CONNECTIONS_PER_HOST = 1
    providers["openai"]["connect_timeout"] = 5.0
    fake_openai.latency = 0.3
    with ThreadPoolExecutor(3) as pool:
        statuses = list(
            pool.map(lambda _: tenant.post("/chat/completions", CHAT).status_code, range(3))
        )
    assert statuses == [200, 200, 200]  # one at a time, none refused


def test_a_caller_that_cannot_get_a_connection_in_time_gets_a_503(
    tenant, fake_openai, providers, settings
):
    settings.GATEWAY_UPSTREAM_MAX_CONNECTIONS_PER_HOST = 1
    providers["openai"]["connect_timeout"] = 0.5
    fake_openai.latency = 2.0
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: tenant.post("/chat/completions", CHAT), range(2)))
    assert sorted(answer.status_code for answer in answers) == [200, 503]
    busy = next(answer for answer in answers if answer.status_code == 503)
    assert_api_error(busy, 503, "openai")
    assert busy.headers["retry-after"]
    assert orjson.loads(busy.content)["error"]["message"]


# --- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({"ca_file": "/nonexistent/ca.pem"}, "the TLS files cannot be used"),
        ({"verify": "no"}, "verify must be true or false"),
        ({"client_key": "/etc/key.pem"}, "client_key needs client_cert"),
        ({"ca_file": ""}, "ca_file must be the path of a PEM file"),
    ],
)
def test_wrong_tls_options_are_refused_with_the_providers_name(given, says):
    with pytest.raises(ValueError, match=says) as refused:
        configured_provider_tls("lab", given)
    assert "NEXEON_PROVIDERS['lab']" in str(refused.value)


def test_tls_options_are_read_and_checked_at_start(ca):
    given = {"lab": {"base_url": "https://llm.internal/v1", "ca_file": str(ca.ca_file)}}
    code = "from django.conf import settings; print(settings.PROVIDERS['lab']['ca_file'])"
    environment = manage_env(DEBUG="1", NEXEON_PROVIDERS=orjson.dumps(given).decode())
    result = run_manage("shell", "--no-imports", "-c", code, env=environment)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(ca.ca_file)
    given["lab"]["client_cert"] = str(ca.ca_file)  # a certificate without its key
    environment = manage_env(DEBUG="1", NEXEON_PROVIDERS=orjson.dumps(given).decode())
    broken = run_manage("check", env=environment)
    assert broken.returncode != 0
    assert "NEXEON_PROVIDERS['lab']: the TLS files cannot be used" in broken.stderr


def test_a_stream_event_over_the_size_cap_ends_the_stream_with_an_error_event(
    tenant, fake_openai, settings
):
    """Headers are gone by then: the error comes in-band and the caller pays for what the
    provider produced (the rule for any stream cut off), nothing more."""
    settings.GATEWAY_UPSTREAM_MAX_RESPONSE_BYTES = 4000
    fake_openai.chunk_delay = 0.1  # each event in its own read
    fake_openai.script = [{"content": "one "}, {"content": "two "}, b"data: " + b"x" * 5000]
    stream = tenant.client().chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "count"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError, match="larger than 4000 bytes"):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "one two "
    balance = assert_balance_reconciles(tenant.organization.pk)
    assert balance < GRANTED  # the two events produced are paid for
