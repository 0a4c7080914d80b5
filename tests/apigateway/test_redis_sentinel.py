"""REDIS_URL through Redis Sentinel (redis+sentinel://host:port/service/db): the gateway
asks the sentinels for the primary, and after a failover (the old primary still up, now
a replica) its calls succeed again without a restart; redis-py, the Django cache and
Celery's broker follow the same URL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis as redis_py

from credit import connections, keys
from tests.apigateway.conftest import gateway
from tests.apigateway.test_redis_failover import CHAT, ready, replicate, until_served
from tests.credit.test_redis_tls import BROKER_CONNECTS, CACHE_ROUND_TRIP, django_shell
from tests.own_services import OwnRedis, OwnSentinel

SERVICE = "nexeon"


@dataclass
class Watched:
    primary: OwnRedis
    replica: OwnRedis
    sentinel: OwnSentinel

    def url(self, db: int = 0) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel.port}/{SERVICE}/{db}"

    def primary_port(self) -> int:
        named = redis_py.Redis(port=self.sentinel.port).sentinel_get_master_addr_by_name(SERVICE)
        return int(named[1])

    def fail_over(self) -> None:
        """SENTINEL FAILOVER; back once the sentinel names the replica and the old primary,
        still up, has become its replica."""
        sentinel = redis_py.Redis(port=self.sentinel.port)
        deadline = time.monotonic() + 30
        while True:
            try:
                sentinel.execute_command("SENTINEL FAILOVER", SERVICE)
                break
            except redis_py.ResponseError as refused:  # its view of the replica is too old
                assert "NOGOODSLAVE" in str(refused) and time.monotonic() < deadline
                time.sleep(0.5)
        old = redis_py.Redis(port=self.primary.port)
        while self.primary_port() != self.replica.port or old.role()[0] != b"slave":
            assert time.monotonic() < deadline, "the sentinel did not fail over"
            time.sleep(0.1)


@pytest.fixture
def watched() -> Iterator[Watched]:
    primary, replica = OwnRedis(), OwnRedis()
    primary.start()
    replica.start()
    replicate(replica, primary)
    sentinel = OwnSentinel(SERVICE, primary.port)
    sentinel.start()
    made = Watched(primary, replica, sentinel)
    client = redis_py.Redis(port=sentinel.port)
    deadline = time.monotonic() + 30
    while not client.sentinel_slaves(SERVICE):  # (a failover needs a replica it knows)
        assert time.monotonic() < deadline, "the sentinel found no replica"
        time.sleep(0.1)
    yield made
    sentinel.stop()
    primary.stop()
    replica.stop()


def test_the_gateway_follows_a_sentinel_failover(tenant, fake_openai, watched):
    with gateway(fake_openai, workers=1, REDIS_URL=watched.url()) as (url, _):
        assert tenant.post("/chat/completions", CHAT, url=url).status_code == 200
        assert ready(url).status_code == 200
        watched.fail_over()
        served, _ = until_served(tenant, url, 15)
        assert served.status_code == 200, served.text
        assert ready(url).status_code == 200
    # The money state is on the new primary, written there after the failover.
    new_primary = redis_py.Redis(port=watched.replica.port)
    assert new_primary.exists(keys.organization_credit(tenant.organization.pk))


def test_redis_py_the_cache_and_the_broker_use_the_sentinels(watched, settings):
    settings.REDIS_URL = watched.url()
    client = connections.sync()
    client.set("sentinel-check", "before")
    watched.fail_over()
    deadline = time.monotonic() + 15
    while True:
        try:
            client.set("sentinel-check", "after")
            break
        except redis_py.RedisError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert redis_py.Redis(port=watched.replica.port).get("sentinel-check") == b"after"

    cached = django_shell(CACHE_ROUND_TRIP, CACHE_REDIS_URL=watched.url(1))
    assert cached.returncode == 0, cached.stderr
    assert cached.stdout.split()[-1] == "yes"
    brokered = django_shell(BROKER_CONNECTS, CELERY_BROKER_URL=watched.url(2))
    assert brokered.returncode == 0, brokered.stderr
