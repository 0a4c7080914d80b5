"""Where the gateway finds a key's facts: this process, then Redis, then the database; and
what revoking or deleting a key does to the copies (accounts/key_cache.py)."""

import asyncio
import logging

import pytest

from accounts import key_cache, keys
from accounts.services import api_key_create, api_key_revoke
from apigateway import auth
from credit import connections as gateway_redis
from credit import keys as credit_keys


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
    assert 0 < redis_client.ttl(credit_keys.api_key(digest)) <= key_cache.COPY_SECONDS


@pytest.mark.django_db(transaction=True)
def test_an_unknown_key_costs_no_redis_entry(redis_client, database_reads):
    """Random well-formed keys must not fill Redis: an unknown key is remembered by this
    process alone (and its address's failures are counted, see test_revocation.py)."""
    digest = keys.digest("nex-sk-" + "b" * 48)

    async def lookups():
        found = [await auth.lookup(digest), await auth.lookup(digest)]
        auth._local.clear()  # another process
        found.append(await auth.lookup(digest))
        return found

    assert asyncio.run(lookups()) == [None, None, None]
    assert database_reads == [digest, digest]
    assert redis_client.get(credit_keys.api_key(digest)) is None


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


@pytest.mark.django_db(transaction=True)
def test_a_header_seen_before_skips_the_hash_but_not_the_key_check(key, redis_client, monkeypatch):
    """The header -> digest memo saves the SHA-256 on a key's later calls; whether the key
    is still good is decided by the lookup every time (revoked: 401 at once)."""
    hashed = []
    real_digest = keys.digest
    monkeypatch.setattr(keys, "digest", lambda token: hashed.append(token) or real_digest(token))
    auth._digests.clear()
    header = f"Bearer {key.plaintext}"

    async def twice():
        return [await auth.authenticate(header), await auth.authenticate(header)]

    first, second = asyncio.run(twice())
    assert first == second and first.name == "lookup"
    assert hashed == [key.plaintext]
    api_key_revoke(api_key=key.api_key)
    auth._local.clear()
    with pytest.raises(auth.GatewayError) as refused:
        asyncio.run(auth.authenticate(header))
    assert refused.value.status == 401
    assert hashed == [key.plaintext]


def test_malformed_headers_are_refused_and_not_remembered(monkeypatch):
    auth._digests.clear()
    for header in (None, "", "Basic abc", "Bearer sk-not-ours", "Bearer nex-sk-short"):
        with pytest.raises(auth.GatewayError) as refused:
            asyncio.run(auth.authenticate(header))
        assert refused.value.status == 401
    assert auth._digests == {}


def test_the_header_memo_is_bounded(monkeypatch):
    monkeypatch.setattr(auth, "_LOCAL_MAX", 3)
    auth._digests.clear()
    for n in range(7):
        auth.header_digest(f"Bearer nex-sk-{n:048d}")
    assert 0 < len(auth._digests) <= 3


@pytest.mark.django_db(transaction=True)
def test_a_lookup_racing_a_revocation_cannot_write_the_key_back(key, redis_client, monkeypatch):
    """The lookup reads the database, the key is revoked (its copy replaced by a
    tombstone), then the lookup writes what it read: the tombstone must stay."""
    digest = keys.digest(key.plaintext)
    real = auth.read_key

    def read_then_revoked(found_digest):
        info = real(found_digest)
        api_key_revoke(api_key=key.api_key)  # commits, and writes the tombstone
        return info

    monkeypatch.setattr(auth, "read_key", read_then_revoked)
    stale = asyncio.run(auth.lookup(digest))
    assert stale is not None  # this lookup read the key before it was revoked
    assert redis_client.get(credit_keys.api_key(digest)) == key_cache.TOMBSTONE
    monkeypatch.setattr(auth, "read_key", real)
    auth._local.clear()  # another process
    assert asyncio.run(auth.lookup(digest)) is None
