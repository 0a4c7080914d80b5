"""The probes (/healthz, /readyz): liveness answers 200, is never cached and refuses
writes; readiness reports the database and Redis, and is a 503 naming the one that cannot
be reached. Through Django's test client, and a fresh `manage.py shell` for an
unreachable database."""

import pytest
from django.test import override_settings
from redis.asyncio.connection import AbstractConnection as AsyncConnection
from redis.connection import AbstractConnection

from credit import connections


@pytest.mark.django_db
def test_healthz_answers_without_touching_anything(client, django_assert_num_queries, monkeypatch):
    def touched(*args, **kwargs):
        raise AssertionError("/healthz reached for Redis")

    # Every Redis client the project makes, and any command redis-py sends (the cache's).
    for factory in ("pool", "client", "subscriber", "publisher", "fast", "sync"):
        monkeypatch.setattr(connections, factory, touched)
    for sender in (AbstractConnection, AsyncConnection):
        monkeypatch.setattr(sender, "send_packed_command", touched)
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_reports_database_and_redis(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


@pytest.mark.django_db
def test_readyz_is_503_when_redis_is_unreachable(client):
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "redis": "unreachable"},
    }


@pytest.mark.django_db
def test_probes_refuse_writes(client):
    assert client.post("/healthz").status_code == 405


def test_readyz_is_503_when_the_database_is_unreachable():
    from tests.support import manage_env, run_manage

    code = (
        'from django.test import Client; r = Client(HTTP_HOST="localhost").get("/readyz"); '
        "print(r.status_code, r.json()['checks']['database'])"
    )
    environment = manage_env(DEBUG="1", DATABASE_URL="postgres://postgres@127.0.0.1:1/nexeon")
    result = run_manage("shell", "--no-imports", "-c", code, env=environment)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["503", "unreachable"]
