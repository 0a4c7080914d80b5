"""A deployment whose Redis is a Redis Cluster (ElastiCache Serverless, Memorystore Cluster,
Upstash...): the money state and the Django cache on a 3-master cluster the tests start on
loopback, the Celery broker on RabbitMQ (Celery's Redis transport cannot use a cluster)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import orjson
import pytest
import redis
from django.test import Client

from accounts.models import User
from billing.selectors import ledger_figures
from billing.services import credits_grant
from credit.records import Charge, LedgerFigures
from credit.stores import current as credit_store
from tests.credit.test_rules import Payer, run
from tests.own_services import OwnRedisCluster
from tests.support import PROJECT_DIR, manage_env, run_manage, test_database_url
from usage.models import UsageRecord

ON_CLUSTER = pytest.mark.parametrize("money_redis", ["cluster"], indirect=True)
RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"


@pytest.mark.django_db(transaction=True)
@ON_CLUSTER
def test_dashboard_login_with_the_cache_on_the_cluster(money_redis, redis_cluster, owner):
    """The Django cache (allauth's login throttle) must speak the cluster protocol, or every
    login is a 500 (MovedError)."""
    code = (
        "from django.test import Client; c = Client(HTTP_HOST='localhost'); "
        "bad = c.post('/accounts/login/', {'login': 'owner@example.com', 'password': 'no'}); "
        "good = c.post('/accounts/login/', "
        "{'login': 'owner@example.com', 'password': 'correct horse 1'}); "
        "print(bad.status_code, good.status_code, c.get('/keys/').status_code)"
    )
    environment = manage_env(
        DATABASE_URL=test_database_url(),
        REDIS_URL=redis_cluster.url,
        CACHE_REDIS_URL=redis_cluster.url,
        CELERY_BROKER_URL=RABBITMQ,
        ACCOUNT_EMAIL_VERIFICATION="none",
        DEBUG="1",  # (static files without collectstatic)
    )
    result = run_manage("shell", "--no-imports", "-c", code, env=environment)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["200", "302", "200"]


@ON_CLUSTER
def test_the_cache_on_the_money_cluster_clears_only_its_own_keys(money_redis, settings):
    """A cluster has one database: the cache's clear() must not be FLUSHDB there."""
    from django.core.cache import caches

    settings.CACHES = {
        "default": {
            "BACKEND": "nexeon.redis_cache.RedisCache",
            "LOCATION": money_redis_url(),
            "KEY_PREFIX": "nexeon-cache",
        }
    }
    cache = caches["default"]
    run(credit_store().load_balance(7, LedgerFigures(100, 1, 0)))
    cache.set_many({f"page-{n}": n for n in range(20)}, 60)  # keys on every master
    assert cache.get_many([f"page-{n}" for n in range(20)]) == {f"page-{n}": n for n in range(20)}
    cache.clear()
    assert cache.get("page-3") is None
    assert credit_store().credit_state(7).available == 100


@pytest.mark.django_db(transaction=True)
@ON_CLUSTER
def test_create_api_key_on_the_cluster_grants_once_and_prints_the_key(money_redis):
    """Syncing a committed grant to the cluster can raise MovedError: the key must still be
    printed, and the operator's retry must not grant the credits a second time."""
    for attempt in range(2):  # the second run: the balance is in Redis, the sync writes it
        out = subprocess.run(
            [sys.executable, "manage.py", "create_api_key", "ops@example.com", "--credits", "3"],
            cwd=PROJECT_DIR,
            env=manage_env(DATABASE_URL=test_database_url(), REDIS_URL=money_redis_url()),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        assert out.stdout.strip().splitlines()[-1].startswith("nex-sk-")
        organization = User.objects.get(email="ops@example.com").memberships.get().organization
        assert ledger_figures(organization.pk).credits == 3 * 10**9 * (attempt + 1)
        if attempt == 0:  # the gateway loads the balance on its first call
            run(credit_store().load_balance(organization.pk, ledger_figures(organization.pk)))
    assert credit_store().credit_state(organization.pk).available == 6 * 10**9


def money_redis_url() -> str:
    from django.conf import settings

    return settings.REDIS_URL


@pytest.mark.django_db
@ON_CLUSTER
def test_readyz_is_200_on_a_serving_cluster(money_redis):
    response = Client().get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"]["redis"] == "ok"


@pytest.mark.django_db
def test_readyz_is_503_when_a_master_of_the_cluster_is_down(settings):
    """With a master down, a third of the organizations' money is unreachable: pinging only
    the node REDIS_URL names would say 200."""
    cluster = OwnRedisCluster(masters=3)
    cluster.start()
    try:
        settings.REDIS_URL = cluster.url
        assert Client().get("/readyz").status_code == 200
        cluster.kill(cluster.ports[2])
        response = Client().get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["redis"] == "unreachable"
    finally:
        cluster.stop()


def worker(*extra: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "nexeon", "worker", "--pool", "solo"),
            *("--loglevel", "INFO", "--without-heartbeat", "--without-gossip", "--without-mingle"),
            *extra,
        ],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.django_db
def test_a_worker_refuses_a_broker_on_a_cluster(redis_cluster):
    """Celery's Redis transport has no cluster support: with CELERY_BROKER_URL on a cluster
    the worker must refuse to start in words an operator can act on, not with kombu's own
    error."""
    process = worker(
        env=manage_env(
            DATABASE_URL=test_database_url(),
            REDIS_URL=redis_cluster.url,
            CELERY_BROKER_URL=redis_cluster.url,
        )
    )
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "CELERY_BROKER_URL" in output and "Redis Cluster" in output, output[-3000:]


@pytest.mark.django_db(transaction=True)
@ON_CLUSTER
def test_a_worker_on_rabbitmq_drains_usage_from_the_cluster(money_redis, organization):
    """The drain task, sent through RabbitMQ, books usage queued on the cluster, each call
    once."""
    store = credit_store()
    payer = Payer(key_id=0, organization_id=organization.pk)
    credits_grant(organization=organization, amount_nanos=10**9, reference="grant:rabbit")
    run(store.load_balance(organization.pk, ledger_figures(organization.pk)))
    request_ids = []
    for n in range(40):
        request_id = f"rabbit-{n}"
        reserved = run(
            store.reserve(payer, hold_id=request_id, amount=10, tokens=0, deadline=time.time() + 60)
        )
        event = orjson.dumps(
            {"request_id": request_id, "organization_id": payer.organization_id, "at": time.time()}
        )
        store.settle_blocking(reserved.hold, Charge(request_id, 10, 7, event))
        request_ids.append(request_id)
    queue = f"nexeon-test-{uuid.uuid4().hex[:8]}"
    process = worker(
        "--queues",
        queue,
        env=manage_env(
            DATABASE_URL=test_database_url(),
            REDIS_URL=money_redis_url(),
            CELERY_BROKER_URL=RABBITMQ,
        ),
    )
    try:
        from nexeon.celery import app

        with app.connection_for_write(RABBITMQ) as connection:
            app.send_task("usage.drain_events", queue=queue, connection=connection)
        deadline = time.monotonic() + 60
        while UsageRecord.objects.count() < len(request_ids):
            assert process.poll() is None, process.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "not drained within 60 s"
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == sorted(request_ids)
    state = store.credit_state(organization.pk)
    assert (state.held, state.unbooked) == (0, 0)


@ON_CLUSTER
def test_a_cluster_with_one_evicting_master_is_refused(money_redis, redis_cluster):
    """Every master holds money: each one's maxmemory-policy is checked, not one node's."""
    from credit import checks

    evicting = redis.Redis(port=redis_cluster.ports[2])
    evicting.config_set("maxmemory-policy", "allkeys-lru")
    try:
        with pytest.raises(checks.UnsafeRedis):
            checks.check_eviction_policy()
    finally:
        evicting.config_set("maxmemory-policy", "noeviction")
    checks.check_eviction_policy()
