"""The live feed end to end in one process: a logged-in browser's WebSocket (through the
real ASGI entry point, origin check and session auth), usage.live.publish() on Redis
pub/sub, and the message arriving — never another organization's."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.test import Client

from nexeon.asgi import application
from tests.usage.conftest import make_record
from tests.usage.ws import WebsocketClient
from usage.live import publish
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


@database_sync_to_async
def publish_fresh(*request_ids: str) -> None:
    # Fresh from the database, as the pipeline has them: publish() looks the keys up itself.
    publish(list(UsageRecord.objects.filter(request_id__in=request_ids)))


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


def test_refused_without_a_session_from_another_site_and_without_redis(
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
        settings.REDIS_URL = ""
        assert await socket("/ws/usage/", ORIGIN, cookie).connect() == (False, 4503)

    asyncio.run(scenario())


def test_publish_is_a_no_op_without_redis(organization, prod_key, settings):
    settings.REDIS_URL = ""
    publish([make_record(organization, prod_key)])  # no connection attempted, no error
