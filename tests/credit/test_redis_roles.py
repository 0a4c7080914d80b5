"""The money state has a Redis database of its own, which never evicts: the Django cache
and the Celery broker live elsewhere, and the processes that use money refuse a Redis that
could delete it."""

from __future__ import annotations

import logging
import subprocess
import sys
import time

import pytest
import redis as redis_py
from django.conf import settings
from django.core.cache import cache

from credit import checks, keys
from credit.records import Charge, LedgerFigures
from credit.redis_store import RedisStore
from nexeon.env import redis_neighbour
from tests.credit.test_rules import Payer, run
from tests.own_services import OwnRedis
from tests.support import PROJECT_DIR, manage_env, start_nexeon, test_database_url


def test_clearing_the_django_cache_leaves_money_alone(redis_client):
    """Sharing the money state's database, one cache.clear() of the Django cache would delete
    unbilled usage and holds."""
    store = RedisStore()
    run(store.load_balance(9, LedgerFigures(credits=10_000, credits_seq=1, usage=0)))
    reserved = run(
        store.reserve(Payer(), hold_id="r1", amount=3_000, tokens=0, deadline=time.time() + 60)
    )
    store.settle_blocking(reserved.hold, Charge("r1", 3_000, 1_000, b'{"request_id": "r1"}'))
    held = run(
        store.reserve(Payer(), hold_id="r2", amount=2_000, tokens=0, deadline=time.time() + 60)
    )
    cache.set("some-page", "cached")
    cache.clear()
    assert cache.get("some-page") is None
    state = store.credit_state(9)
    assert (state.available, state.held, state.unbooked) == (7_000, 2_000, 1_000)
    shard = keys.shard_of(9)
    assert redis_client.zscore(keys.holds(shard), held.hold.name) is not None
    assert redis_client.xlen(keys.usage_stream(shard)) == 1


def test_the_roles_default_to_the_next_databases():
    assert settings.CACHE_REDIS_URL != settings.REDIS_URL != settings.CELERY_BROKER_URL
    assert redis_neighbour("X", "redis://h:6379/0", 1) == "redis://h:6379/1"
    assert redis_neighbour("X", "rediss://u:p@h:6380/4?ssl_cert_reqs=required", 2) == (
        "rediss://u:p@h:6380/6?ssl_cert_reqs=required"
    )
    assert redis_neighbour("X", "redis://h", 1) == "redis://h/1"
    assert redis_neighbour("X", "unix:///run/redis.sock?db=3", 1) == "unix:///run/redis.sock?db=4"


def test_no_room_for_the_roles_stops_the_process():
    checked = subprocess.run(
        [sys.executable, "-c", "import django, os; django.setup()"],
        cwd=PROJECT_DIR,
        env=manage_env(
            DJANGO_SETTINGS_MODULE="nexeon.settings",
            REDIS_URL="redis://127.0.0.1:6379/15",
            CACHE_REDIS_URL=None,
        ),
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 2
    assert "CACHE_REDIS_URL is not set" in checked.stderr


@pytest.fixture
def evicting_redis():
    redis = OwnRedis()
    redis.start()
    redis_py.Redis.from_url(redis.url).config_set("maxmemory-policy", "allkeys-lru")
    yield redis
    redis.stop()


def test_a_redis_that_evicts_is_refused_or_warned_about(evicting_redis, settings, caplog):
    settings.REDIS_URL = evicting_redis.url
    with pytest.raises(checks.UnsafeRedis, match="allkeys-lru"):
        checks.check_eviction_policy()
    settings.REDIS_EVICTION_CHECK = "warn"
    with caplog.at_level(logging.ERROR):
        checks.check_eviction_policy()
    assert "must be 'noeviction'" in caplog.text


def test_a_gateway_and_a_worker_refuse_to_start_on_a_redis_that_evicts(evicting_redis):
    environment = manage_env(DATABASE_URL=test_database_url(), REDIS_URL=evicting_redis.url)
    with pytest.raises(RuntimeError, match="exited"):
        start_nexeon(environment)
    worker = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "nexeon", "worker", "--pool", "solo"],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode != 0
    assert "noeviction" in worker.stdout + worker.stderr


def test_the_shared_test_redis_is_safe():
    assert checks.eviction_policy() == "noeviction"
