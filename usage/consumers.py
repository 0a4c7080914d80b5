"""/ws/usage/: the organization's calls as they are recorded, for the usage page's Live list.

The browser's session says who it is (AuthMiddlewareStack) and which organization it
acts on (the dashboard's session key, or `?organization=<id>` from the page, which must be
one of the user's). The consumer subscribes to that organization's Redis channel
(usage/live.py) and forwards each message unchanged. Close codes (sent before the
handshake completes, so a refused socket never opens): 4401 not logged in, 4403 not a
member, 4503 live updates unavailable (no Redis, or Redis unreachable); 1011 after the
subscription is lost mid-way, which the page's script retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import parse_qs

import redis.asyncio as aioredis
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from accounts.current import SESSION_KEY
from accounts.models import Membership
from credit import connections
from usage.live import channel_name

logger = logging.getLogger(__name__)
NOT_LOGGED_IN, NOT_A_MEMBER, UNAVAILABLE = 4401, 4403, 4503
LOST = 1011  # not final: the browser tries again
SUBSCRIBE_TIMEOUT = 5.0


@database_sync_to_async
def organization_for(user: Any, session: Any, requested: str | None) -> int | None:
    """The organization the user's socket may follow, as the dashboard resolves it, or
    None when the user is not a member of the one asked for (or of any)."""
    memberships = Membership.objects.filter(user=user)
    if requested is not None:
        if not requested.isdigit():
            return None
        return (
            memberships.filter(organization_id=int(requested))
            .values_list("organization_id", flat=True)
            .first()
        )
    chosen = session.get(SESSION_KEY) if session is not None else None
    if chosen is not None and memberships.filter(organization_id=chosen).exists():
        return int(chosen)
    return (
        memberships.order_by("-organization__is_personal", "created_at")
        .values_list("organization_id", flat=True)
        .first()
    )


class UsageLiveConsumer(AsyncWebsocketConsumer):
    pubsub: Any = None
    forwarder: asyncio.Task | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=NOT_LOGGED_IN)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        requested = query.get("organization", [None])[0]
        organization_id = await organization_for(user, self.scope.get("session"), requested)
        if organization_id is None:
            await self.close(code=NOT_A_MEMBER)
            return
        if not connections.configured():
            await self.close(code=UNAVAILABLE)
            return
        try:
            await self._subscribe(channel_name(organization_id))
        except (aioredis.RedisError, TimeoutError, OSError):
            logger.warning("live feed: cannot subscribe", exc_info=True)
            await self._release()
            await self.close(code=UNAVAILABLE)
            return
        await self.accept()
        self.forwarder = asyncio.create_task(self._forward())

    async def _subscribe(self, channel: str) -> None:
        # A connection of this loop's pool (bounded) for as long as the socket is open.
        self.pubsub = connections.client().pubsub()
        await self.pubsub.subscribe(channel)
        # Wait for Redis's confirmation: a message published after accept() then reaches us.
        async with asyncio.timeout(SUBSCRIBE_TIMEOUT):
            while True:
                reply = await self.pubsub.get_message(timeout=SUBSCRIBE_TIMEOUT)
                if reply and reply["type"] == "subscribe":
                    return

    async def _forward(self) -> None:
        try:
            async for item in self.pubsub.listen():
                if item["type"] == "message":
                    await self.send(text_data=item["data"].decode())
        except aioredis.RedisError:
            logger.warning("live feed: Redis connection lost", exc_info=True)
        # The subscription ended: close, and the page's script reconnects (with backoff).
        await self.close(code=LOST)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The feed is one-way; anything the browser sends is ignored."""

    async def disconnect(self, code: int) -> None:
        await self._release()

    async def _release(self) -> None:
        if self.forwarder is not None:
            self.forwarder.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.forwarder
            self.forwarder = None
        if self.pubsub is not None:
            with contextlib.suppress(Exception):
                await self.pubsub.aclose()  # (its connection goes back to the pool)
            self.pubsub = None
