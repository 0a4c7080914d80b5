"""/ws/usage/: the organization's calls as they are recorded, for the usage page's Live list.

The browser's session says who it is (AuthMiddlewareStack) and which organization it
acts on (the dashboard's session key, or `?organization=<id>` from the page, which must be
one of the user's). The socket joins its process's hub (usage/live_hub.py: one Redis
subscriber per process, or in-process delivery without Redis) and forwards each message
unchanged.

Access is checked again while the socket is open: every LIVE_RECHECK_SECONDS, and before
any message is forwarded once what the socket knows is a second old (a check serves all
of a user's sockets on the process for that second). A session that was signed out,
expired or invalidated by a password change, a deactivated user, or a membership removed
closes the socket: it forwards nothing published more than a second after the change, and
closes within LIVE_RECHECK_SECONDS even when nothing is published.

Close codes (a socket refused at once is accepted and closed: a close before the handshake
reaches a browser as 1006, without its code): 4401 not logged in (or signed out since),
4403 not a member (or removed since), 4429 too many live connections (a cap of
usage/live_hub.py), 4503 live updates unavailable (Redis unreachable), 1011 an unexpected
error. The page's script retries all but 4401 and 4403.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from importlib import import_module
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib import auth

from accounts.current import SESSION_KEY
from accounts.models import Membership
from credit import connections
from usage import live_hub

logger = logging.getLogger(__name__)
NOT_LOGGED_IN, NOT_A_MEMBER, TOO_MANY, UNAVAILABLE = 4401, 4403, 4429, 4503
LOST = 1011  # an unexpected error: the page's script retries
EVENT_RECHECK_SECONDS = 1.0  # a message is forwarded only under a check this recent


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


@database_sync_to_async
def access_now(user_id: int, session_key: str | None, organization_id: int) -> int | None:
    """None while the socket may still follow the organization, else its close code: the
    session read afresh as a page view reads it (signed out, expired, password changed,
    user deactivated: 4401), then the membership (4403)."""
    if not session_key:
        return NOT_LOGGED_IN
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = auth.get_user(SimpleNamespace(session=store))  # type: ignore[arg-type]
    if not user.is_authenticated or user.pk != user_id:
        return NOT_LOGGED_IN
    if not Membership.objects.filter(user_id=user_id, organization_id=organization_id).exists():
        return NOT_A_MEMBER
    return None


class UsageLiveConsumer(AsyncWebsocketConsumer):
    hub: live_hub.LiveHub | None = None
    listener: live_hub.Listener | None = None
    forwarder: asyncio.Task | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self._refuse(NOT_LOGGED_IN)
            return
        session = self.scope.get("session")
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        requested = query.get("organization", [None])[0]
        organization_id = await organization_for(user, session, requested)
        if organization_id is None:
            await self._refuse(NOT_A_MEMBER)
            return
        self.user_id, self.organization_id = user.pk, organization_id
        self.session_key = session.session_key if session is not None else None
        self.hub = live_hub.current()
        try:
            self.listener = self.hub.join(user.pk, organization_id)
        except live_hub.Refused as refused:
            logger.info("live feed: socket of user %s refused: %s", user.pk, refused)
            await self._refuse(TOO_MANY)
            return
        if connections.configured():
            try:
                await self.hub.subscribe(self.listener)
            except live_hub.UNAVAILABLE:
                logger.warning("live feed: cannot subscribe", exc_info=True)
                await self._release()
                await self._refuse(UNAVAILABLE)
                return
        self.checked_at = time.monotonic()
        await self.accept()
        self.forwarder = asyncio.create_task(self._forward())

    async def _refuse(self, code: int) -> None:
        await self.accept()
        await self.close(code=code)

    async def _access(self) -> int | None:
        key = (self.user_id, self.session_key, self.organization_id)
        assert self.hub is not None
        code, self.checked_at = await self.hub.checked(
            key, lambda: access_now(self.user_id, self.session_key, self.organization_id)
        )
        return code

    async def _forward(self) -> None:
        try:
            await self._forward_until_refused()
        except Exception:  # (a database error while checking): the page's script retries
            logger.exception("live feed: socket of user %s failed", self.user_id)
            await self.close(code=LOST)

    async def _forward_until_refused(self) -> None:
        assert self.listener is not None
        queue = self.listener.queue
        while True:
            wait = self.checked_at + settings.LIVE_RECHECK_SECONDS - time.monotonic()
            batch: list[str] = []
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(wait, 0)):
                    batch.append(await queue.get())
            while not queue.empty():
                batch.append(queue.get_nowait())
            stale = time.monotonic() - self.checked_at
            if not batch or stale >= EVENT_RECHECK_SECONDS:
                code = await self._access()
                if code is not None:
                    logger.info("live feed: socket of user %s closed (%s)", self.user_id, code)
                    await self.close(code=code)
                    return
            for message in batch:
                await self.send(text_data=message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The feed is one-way; anything the browser sends is ignored."""

    async def disconnect(self, code: int) -> None:
        await self._release()

    async def _release(self) -> None:
        forwarder, self.forwarder = self.forwarder, None
        if forwarder is not None and forwarder is not asyncio.current_task():
            forwarder.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await forwarder
        listener, self.listener = self.listener, None
        if listener is not None and self.hub is not None:
            await self.hub.leave(listener)
