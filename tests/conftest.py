"""Test-suite ground rules: real PostgreSQL and Redis, never a quiet fallback to SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import psycopg
import pytest
import redis
from django.conf import settings
from django.test import Client

from accounts.models import Membership, Organization, Role, User
from accounts.services import organization_create
from tests.own_services import OwnRedisCluster
from tests.support import PROJECT_DIR, manage_env, test_database_url


def pytest_sessionstart(session: pytest.Session) -> None:
    # Short admission leases (credit/leases.py): every test exercises them, and each
    # lease is given back well within the settle checks' patience.
    os.environ.setdefault("GATEWAY_LEASE_SECONDS", "0.3")
    settings.GATEWAY_LEASE_SECONDS = float(os.environ["GATEWAY_LEASE_SECONDS"])
    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql":
        pytest.exit(
            "the suite runs on PostgreSQL: set DATABASE_URL=postgres://... (make test does)",
            returncode=2,
        )
    try:
        psycopg.connect(
            host=database["HOST"] or "127.0.0.1",
            port=database["PORT"] or 5432,
            user=database["USER"],
            password=database["PASSWORD"] or None,
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0]
        where = f"{database['HOST']}:{database['PORT']}"
        pytest.exit(f"PostgreSQL at {where} is unreachable: {reason}", returncode=2)
    if not settings.REDIS_URL:
        pytest.exit("the suite needs Redis: set REDIS_URL=redis://... (make test does)", 2)
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.exit(f"Redis at {settings.REDIS_URL} is unreachable: {exc}", returncode=2)


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """The test Redis database (the money state's), emptied before and after the test with
    the Django cache's and the Celery broker's (each role has its own database)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    _flush_redis_roles(client)
    yield client
    _flush_redis_roles(client)
    client.close()


def _flush_redis_roles(client: redis.Redis) -> None:
    client.flushdb()
    for url in (settings.CACHE_REDIS_URL, settings.CELERY_BROKER_URL):
        with redis.Redis.from_url(url) as other:
            other.flushdb()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[OwnRedisCluster]:
    """A 3-master Redis Cluster on loopback for the session (started on first use)."""
    cluster = OwnRedisCluster(masters=3)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def money_redis(request, redis_client, settings) -> Iterator[redis.Redis]:
    """The money state's Redis, emptied before and after: the test Redis, or with
    `@pytest.mark.parametrize("money_redis", ["redis", "cluster"], indirect=True)` also the
    3-master cluster (REDIS_URL pointed at it for the test; the cache and the broker stay
    on the standalone Redis). A client of it (cluster-aware) is yielded."""
    if getattr(request, "param", "redis") == "redis":
        yield redis_client
        return
    cluster: OwnRedisCluster = request.getfixturevalue("redis_cluster")
    cluster.flush()
    settings.REDIS_URL = cluster.url
    client = redis.RedisCluster.from_url(cluster.url)
    yield client  # type: ignore[misc]
    client.close()
    cluster.flush()


# --- personas: an owner, a member of the same organization, an outsider ------------------


@pytest.fixture
def owner(db) -> User:
    return User.objects.create_user(email="owner@example.com", password="correct horse 1")


@pytest.fixture
def organization(owner: User) -> Organization:
    return organization_create(name="Acme", owner=owner)


@pytest.fixture
def member(organization: Organization) -> User:
    """A plain member of the owner's organization (role MEMBER)."""
    user = User.objects.create_user(email="member@example.com", password="correct horse 3")
    Membership.objects.create(organization=organization, user=user, role=Role.MEMBER)
    return user


@pytest.fixture
def outsider(db) -> User:
    return User.objects.create_user(email="outsider@example.com", password="correct horse 2")


@pytest.fixture
def signed_in(db) -> Callable[[User], Client]:
    """`signed_in(user)`: a browser of its own (a fresh test Client) with `user` signed in;
    two calls are two sessions, as two devices would have."""

    def sign_in(user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return sign_in


@pytest.fixture
def dashboard(signed_in, owner: User) -> Client:
    """The owner's browser, signed in to the dashboard."""
    return signed_in(owner)


@pytest.fixture
def celery_worker(transactional_db, redis_client):
    """A real Celery worker process on the test database and Redis."""
    yield from _celery_worker()


@pytest.fixture
def celery_worker_with_beat(transactional_db, redis_client, tmp_path):
    """A real worker that also runs beat's schedule (the usage drain every second)."""
    yield from _celery_worker("--beat", "--schedule", str(tmp_path / "beat-schedule"))


def _celery_worker(*extra: str):
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "nexeon", "worker", "--pool", "solo"),
            *("--loglevel", "INFO", "--without-heartbeat", "--without-gossip", "--without-mingle"),
            *extra,
        ],
        cwd=PROJECT_DIR,
        env=manage_env(DATABASE_URL=test_database_url()),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # Tests time what the worker does, not how long it takes to boot on a busy machine:
    # wait for its "ready" line, then keep draining its output so the pipe never fills.
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for line in worker.stdout:
            lines.append(line)
            if " ready." in line:
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    ready.wait(timeout=60)
    yield worker
    worker.terminate()
    worker.wait(timeout=20)
    reader.join(timeout=5)
    print("".join(lines))


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    """Pages render without `collectstatic` (production's manifest storage needs it)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.STATIC_ROOT = PROJECT_DIR / "static"  # exists in a fresh clone; quiets ServeStatic
