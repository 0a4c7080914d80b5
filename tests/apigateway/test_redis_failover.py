"""A gateway whose Redis fails over, fills up or restarts: every call meanwhile is a 503
with Retry-After (never a 500), /readyz says so (it asks the hot path's own client to
write), and calls succeed again without a restart as soon as Redis can serve."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
import redis as redis_py

from tests.apigateway.conftest import Tenant, gateway
from tests.own_services import Forwarder, OwnRedis

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["type"] == "api_error"


def ready(url: str) -> httpx.Response:
    return httpx.get(f"{url}/readyz", timeout=10)


def until_served(tenant: Tenant, url: str, seconds: float) -> tuple[httpx.Response, float]:
    """Calls the gateway at `url` every 0.1 s until one is served (or `seconds` pass); every
    refusal meanwhile must be a 503 with Retry-After. The last answer, and how long it took."""
    started = time.monotonic()
    while True:
        answer = tenant.post("/chat/completions", CHAT, url=url)
        if answer.status_code == 200 or time.monotonic() - started > seconds:
            return answer, time.monotonic() - started
        assert_unavailable(answer)
        time.sleep(0.1)


def replicate(replica: OwnRedis, primary: OwnRedis) -> None:
    """`replica` follows `primary`, and has caught up."""
    client = redis_py.Redis(port=replica.port)
    client.replicaof("127.0.0.1", primary.port)
    deadline = time.monotonic() + 20
    while client.info("replication").get("master_link_status") != "up":
        assert time.monotonic() < deadline, "the replica did not sync"
        time.sleep(0.05)


@pytest.fixture
def two_redis() -> Iterator[tuple[OwnRedis, OwnRedis]]:
    first, second = OwnRedis(), OwnRedis()
    first.start()
    second.start()
    yield first, second
    first.stop()
    second.stop()


def test_a_failover_with_the_old_primary_still_up(tenant, fake_openai, two_redis):
    """The primary's address moves to the new primary (as a managed Redis's DNS name does)
    while the old one lives on as a read-only replica: the connection the gateway holds
    answers READONLY, and the gateway must reconnect rather than keep it."""
    old, new = two_redis
    endpoint = Forwarder(old.port)
    try:
        with gateway(fake_openai, workers=1, REDIS_URL=f"redis://127.0.0.1:{endpoint.port}/0") as (
            url,
            _,
        ):
            assert tenant.post("/chat/completions", CHAT, url=url).status_code == 200
            assert ready(url).status_code == 200
            replicate(new, old)
            redis_py.Redis(port=new.port).replicaof("NO", "ONE")
            replicate(old, new)  # the old primary now refuses writes
            assert_unavailable(tenant.post("/chat/completions", CHAT, url=url))
            refused = ready(url)
            assert refused.status_code == 503, refused.text
            assert refused.json()["checks"]["redis"] == "unreachable"

            endpoint.target = new.port
            served, seconds = until_served(tenant, url, 5)
            assert served.status_code == 200, served.text
            assert seconds < 3
            assert ready(url).status_code == 200
    finally:
        endpoint.close()


def test_a_restarting_redis_is_a_503_until_it_serves_again(tenant, fake_openai):
    """Connection loss, then LOADING while the new process reads its data: 503s, then
    calls succeed without a restart of the gateway."""
    redis = OwnRedis()
    redis.start()
    try:
        with gateway(fake_openai, workers=1, REDIS_URL=redis.url) as (url, _):
            assert tenant.post("/chat/completions", CHAT, url=url).status_code == 200
            redis.kill()
            assert_unavailable(tenant.post("/chat/completions", CHAT, url=url))
            assert ready(url).status_code == 503
            redis.start()
            served, _ = until_served(tenant, url, 5)
            assert served.status_code == 200, served.text
            assert ready(url).status_code == 200
    finally:
        redis.stop()


def test_a_full_redis_is_a_503_and_takes_the_gateway_out_of_rotation(tenant, fake_openai):
    redis = OwnRedis()
    redis.start()
    try:
        with gateway(fake_openai, workers=1, REDIS_URL=redis.url) as (url, _):
            assert ready(url).status_code == 200
            redis_py.Redis(port=redis.port).config_set("maxmemory", 1)  # full: noeviction
            assert_unavailable(tenant.post("/chat/completions", CHAT, url=url))
            assert fake_openai.requests == []
            refused = ready(url)
            assert refused.status_code == 503, refused.text
            assert refused.json()["checks"]["redis"] == "unreachable"

            redis_py.Redis(port=redis.port).config_set("maxmemory", 0)
            served, _ = until_served(tenant, url, 5)
            assert served.status_code == 200, served.text
            assert ready(url).status_code == 200
    finally:
        redis.stop()


def test_a_redis_that_cannot_persist_is_a_503_not_a_500(tenant, fake_openai, tmp_path):
    """A full disk: Redis refuses writes with MISCONF (stop-writes-on-bgsave-error), which
    is no NOT_READY reply the client knew of."""
    redis = OwnRedis("--enable-protected-configs", "yes")
    redis.start()
    admin = redis_py.Redis(port=redis.port)
    try:
        with gateway(fake_openai, workers=1, REDIS_URL=redis.url) as (url, _):
            gone = tmp_path / "gone"
            gone.mkdir()
            admin.config_set("save", "3600 1")
            admin.config_set("dir", str(gone))
            gone.rmdir()
            admin.bgsave()
            deadline = time.monotonic() + 10
            while admin.info("persistence")["rdb_last_bgsave_status"] != "err":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert_unavailable(tenant.post("/chat/completions", CHAT, url=url))
            assert fake_openai.requests == []
            assert ready(url).status_code == 503
    finally:
        admin.config_set("dir", str(redis.dir))
        admin.config_set("save", "")  # (no snapshot to write on the way out)
        redis.stop()


def test_readyz_writes_through_the_serving_loops_own_client(tenant, redis_client):
    """/readyz runs on the loop that serves the calls and writes through its client: no
    client of its own that could see another Redis state than the calls do."""
    from credit import connections, keys

    assert tenant.post("/chat/completions", CHAT).status_code == 200
    clients = dict(connections._fast)
    assert ready(tenant.url).status_code == 200
    assert connections._fast == clients
    assert redis_client.keys(keys.readiness("*"))


def test_any_redis_error_on_a_call_is_a_503_not_a_500(tenant, fake_openai, redis_client):
    """An error reply no rule expects (here a money key of the wrong type) is still
    Redis's failure, not the call's: 503 with Retry-After, nothing forwarded."""
    from credit import keys

    name = keys.organization_credit(tenant.organization.pk)
    redis_client.delete(name)
    redis_client.set(name, "not a hash")
    try:
        assert_unavailable(tenant.post("/chat/completions", CHAT))
        assert fake_openai.requests == []
    finally:
        redis_client.delete(name)
