"""The live feed end to end in one process: a logged-in browser's WebSocket (through the
real ASGI entry point, origin check and session auth), usage.live.publish() on Redis
pub/sub, and the message arriving — never another organization's."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio.connection
import redis.connection
from channels.db import database_sync_to_async
from django.conf import settings
from django.test import Client

from credit import connections
from nexeon.asgi import application
from tests.support import free_port
from tests.usage.conftest import make_record
from tests.usage.ws import WebsocketClient
from usage import live_hub
from usage.live import publish, watched
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = (b"origin", b"http://localhost")


def session_cookie(user) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    value = client.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={value}".encode())


def socket(path: str, *headers: tuple[bytes, bytes]) -> WebsocketClient:
    return WebsocketClient(application, path, [(b"host", b"localhost"), *headers])


def publish_fresh_sync(*request_ids: str) -> None:
    # Fresh from the database, as the pipeline has them: publish() looks the keys up itself.
    publish(list(UsageRecord.objects.filter(request_id__in=request_ids)))


publish_fresh = database_sync_to_async(publish_fresh_sync)


@pytest.mark.parametrize("money_redis", ["redis", "cluster"], indirect=True)
def test_a_member_receives_their_organizations_calls_and_nothing_else(
    money_redis, owner, organization, prod_key, other_organization, other_key
):
    mine = make_record(organization, prod_key, cost_nanos=123_456_789, status=429)
    theirs = make_record(other_organization, other_key)
    cookie = session_cookie(owner)

    async def scenario() -> None:
        communicator = socket("/ws/usage/", ORIGIN, cookie)
        connected, _ = await communicator.connect()
        assert connected
        await publish_fresh(theirs.request_id, mine.request_id)
        message = json.loads(await communicator.receive_text())
        assert message == {
            "request_id": mine.request_id,
            "created_at": mine.created_at.isoformat(),
            "key_name": "prod",
            "key_prefix": prod_key.prefix,
            "model": "gpt-4o",
            "endpoint": "chat",
            "status": 429,
            "cost_usd": "0.123456789",
            "duration_ms": 480.0,
        }
        assert await communicator.receive_nothing(timeout=0.5)  # not the other tenant's call
        await communicator.disconnect()

    asyncio.run(scenario())


def test_the_organization_in_the_url_must_be_one_of_the_users(
    redis_client, owner, organization, outsider, other_organization, other_key
):
    cookie = session_cookie(outsider)
    theirs = make_record(other_organization, other_key)

    async def scenario() -> None:
        refused = socket(f"/ws/usage/?organization={organization.pk}", ORIGIN, cookie)
        assert await refused.connect() == (False, 4403)
        own = socket(f"/ws/usage/?organization={other_organization.pk}", ORIGIN, cookie)
        connected, _ = await own.connect()
        assert connected
        await publish_fresh(theirs.request_id)
        assert json.loads(await own.receive_text())["request_id"] == theirs.request_id
        await own.disconnect()

    asyncio.run(scenario())


def test_refused_without_a_session_from_another_site_and_without_reachable_redis(
    redis_client, owner, organization, settings
):
    cookie = session_cookie(owner)

    async def scenario() -> None:
        assert await socket("/ws/usage/", ORIGIN).connect() == (False, 4401)
        evil = (b"origin", b"https://evil.example")
        connected, _ = await socket("/ws/usage/", evil, cookie).connect()
        assert not connected
        connected, _ = await socket("/ws/elsewhere/", ORIGIN, cookie).connect()
        assert not connected
        settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens there
        assert await socket("/ws/usage/", ORIGIN, cookie).connect() == (False, 4503)
        assert live_hub.current().total == 0  # the refused socket holds no place

    asyncio.run(scenario())


def test_the_embedded_default_feeds_this_processs_sockets(
    owner, organization, prod_key, other_organization, other_key, settings
):
    """No Redis: the usage pipeline (here a thread, as the drain runs) hands its records to
    the sockets of its own process."""
    settings.REDIS_URL = ""
    mine = make_record(organization, prod_key)
    theirs = make_record(other_organization, other_key)
    cookie = session_cookie(owner)

    async def scenario() -> None:
        assert watched({organization.pk}) == set()
        communicator = socket("/ws/usage/", ORIGIN, cookie)
        assert await communicator.connect() == (True, None)
        assert watched({organization.pk, other_organization.pk}) == {organization.pk}
        await database_sync_to_async(publish_fresh_sync)(theirs.request_id, mine.request_id)
        assert json.loads(await communicator.receive_text())["request_id"] == mine.request_id
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()
        assert watched({organization.pk}) == set()

    asyncio.run(scenario())


def test_sockets_are_capped_per_organization_and_per_process(
    redis_client, owner, organization, member, settings
):
    settings.LIVE_MAX_SOCKETS_PER_USER = 5
    settings.LIVE_MAX_SOCKETS_PER_ORGANIZATION = 3
    owners, members = session_cookie(owner), session_cookie(member)

    async def scenario() -> None:
        opened = [socket("/ws/usage/", ORIGIN, owners) for _ in range(2)]
        opened.append(socket("/ws/usage/", ORIGIN, members))
        for communicator in opened:
            assert await communicator.connect() == (True, None)
        over = socket("/ws/usage/", ORIGIN, members)
        assert await over.connect() == (False, 4429)  # the organization's fourth
        await opened.pop().disconnect()
        settings.LIVE_MAX_SOCKETS_PER_PROCESS = 2
        assert await socket("/ws/usage/", ORIGIN, members).connect() == (False, 4429)
        settings.LIVE_MAX_SOCKETS_PER_PROCESS = 3
        again = socket("/ws/usage/", ORIGIN, members)
        assert await again.connect() == (True, None)
        assert live_hub.current().total == 3
        for communicator in (*opened, again):
            await communicator.disconnect()
        assert live_hub.current().total == 0

    asyncio.run(scenario())


def test_publish_without_redis_and_nobody_watching_does_nothing(
    organization, prod_key, settings, monkeypatch
):
    settings.REDIS_URL = ""
    record = make_record(organization, prod_key)

    def connecting(*args, **kwargs):
        raise AssertionError("publish() reached for Redis without REDIS_URL")

    # The client it would publish through, and any new connection by any client.
    monkeypatch.setattr(connections, "publisher", connecting)
    monkeypatch.setattr(redis.connection.AbstractConnection, "connect", connecting)
    monkeypatch.setattr(redis.asyncio.connection.AbstractConnection, "connect", connecting)
    assert live_hub.watched_here({organization.pk}) == set()
    publish([record])  # no error


def test_a_deactivated_user_or_a_changed_password_closes_the_socket(
    redis_client, owner, organization, member, settings
):
    settings.LIVE_RECHECK_SECONDS = 0.3
    owners, members = session_cookie(owner), session_cookie(member)

    async def scenario() -> None:
        deactivated = socket("/ws/usage/", ORIGIN, members)
        password_changed = socket("/ws/usage/", ORIGIN, owners)
        assert await deactivated.connect() == (True, None)
        assert await password_changed.connect() == (True, None)
        await database_sync_to_async(type(member).objects.filter(pk=member.pk).update)(
            is_active=False
        )

        def change_password() -> None:
            owner.set_password("another correct horse")
            owner.save()

        await database_sync_to_async(change_password)()
        assert await deactivated.receive_close() == 4401
        assert await password_changed.receive_close() == 4401

    asyncio.run(scenario())
