"""A gateway whose Redis cannot be reached: by default credit fails closed (503, nothing
forwarded); with GATEWAY_REDIS_FAILURE=local each process checks limits and credit itself
and books usage straight into the ledger. Keys are read from the database either way."""

from __future__ import annotations

import time

from accounts.models import ApiKey
from billing.models import EntryKind, LedgerEntry
from credit import connections as gateway_redis
from credit.resp import MAX_BACKOFF, FastRedis
from tests.apigateway.conftest import gateway
from tests.support import free_port
from usage.models import UsageRecord

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def without_redis(fake_openai, **extra: str):
    """The gateway in its own process, its REDIS_URL pointing where nothing listens."""
    return gateway(fake_openai, workers=1, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", **extra)


def test_by_default_credit_fails_closed(tenant, fake_openai):
    with without_redis(fake_openai) as (url, _):
        assert tenant.get("/models", url=url).status_code == 200  # the key still works
        refused = tenant.post("/chat/completions", CHAT, url=url)
    assert refused.status_code == 503
    assert refused.json()["error"]["type"] == "api_error"
    assert refused.headers["retry-after"] == "1"
    assert fake_openai.requests == []
    assert not LedgerEntry.objects.filter(kind=EntryKind.USAGE).exists()
    # The refusal is still on record, written straight to the database.
    assert UsageRecord.objects.get().status == 503


def test_local_mode_serves_and_books_usage_directly(tenant, fake_openai):
    ApiKey.objects.filter(organization=tenant.organization).update(rpm_limit=2)
    with without_redis(fake_openai, GATEWAY_REDIS_FAILURE="local") as (url, _):
        answers = [tenant.post("/chat/completions", CHAT, url=url) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]  # limits, in the process
    assert len(fake_openai.requests) == 2
    charged = LedgerEntry.objects.filter(kind=EntryKind.USAGE)
    assert sorted(e.reference for e in charged) == sorted(
        f"usage:{a.headers['x-request-id']}" for a in answers[:2]
    )
    assert sorted(r.status for r in UsageRecord.objects.all()) == [200, 200, 429]


def test_the_gateway_fails_closed_when_redis_is_down(tenant, fake_openai):
    """No credit check, no call: a 503 in OpenAI's format, and the provider never hears."""

    assert (
        tenant.client()
        .chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "first"}])
        .choices
    )
    fake_openai.requests.clear()
    # Each FastRedis the loops speak through: a ClusterRedis (REDIS_CLUSTER=auto before
    # the process asked) holds its nodes', on a single Redis the URL's own.
    servers = [
        server
        for client in gateway_redis.fast_clients().values()
        for server in ([client] if isinstance(client, FastRedis) else client._nodes.values())
    ]
    assert servers, "the gateway has made no call yet"
    saved = [server.port for server in servers]
    dead = free_port()
    for server in servers:
        server.port = dead
        if server._connection is not None:  # (another thread's loop: only mark it stale)
            server._connection.closed = True
    try:
        response = tenant.post(
            "/chat/completions",
            {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        error = response.json()["error"]
        assert error["type"] == "api_error" and "nothing was charged" in error["message"]
        assert fake_openai.requests == []
    finally:
        for server, port in zip(servers, saved, strict=True):
            server.port = port
    # ...and recovers without a restart: once the reconnect backoff the failed attempts
    # started has passed (at most MAX_BACKOFF), whenever the next call comes.
    deadline = time.monotonic() + MAX_BACKOFF + 1
    again = {"model": "gpt-4o", "messages": [{"role": "user", "content": "again"}]}
    while (response := tenant.post("/chat/completions", again)).status_code == 503:
        assert time.monotonic() < deadline, "still 503 after the backoff"
        time.sleep(0.05)
    assert response.status_code == 200 and response.json()["choices"]
