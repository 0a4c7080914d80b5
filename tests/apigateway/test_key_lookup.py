"""Where the gateway finds a key's facts: this process, then Redis, then the database."""

import asyncio
import logging

import pytest

from accounts import keys
from accounts.services import api_key_create
from apigateway import auth
from apigateway import redis as gateway_redis


@pytest.fixture
def key(organization, owner):
    auth._local.clear()
    yield api_key_create(organization=organization, name="lookup", created_by=owner)
    auth._local.clear()


@pytest.fixture
def database_reads(monkeypatch):
    reads = []
    real = auth.read_key

    def read_key(digest):
        reads.append(digest)
        return real(digest)

    monkeypatch.setattr(auth, "read_key", read_key)
    return reads


@pytest.mark.django_db(transaction=True)
def test_the_database_is_read_once_then_redis_serves_every_process(
    key, redis_client, database_reads
):
    digest = keys.digest(key.plaintext)

    async def lookups():
        first = await auth.lookup(digest)
        auth._local.clear()  # another process: nothing of its own yet
        second = await auth.lookup(digest)
        return first, second

    first, second = asyncio.run(lookups())
    assert first == second and first.name == "lookup"
    assert first.organization_id == key.api_key.organization_id
    assert database_reads == [digest]
    assert 0 < redis_client.ttl(auth.redis_key(digest)) <= auth.REDIS_TTL_SECONDS


@pytest.mark.django_db(transaction=True)
def test_an_unknown_key_is_remembered_as_unknown(redis_client, database_reads):
    digest = keys.digest("nex-sk-" + "b" * 48)

    async def lookups():
        found = [await auth.lookup(digest)]
        auth._local.clear()
        found.append(await auth.lookup(digest))
        return found

    assert asyncio.run(lookups()) == [None, None]
    assert database_reads == [digest]
    assert redis_client.get(auth.redis_key(digest)) == b"null"


@pytest.mark.django_db(transaction=True)
def test_redis_unreachable_means_the_database_answers(
    key, settings, monkeypatch, database_reads, caplog
):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    monkeypatch.setattr(gateway_redis, "_fast", {})
    caplog.set_level(logging.WARNING, logger="apigateway.auth")
    info = asyncio.run(auth.lookup(keys.digest(key.plaintext)))
    assert info is not None and info.name == "lookup"
    assert len(database_reads) == 1
    assert "Redis unreachable, reading the database" in caplog.text
