"""The live feed in a served process (uvicorn, as `make run` serves it) through a real
WebSocket client: a removed member or a signed-out session stops receiving and is closed
within the documented time, one Redis subscriber serves every socket of the process, the
per-user cap refuses the socket too many, and the feed resumes after Redis drops the
subscriber's connection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator

import pytest
import redis
import websockets
from django.conf import settings
from django.db import connection
from django.test import Client

from accounts.models import Membership
from accounts.services import membership_remove
from tests.support import manage_env, serving_nexeon, test_database_url
from tests.usage.conftest import make_record
from usage.live import publish
from usage.live_hub import CLIENT_NAME
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)
RECHECK = 3.0  # LIVE_RECHECK_SECONDS of the served process
EVENT_RECHECK = 1.0  # usage.consumers.EVENT_RECHECK_SECONDS
PER_USER = 3


@pytest.fixture
def served(redis_client) -> Iterator[tuple[str, int]]:
    """The served process's ws:// base URL and process id (uvicorn with one worker serves
    in its own process)."""
    env = manage_env(
        DATABASE_URL=test_database_url(),
        LIVE_RECHECK_SECONDS=str(RECHECK),
        LIVE_MAX_SOCKETS_PER_USER=str(PER_USER),
        ALLOWED_HOSTS="127.0.0.1,localhost",
    )
    with serving_nexeon(env) as (url, process):
        yield url.replace("http://", "ws://"), process.pid


def session_cookie(client: Client) -> str:
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def open_socket(base: str, client: Client, organization_id: int, cookie: str | None = None):
    """A socket with `client`'s session cookie (or `cookie`, one it had before)."""
    cookie = cookie or session_cookie(client)
    return websockets.connect(
        f"{base}/ws/usage/?organization={organization_id}",
        additional_headers={"Cookie": cookie},
        origin=base.replace("ws://", "http://"),  # type: ignore[arg-type]
        open_timeout=10,
    )


def publish_one(organization, key=None) -> str:
    record = make_record(organization, key)
    publish(list(UsageRecord.objects.filter(pk=record.pk)))
    return record.request_id


async def received(socket, within: float = 5.0) -> str:
    return json.loads(await asyncio.wait_for(socket.recv(), within))["request_id"]


async def closed_code(socket, within: float) -> tuple[int, float, list[str]]:
    """(close code, seconds it took, messages that arrived before it)."""
    started = time.monotonic()
    messages: list[str] = []
    with pytest.raises(websockets.ConnectionClosed):
        async with asyncio.timeout(within):
            while True:
                messages.append(await socket.recv())
    return socket.close_code, time.monotonic() - started, messages


def subscribers(client: redis.Redis, pid: int) -> list[dict]:
    """The Redis connections of the served process's live feed subscriber."""
    return [c for c in client.client_list() if c.get("name") == f"{CLIENT_NAME}-{pid}"]


def sync(function, *args):
    """Run blocking work (the ORM, redis-py) off the loop, closing the thread's connection."""

    def run():
        try:
            return function(*args)
        finally:
            connection.close()

    return asyncio.to_thread(run)


def test_a_removed_member_gets_nothing_more_and_is_closed(
    served, signed_in, owner, organization, member
):
    base, _ = served
    by = Membership.objects.get(user=owner)
    removed = Membership.objects.get(user=member)
    browser = signed_in(member)

    async def scenario() -> None:
        async with open_socket(base, browser, organization.pk) as socket:
            before = await sync(publish_one, organization)
            assert await received(socket) == before
            await sync(lambda: membership_remove(membership=removed, by=by))
            # Published once what the socket knows is older than the event re-check: the
            # message is not forwarded, the socket is closed 4403 at once (long before the
            # periodic check would have).
            await asyncio.sleep(EVENT_RECHECK + 0.2)
            await sync(publish_one, organization)
            code, took, messages = await closed_code(socket, RECHECK)
            assert (code, messages) == (4403, [])
            assert took < RECHECK - 1

    asyncio.run(scenario())


def test_a_signed_out_session_is_closed_within_the_recheck_interval(
    served, signed_in, owner, organization
):
    base, _ = served
    browser = signed_in(owner)
    other_device = signed_in(owner)
    old_cookie = session_cookie(browser)

    async def scenario() -> None:
        async with (
            open_socket(base, browser, organization.pk) as mine,
            open_socket(base, other_device, organization.pk) as kept,
        ):
            first = await sync(publish_one, organization)
            assert await received(mine) == first and await received(kept) == first
            await sync(browser.logout)
            code, took, messages = await closed_code(mine, RECHECK + 2)
            assert (code, messages) == (4401, [])
            assert took <= RECHECK + 1.5
            # The same user's other session is still signed in and still fed.
            later = await sync(publish_one, organization)
            assert await received(kept) == later
        async with open_socket(base, browser, organization.pk, old_cookie) as refused:
            code, _, _ = await closed_code(refused, 5)
            assert code == 4401  # the signed-out cookie opens nothing

    asyncio.run(scenario())


def test_one_subscriber_per_process_a_cap_per_user_and_resuming_after_redis_drops_it(
    served, redis_client, signed_in, owner, organization, outsider, other_organization
):
    base, pid = served
    owner_client, outsider_client = signed_in(owner), signed_in(outsider)
    assert subscribers(redis_client, pid) == []  # lazily: nobody is watching yet

    async def scenario() -> None:
        async with (
            open_socket(base, owner_client, organization.pk) as a,
            open_socket(base, owner_client, organization.pk) as b,
            open_socket(base, owner_client, organization.pk) as c,
            open_socket(base, outsider_client, other_organization.pk) as d,
        ):
            found = await sync(subscribers, redis_client, pid)
            assert len(found) == 1, found  # four sockets, two organizations, one connection
            channels = await sync(
                redis_client.pubsub_numsub,
                f"nexeon:live:{organization.pk}",
                f"nexeon:live:{other_organization.pk}",
            )
            assert [count for _, count in channels] == [1, 1]
            # The user's fourth socket is over LIVE_MAX_SOCKETS_PER_USER: refused 4429.
            async with open_socket(base, owner_client, organization.pk) as over:
                code, _, _ = await closed_code(over, 5)
                assert code == 4429
            mine = await sync(publish_one, organization)
            assert [await received(s) for s in (a, b, c)] == [mine] * 3
            theirs = await sync(publish_one, other_organization)
            assert await received(d) == theirs
            with pytest.raises(TimeoutError):
                await received(a, within=0.3)  # not the other organization's

            # Redis drops the subscriber's connection: it comes back, sockets stay open.
            killed = found[0]["id"]
            await sync(lambda: redis_client.client_kill_filter(_id=killed))
            deadline = time.monotonic() + 15
            published: set[str] = set()
            while True:  # what is published while it reconnects is lost, as pub/sub loses it
                published.add(await sync(publish_one, organization))
                with contextlib.suppress(TimeoutError):
                    first = await received(a, within=0.5)
                    break
                assert time.monotonic() < deadline, "the feed did not resume"
            assert first in published
            assert [await received(s) for s in (b, c)] == [first] * 2
            again = await sync(subscribers, redis_client, pid)
            assert len(again) == 1 and again[0]["id"] != killed
        # Once the user's sockets are closed, the cap admits a new one.
        async with open_socket(base, owner_client, organization.pk) as fresh:
            last = await sync(publish_one, organization)
            assert await received(fresh) == last

    asyncio.run(scenario())
