"""The provider-facing client on real networks: through a forward proxy (CONNECT for https,
absolute URIs for http, NO_PROXY), over TLS with a CA of the test's own (a private CA, a
client certificate, verification off), to an IPv6 literal, with a cap on connections per
host and on the size of an answer (gzip included)."""

from __future__ import annotations

import asyncio
import gzip
import time
import tracemalloc

import pytest

from apigateway import upstream_tls
from apigateway.upstream_client import (
    Client,
    UpstreamBroken,
    UpstreamBusy,
    UpstreamConnectError,
    UpstreamTLSError,
    UpstreamTooLarge,
)
from tests.apigateway.test_upstream_client import RawServer, ok
from tests.fakes.proxy import ForwardProxy
from tests.fakes.tls import TestCA
from tests.support import free_port

PROXY_VARIABLES = [
    f"{name}{suffix}" for name in ("http", "https", "all", "no") for suffix in ("_proxy", "_PROXY")
]


@pytest.fixture(autouse=True)
def no_proxy_from_the_machine(monkeypatch):
    """Each test sets the proxy variables it means; none comes from the environment."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def ca(tmp_path) -> TestCA:
    return TestCA(tmp_path)


async def fetch(client: Client, url: str, *, tls=None, connect_timeout=2.0, read_timeout=5.0):
    response = await client.request(
        "POST",
        url + "/v1/x?alt=sse",
        headers={"authorization": "Bearer k"},
        body=b'{"a":1}',
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        tls=tls,
    )
    try:
        return response.status, await response.read()
    finally:
        response.close()


# --- proxies -----------------------------------------------------------------------------


def test_https_goes_through_a_connect_tunnel_with_the_proxys_credentials(ca, monkeypatch):
    proxy = ForwardProxy(user="gateway", password="p@ss:word")
    server = RawServer([ok(b"tunnelled"), ok(b"kept alive")], tls=ca.server_context())

    async def run():
        async with server as url:
            client = Client()
            tls = upstream_tls.context(ca_file=str(ca.ca_file))
            assert await fetch(client, url, tls=tls) == (200, b"tunnelled")
            assert await fetch(client, url, tls=tls) == (200, b"kept alive")
            client.close()
            return url

    with proxy.serving() as proxy_url:
        monkeypatch.setenv("HTTPS_PROXY", proxy_url)
        url = asyncio.run(run())
    port = url.rsplit(":", 1)[1]
    assert proxy.seen == [f"CONNECT 127.0.0.1:{port} HTTP/1.1"]  # one tunnel, reused
    assert proxy.refused == 0
    assert server.requests[0].startswith(b"POST /v1/x?alt=sse HTTP/1.1\r\n")
    assert f"host: 127.0.0.1:{port}\r\n".encode() in server.requests[0]


def test_a_proxy_that_refuses_the_credentials_is_a_connect_error(ca, monkeypatch):
    proxy = ForwardProxy(user="gateway", password="right")

    async def run():
        async with RawServer([ok(b"never")], tls=ca.server_context()) as url:
            client = Client()
            with pytest.raises(UpstreamConnectError, match="407"):
                await fetch(client, url, tls=upstream_tls.context(ca_file=str(ca.ca_file)))
            client.close()

    with proxy.serving():
        monkeypatch.setenv("https_proxy", f"http://gateway:wrong@127.0.0.1:{proxy.port}")
        asyncio.run(run())
    assert proxy.refused == 1


def test_plain_http_goes_to_the_proxy_as_an_absolute_uri(monkeypatch):
    proxy = ForwardProxy(user="gateway", password="secret")
    server = RawServer([ok(b"forwarded")])

    async def run():
        async with server as url:
            client = Client()
            assert await fetch(client, url) == (200, b"forwarded")
            client.close()
            return url

    with proxy.serving() as proxy_url:
        monkeypatch.setenv("http_proxy", proxy_url)
        url = asyncio.run(run())
    assert proxy.seen == [f"POST {url}/v1/x?alt=sse HTTP/1.1"]
    assert proxy.refused == 0  # the credentials went as Proxy-Authorization
    assert server.requests[0].startswith(b"POST /v1/x?alt=sse HTTP/1.1\r\n")


@pytest.mark.parametrize("case", [str.upper, str.lower], ids=["NO_PROXY", "no_proxy"])
def test_no_proxy_names_the_hosts_reached_directly(case, monkeypatch):
    dead = f"http://127.0.0.1:{free_port()}"  # a proxy that is not there
    monkeypatch.setenv(case("http_proxy"), dead)
    monkeypatch.setenv(case("https_proxy"), dead)
    monkeypatch.setenv(case("no_proxy"), "api.example.com, 127.0.0.1")

    async def run():
        async with RawServer([ok(b"direct")]) as url:
            client = Client()
            assert await fetch(client, url) == (200, b"direct")
            client.close()

    asyncio.run(run())


def test_without_no_proxy_a_dead_proxy_is_unreachable(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")

    async def run():
        async with RawServer([ok(b"direct")]) as url:
            client = Client()
            with pytest.raises(UpstreamConnectError):
                await fetch(client, url)
            client.close()

    asyncio.run(run())


# --- IPv6 --------------------------------------------------------------------------------


def test_an_ipv6_literal_is_reached_and_named_in_brackets():
    server = RawServer([ok(b"over ipv6")], host="::1")

    async def run():
        async with server as url:
            client = Client()
            assert await fetch(client, url) == (200, b"over ipv6")
            client.close()
            return url

    url = asyncio.run(run())
    port = url.rsplit(":", 1)[1]
    assert url.startswith("http://[::1]:")
    assert f"host: [::1]:{port}\r\n".encode() in server.requests[0]


@pytest.mark.parametrize("no_proxy", ["", "::1", "[::1]"], ids=["proxied", "bare", "brackets"])
def test_an_ipv6_https_provider_through_the_proxy_or_past_it(ca, monkeypatch, no_proxy):
    proxy = ForwardProxy()
    server = RawServer([ok(b"v6")], host="::1", tls=ca.server_context())

    async def run():
        async with server as url:
            client = Client()
            tls = upstream_tls.context(ca_file=str(ca.ca_file))
            assert await fetch(client, url, tls=tls) == (200, b"v6")
            client.close()
            return url

    with proxy.serving() as proxy_url:
        monkeypatch.setenv("HTTPS_PROXY", proxy_url)
        monkeypatch.setenv("NO_PROXY", no_proxy)
        url = asyncio.run(run())
    port = url.rsplit(":", 1)[1]
    assert proxy.seen == ([] if no_proxy else [f"CONNECT [::1]:{port} HTTP/1.1"])


# --- TLS ---------------------------------------------------------------------------------


def test_a_private_ca_is_refused_by_default_and_trusted_with_ca_file(ca):
    async def run():
        async with RawServer([ok(b"private")], tls=ca.server_context()) as url:
            client = Client()
            with pytest.raises(UpstreamTLSError):
                await fetch(client, url)  # the system's trust store: not this CA
            tls = upstream_tls.context(ca_file=str(ca.ca_file))
            assert await fetch(client, url, tls=tls) == (200, b"private")
            client.close()

    asyncio.run(run())


def test_a_server_that_requires_a_client_certificate(ca):
    server_tls = ca.server_context(require_client_cert=True)

    async def run():
        async with RawServer([ok(b"mutual")], tls=server_tls) as url:
            client = Client()
            without = upstream_tls.context(ca_file=str(ca.ca_file))
            with pytest.raises(ConnectionError):  # (TLS 1.3: refused after the handshake)
                await fetch(client, url, tls=without)
            with_certificate = upstream_tls.context(
                ca_file=str(ca.ca_file),
                client_cert=str(ca.client_cert),
                client_key=str(ca.client_key),
            )
            assert await fetch(client, url, tls=with_certificate) == (200, b"mutual")
            client.close()

    asyncio.run(run())


def test_verify_off_accepts_any_certificate(ca):
    async def run():
        async with RawServer([ok(b"unchecked")], tls=ca.server_context()) as url:
            client = Client()
            tls = upstream_tls.context(verify=False)
            assert await fetch(client, url, tls=tls) == (200, b"unchecked")
            client.close()

    asyncio.run(run())


def test_one_host_with_two_tls_settings_keeps_two_pools(ca):
    """A connection made with one provider's client certificate is never lent to another
    provider configured without it (same host, other options)."""
    server = RawServer([ok(b"one"), ok(b"two")], tls=ca.server_context())

    async def run():
        async with server as url:
            client = Client()
            first = upstream_tls.context(ca_file=str(ca.ca_file))
            second = upstream_tls.context(verify=False)
            assert await fetch(client, url, tls=first) == (200, b"one")
            assert await fetch(client, url, tls=second) == (200, b"two")
            client.close()

    asyncio.run(run())
    assert server.connections == 2


def test_tls_contexts_are_made_once_per_setting(ca):
    assert upstream_tls.context(ca_file=str(ca.ca_file)) is upstream_tls.context(
        ca_file=str(ca.ca_file)
    )
    assert upstream_tls.context() is None  # the default: the client's own


# --- limits ------------------------------------------------------------------------------


def test_connections_per_host_are_capped_and_callers_queue_for_them():
    server = RawServer([ok(b"%d" % i) for i in range(8)])

    async def run():
        async with server as url:
            client = Client(max_connections_per_host=2)
            results = await asyncio.gather(*(fetch(client, url) for _ in range(8)))
            client.close()
            return results

    results = asyncio.run(run())
    assert sorted(body for _, body in results) == sorted(b"%d" % i for i in range(8))
    assert server.connections == 2


def test_a_caller_that_waits_past_the_connect_deadline_is_told_the_host_is_busy():
    server = RawServer([None, ok(b"after")])  # the first request is never answered

    async def run():
        async with server as url:
            client = Client(max_connections_per_host=1)
            hung = asyncio.ensure_future(fetch(client, url, read_timeout=30))
            await asyncio.sleep(0.1)
            started = time.monotonic()
            with pytest.raises(UpstreamBusy):
                await fetch(client, url, connect_timeout=0.3)
            assert 0.25 < time.monotonic() - started < 2
            hung.cancel()  # its connection is dropped: the slot is free again
            with pytest.raises(asyncio.CancelledError):
                await hung
            assert await fetch(client, url, connect_timeout=2) == (200, b"after")
            client.close()

    asyncio.run(run())


@pytest.mark.parametrize(
    "answer",
    [
        ok(b"x" * 5000),
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        + b"".join(b"3e8\r\n%s\r\n" % (b"y" * 1000) for _ in range(5))
        + b"0\r\n\r\n",
    ],
    ids=["content-length", "chunked"],
)
def test_an_answer_larger_than_the_cap_is_refused(answer):
    async def run():
        async with RawServer([answer]) as url:
            client = Client(max_response_bytes=4000)
            with pytest.raises(UpstreamTooLarge):
                await fetch(client, url)
            client.close()

    asyncio.run(run())


BOMB = gzip.compress(b"\0" * 64 * 1024 * 1024, compresslevel=9)  # 64 MiB in about 64 KiB


@pytest.mark.parametrize("read", ["whole", "stream"])
def test_a_gzip_bomb_is_refused_without_being_inflated(read):
    answer = b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n%s" % (
        len(BOMB),
        BOMB,
    )

    async def run():
        async with RawServer([answer]) as url:
            client = Client(max_response_bytes=1024 * 1024)
            tracemalloc.start()
            with pytest.raises(UpstreamTooLarge):
                if read == "whole":
                    await fetch(client, url)
                else:
                    response = await client.request(
                        "POST", url, headers={}, body=b"", connect_timeout=2, read_timeout=5
                    )
                    try:
                        while await response.next_chunk() is not None:
                            pass
                    finally:
                        response.close()
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            client.close()
            return peak

    assert asyncio.run(run()) < 8 * 1024 * 1024


def test_a_corrupt_gzip_answer_is_a_broken_answer():
    answer = b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: 9\r\n\r\nnot gzip!"

    async def run():
        async with RawServer([answer]) as url:
            client = Client()
            with pytest.raises(UpstreamBroken):
                await fetch(client, url)
            client.close()

    asyncio.run(run())
