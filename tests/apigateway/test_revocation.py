"""A revoked or deleted key stops working on every replica within GATEWAY_KEY_CACHE_SECONDS,
even when a lookup races the revocation; unknown keys cost a database query, so an
address that keeps trying them is limited. Each replica here is its own gateway process."""

from __future__ import annotations

import asyncio
import secrets
import time

import httpx
from django.conf import settings

from accounts import keys
from accounts.models import ApiKey
from accounts.services import api_key_revoke
from apigateway import auth
from credit import keys as credit_keys
from tests.apigateway.conftest import gateway


def models(url: str, key: str) -> int:
    response = httpx.get(f"{url}/v1/models", headers={"authorization": f"Bearer {key}"})
    return response.status_code


def refused_within(url: str, key: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if models(url, key) == 401:
            return True
        time.sleep(0.1)
    return False


def test_a_lookup_racing_a_revocation_leaves_the_key_refused_on_another_replica(
    tenant, fake_openai, monkeypatch, redis_client
):
    with gateway(fake_openai, workers=1) as (url, _):
        assert models(url, tenant.key) == 200  # the other replica knows the key
        digest = keys.digest(tenant.key)
        redis_client.delete(credit_keys.api_key(digest))  # its shared copy has expired
        row = ApiKey.objects.get(digest=digest)
        real = auth.read_key

        def read_then_revoked(found_digest):
            info = real(found_digest)
            api_key_revoke(api_key=row)  # commits, and replaces the shared copy
            return info

        monkeypatch.setattr(auth, "read_key", read_then_revoked)
        auth._local.clear()
        asyncio.run(auth.lookup(digest))  # this replica's lookup writes what it read
        assert refused_within(url, tenant.key, settings.GATEWAY_KEY_CACHE_SECONDS + 1)


def test_a_deleted_key_is_refused_on_every_replica_within_the_cache_time(tenant, fake_openai):
    with gateway(fake_openai, workers=1) as (url, _):
        assert models(url, tenant.key) == 200
        ApiKey.objects.filter(digest=keys.digest(tenant.key)).delete()  # as the admin does
        assert refused_within(url, tenant.key, settings.GATEWAY_KEY_CACHE_SECONDS + 1)


def test_an_address_trying_unknown_keys_is_limited_and_fills_no_cache(
    tenant, fake_openai, redis_client, settings
):
    settings.GATEWAY_AUTH_FAILURES_PER_MINUTE = 5
    with gateway(fake_openai, workers=1, GATEWAY_AUTH_FAILURES_PER_MINUTE="5") as (url, _):
        assert models(url, tenant.key) == 200  # a key in use is known to the caches
        statuses = [models(url, "nex-sk-" + secrets.token_hex(24)) for _ in range(8)]
        assert statuses == [401] * 5 + [429] * 3
        limited = httpx.get(
            f"{url}/v1/models", headers={"authorization": f"Bearer nex-sk-{'c' * 48}"}
        )
        assert limited.json()["error"]["type"] == "rate_limit_exceeded"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert models(url, tenant.key) == 200  # a key the caches know is not held back
    cached = list(redis_client.scan_iter(match=credit_keys.api_key("*")))
    assert len(cached) <= 1  # the good key's copy; none for the unknown ones


def scope(peer: str, forwarded: str | None = None) -> dict:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return {"client": (peer, 40000), "headers": headers}


def test_the_address_blamed_for_unknown_keys_is_the_clients_behind_a_trusted_proxy():
    from apigateway.asgi_io import client_address

    trusted = ["127.0.0.1", "10.0.0.2"]
    assert client_address(scope("203.0.113.9"), trusted) == "203.0.113.9"
    # An untrusted peer cannot name someone else to be blamed.
    assert client_address(scope("203.0.113.9", "198.51.100.1"), trusted) == "203.0.113.9"
    # Through two trusted proxies: the last address not itself a proxy.
    chain = "198.51.100.7, 203.0.113.9, 10.0.0.2"
    assert client_address(scope("127.0.0.1", chain), trusted) == "203.0.113.9"
    assert client_address(scope("127.0.0.1"), trusted) == "127.0.0.1"
    assert client_address(scope("192.0.2.1", "198.51.100.1"), ["*"]) == "198.51.100.1"
