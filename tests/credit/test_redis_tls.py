"""Redis over TLS (rediss://), on every client: the hot path's FastRedis, redis-py (sync,
asyncio), the Django cache and Celery's broker. Certificates are verified against the
URL's `ssl_ca_certs` (the test's own CA, tests/fakes/tls.py; never added to the trust
store the providers use); without it a private server is refused;
`ssl_certfile`/`ssl_keyfile` present a client certificate to a server that requires one."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
import redis as redis_py

from credit import connections
from credit.resp import FastRedis, RedisUnavailable
from tests.fakes.tls import TestCA
from tests.own_services import OwnRedis
from tests.support import PROJECT_DIR, manage_env, test_database_url


@dataclass
class TlsRedis:
    port: int
    ca: Path  # the CA that signed the server's certificate
    cert: Path  # a client certificate (and its key) signed by the same CA
    key: Path

    def url(self, db: int = 0, **options: str) -> str:
        query = f"?{urlencode(options)}" if options else ""
        return f"rediss://127.0.0.1:{self.port}/{db}{query}"

    def trusted_url(self, db: int = 0, **options: str) -> str:
        return self.url(db, ssl_ca_certs=str(self.ca), **options)


def tls_redis(
    directory: Path, *, clients_need_certificates: bool, names: tuple[str, ...] = ("127.0.0.1",)
) -> Iterator[TlsRedis]:
    ca = TestCA(directory, server_names=names)
    redis = OwnRedis()
    redis.options = (
        *("--port", "0", "--tls-port", str(redis.port)),
        *("--tls-cert-file", str(ca.server_cert), "--tls-key-file", str(ca.server_key)),
        *("--tls-ca-cert-file", str(ca.ca_file)),
        *("--tls-auth-clients", "yes" if clients_need_certificates else "no"),
    )
    redis.start()
    try:
        yield TlsRedis(redis.port, ca.ca_file, ca.client_cert, ca.client_key)
    finally:
        redis.stop()


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> Iterator[TlsRedis]:
    yield from tls_redis(tmp_path_factory.mktemp("tls"), clients_need_certificates=False)


@pytest.fixture(scope="module")
def mutual_tls(tmp_path_factory) -> Iterator[TlsRedis]:
    yield from tls_redis(tmp_path_factory.mktemp("mtls"), clients_need_certificates=True)


@pytest.fixture(scope="module")
def misnamed_tls(tmp_path_factory) -> Iterator[TlsRedis]:
    """A certificate for another name than the address the clients connect to."""
    directory = tmp_path_factory.mktemp("misnamed")
    yield from tls_redis(directory, clients_need_certificates=False, names=("redis.internal",))


async def fast_round_trip(url: str) -> bytes:
    client = FastRedis(url)
    try:
        await client.call("SET", "tls-check", "yes")
        return await client.call("GET", "tls-check")
    finally:
        client.close()


def test_the_hot_path_verifies_the_server_with_the_urls_ca(tls):
    assert asyncio.run(fast_round_trip(tls.trusted_url())) == b"yes"


def test_the_hot_path_refuses_a_server_it_cannot_verify(tls):
    with pytest.raises(RedisUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        asyncio.run(fast_round_trip(tls.url()))
    # ...unless the URL turns verification off, explicitly.
    assert asyncio.run(fast_round_trip(tls.url(ssl_cert_reqs="none"))) == b"yes"


def test_the_hot_paths_ca_is_its_own(tls):
    """The URL's CA trusts the Redis server; the default trust store (the providers')
    does not learn it."""
    asyncio.run(fast_round_trip(tls.trusted_url()))
    default = ssl.create_default_context()
    assert not any("trustme" in str(cert.get("issuer", "")) for cert in default.get_ca_certs()), (
        "the private CA leaked into the default trust store"
    )


def test_the_hot_path_presents_a_client_certificate(mutual_tls):
    with pytest.raises(RedisUnavailable):
        asyncio.run(fast_round_trip(mutual_tls.trusted_url()))
    url = mutual_tls.trusted_url(ssl_certfile=str(mutual_tls.cert), ssl_keyfile=str(mutual_tls.key))
    assert asyncio.run(fast_round_trip(url)) == b"yes"


def test_the_hostname_is_checked_unless_the_url_says_not_to(misnamed_tls):
    with pytest.raises(RedisUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        asyncio.run(fast_round_trip(misnamed_tls.trusted_url()))
    unchecked = misnamed_tls.trusted_url(ssl_check_hostname="false")
    assert asyncio.run(fast_round_trip(unchecked)) == b"yes"
    with pytest.raises(redis_py.ConnectionError):
        redis_py.Redis(connection_pool=connections.pool(misnamed_tls.trusted_url())).ping()
    assert redis_py.Redis(connection_pool=connections.pool(unchecked)).ping()


def test_redis_py_clients_honour_the_urls_tls_options(tls, mutual_tls, settings):
    settings.REDIS_URL = tls.trusted_url()
    assert connections.sync().ping()

    async def async_ping() -> bool:
        connections._clients.clear()
        client = connections.client()
        try:
            return await client.ping()
        finally:
            await client.aclose()
            connections._clients.clear()

    assert asyncio.run(async_ping())
    with pytest.raises(redis_py.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        redis_py.Redis(connection_pool=connections.pool(tls.url())).ping()
    certified = mutual_tls.trusted_url(
        ssl_certfile=str(mutual_tls.cert), ssl_keyfile=str(mutual_tls.key)
    )
    assert redis_py.Redis(connection_pool=connections.pool(certified)).ping()


def django_shell(code: str, **environment: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", code],
        cwd=PROJECT_DIR,
        env=manage_env(DATABASE_URL=test_database_url(), **environment),
        capture_output=True,
        text=True,
        timeout=60,
    )


CACHE_ROUND_TRIP = (
    "from django.core.cache import cache; cache.set('tls', 'yes'); print(cache.get('tls'))"
)


def test_the_django_cache_honours_the_urls_tls_options(tls, mutual_tls):
    served = django_shell(CACHE_ROUND_TRIP, CACHE_REDIS_URL=tls.trusted_url(1))
    assert served.returncode == 0, served.stderr
    assert served.stdout.split()[-1] == "yes"
    refused = django_shell(CACHE_ROUND_TRIP, CACHE_REDIS_URL=tls.url(1))
    assert refused.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr
    certified = mutual_tls.trusted_url(
        1, ssl_certfile=str(mutual_tls.cert), ssl_keyfile=str(mutual_tls.key)
    )
    served = django_shell(CACHE_ROUND_TRIP, CACHE_REDIS_URL=certified)
    assert served.returncode == 0, served.stderr


BROKER_CONNECTS = (
    "from nexeon.celery import app\n"
    "with app.connection_for_write() as connection:\n"
    "    connection.ensure_connection(max_retries=1)\n"
    "    connection.default_channel.client.ping()\n"
    "print('connected')"
)


def test_celerys_broker_verifies_the_server_by_default(tls):
    refused = django_shell(BROKER_CONNECTS, CELERY_BROKER_URL=tls.url(2))
    assert refused.returncode != 0, refused.stdout
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr
    served = django_shell(BROKER_CONNECTS, CELERY_BROKER_URL=tls.trusted_url(2))
    assert served.returncode == 0, served.stderr


def test_a_worker_on_a_tls_broker_answers_a_ping(tls, mutual_tls, redis_client):
    broker = mutual_tls.trusted_url(
        2, ssl_certfile=str(mutual_tls.cert), ssl_keyfile=str(mutual_tls.key)
    )
    environment = manage_env(DATABASE_URL=test_database_url(), CELERY_BROKER_URL=broker)
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "nexeon", "worker", "--pool", "solo"),
            *("--without-heartbeat", "--without-gossip", "--without-mingle"),
        ],
        cwd=PROJECT_DIR,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(30):
            pinged = subprocess.run(
                [sys.executable, "-m", "celery", "-A", "nexeon", "inspect", "ping", "-t", "2"],
                cwd=PROJECT_DIR,
                env=environment,
                capture_output=True,
                text=True,
                timeout=60,
            )
            if pinged.returncode == 0:
                break
        assert pinged.returncode == 0, pinged.stdout + pinged.stderr
        assert "pong" in pinged.stdout
    finally:
        worker.terminate()
        worker.wait(timeout=20)
