"""The live feed's subscriber: one per process, whatever the number of sockets.

Each event loop that serves WebSockets (one per uvicorn worker) has one `LiveHub`. The
usage page's sockets join it (usage/consumers.py), and it holds ONE Redis pub/sub
connection for all of them, named `nexeon-live-<pid>` (CLIENT LIST shows it), subscribed to the
channels of the organizations somebody on this process watches. Channels, not a pattern:
PUBSUB NUMSUB, which the pipeline asks before it builds any message (usage/live.py),
counts channel subscribers only. A channel is subscribed when its first socket joins and
unsubscribed when its last one leaves. The connection is made when the first socket
joins; if Redis drops it, it is made again with backoff (0.5 s doubling up to 10 s) and
every channel is subscribed again, while the sockets stay open: the feed resumes, and what
was published in between is lost, as pub/sub loses it anyway.

Without REDIS_URL (the embedded default: one process) usage.live.publish() hands each
message to this process's hubs directly.

Sockets are capped per process: LIVE_MAX_SOCKETS_PER_USER, _PER_ORGANIZATION and
_PER_PROCESS (`Refused` names the cap reached).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings
from redis.exceptions import RedisError

from credit import connections
from credit import keys as credit_keys

logger = logging.getLogger(__name__)

CLIENT_NAME = "nexeon-live"  # + "-<process id>"
QUEUE_SIZE = 256  # messages waiting for one socket; past it the oldest are dropped
SUBSCRIBE_TIMEOUT = 5.0
READ_TIMEOUT = 1.0
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 10.0
ACCESS_CACHE_SECONDS = 1.0  # one session and membership check serves a user's sockets
UNAVAILABLE = (RedisError, OSError, TimeoutError)


class Refused(Exception):
    """A cap on sockets is reached; the message names it."""


@dataclass(eq=False)
class Listener:
    """One socket's place in the hub: the messages waiting to be sent to it."""

    user_id: int
    organization_id: int
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))

    def put(self, message: str) -> None:
        if self.queue.full():
            self.queue.get_nowait()  # a socket that does not keep up loses the oldest
        self.queue.put_nowait(message)


def channel_organization(channel: bytes | str) -> int | None:
    name = channel.decode() if isinstance(channel, bytes) else channel
    tail = name.rpartition(":")[2]
    return int(tail) if tail.isdigit() else None


class LiveHub:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.listeners: dict[int, set[Listener]] = {}
        self.per_user: Counter[int] = Counter()
        self.total = 0
        # channel -> set once Redis confirmed the subscription (cleared while reconnecting)
        self.channels: dict[str, asyncio.Event] = {}
        self.redis: aioredis.Redis | None = None
        self.pubsub: Any = None
        self.reader: asyncio.Task | None = None
        self.broken = False
        self.lock = asyncio.Lock()  # subscribing, unsubscribing, reconnecting: one at a time
        self.access: dict[tuple[Any, ...], tuple[float, int | None]] = {}

    # --- sockets joining and leaving ---------------------------------------------------

    def join(self, user_id: int, organization_id: int) -> Listener:
        """Count a socket in, or raise Refused over a cap (no await: atomic on the loop)."""
        if self.total >= settings.LIVE_MAX_SOCKETS_PER_PROCESS:
            raise Refused("too many live connections on this server")
        if self.per_user[user_id] >= settings.LIVE_MAX_SOCKETS_PER_USER:
            raise Refused("too many live connections for this user")
        group = self.listeners.setdefault(organization_id, set())
        if len(group) >= settings.LIVE_MAX_SOCKETS_PER_ORGANIZATION:
            if not group:
                del self.listeners[organization_id]
            raise Refused("too many live connections for this organization")
        listener = Listener(user_id, organization_id)
        group.add(listener)
        self.per_user[user_id] += 1
        self.total += 1
        return listener

    async def leave(self, listener: Listener) -> None:
        group = self.listeners.get(listener.organization_id)
        if group is None or listener not in group:
            return
        group.discard(listener)
        self.per_user[listener.user_id] -= 1
        if not self.per_user[listener.user_id]:
            del self.per_user[listener.user_id]
        self.total -= 1
        if not group:
            del self.listeners[listener.organization_id]
            if self.redis is not None:
                await self._unsubscribe(listener.organization_id)

    def fan_out(self, organization_id: int, message: str) -> None:
        for listener in tuple(self.listeners.get(organization_id, ())):
            listener.put(message)

    # --- Redis -------------------------------------------------------------------------

    async def subscribe(self, listener: Listener) -> None:
        """Return once Redis confirmed the listener's channel, so that whatever is published
        afterwards reaches it. Raises RedisError, OSError or TimeoutError."""
        channel = credit_keys.live_usage(listener.organization_id)
        async with self.lock:
            confirmed = self.channels.get(channel)
            if confirmed is None:
                confirmed = self.channels[channel] = asyncio.Event()
                try:
                    await self._connected().subscribe(channel)
                except UNAVAILABLE:
                    self.channels.pop(channel, None)
                    self.broken = True  # the reader makes the connection again
                    raise
            if self.reader is None or self.reader.done():
                self.reader = self.loop.create_task(self._read(), name="live feed subscriber")
        async with asyncio.timeout(SUBSCRIBE_TIMEOUT):
            await confirmed.wait()

    def _connected(self) -> Any:
        if self.pubsub is None:
            if self.redis is None:
                self.redis = connections.subscriber(f"{CLIENT_NAME}-{os.getpid()}")
            self.pubsub = self.redis.pubsub()
        return self.pubsub

    async def _unsubscribe(self, organization_id: int) -> None:
        channel = credit_keys.live_usage(organization_id)
        async with self.lock:
            if organization_id in self.listeners or channel not in self.channels:
                return  # somebody joined meanwhile, or it is gone already
            del self.channels[channel]
            if self.pubsub is not None and not self.broken:
                with contextlib.suppress(*UNAVAILABLE):
                    await self.pubsub.unsubscribe(channel)

    async def _reconnect(self) -> None:
        """A new connection, subscribed to every channel watched now."""
        async with self.lock:
            old, self.pubsub = self.pubsub, None
            if old is not None:
                with contextlib.suppress(Exception):
                    await old.aclose()
            for confirmed in self.channels.values():
                confirmed.clear()
            if self.channels:
                await self._connected().subscribe(*self.channels)
            self.broken = False

    async def _read(self) -> None:
        delay = BACKOFF_FIRST
        while True:
            if self.broken:
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                try:
                    await self._reconnect()
                except UNAVAILABLE as exc:
                    logger.warning("live feed: Redis still unreachable (%s)", exc)
                    continue
                logger.info("live feed: subscriber connected again")
            try:
                pubsub = self.pubsub
                if pubsub is None or not pubsub.subscribed:
                    await asyncio.sleep(READ_TIMEOUT)
                    continue
                message = await pubsub.get_message(timeout=READ_TIMEOUT)
            except UNAVAILABLE as exc:
                logger.warning("live feed: subscriber connection lost (%s); reconnecting", exc)
                self.broken = True
                continue
            if message is not None:
                delay = BACKOFF_FIRST
                self._handle(message)

    def _handle(self, message: dict[str, Any]) -> None:
        kind, channel = message["type"], message["channel"]
        name = channel.decode() if isinstance(channel, bytes) else str(channel)
        if kind == "subscribe" and name in self.channels:
            self.channels[name].set()
        elif kind == "message":
            organization_id = channel_organization(name)
            if organization_id is not None:
                data = message["data"]
                self.fan_out(organization_id, data.decode() if isinstance(data, bytes) else data)

    # --- access checks, shared by a user's sockets -----------------------------------

    async def checked(
        self, key: tuple[Any, ...], check: Callable[[], Awaitable[int | None]]
    ) -> tuple[int | None, float]:
        """(`check()`'s answer, when it was asked: time.monotonic()), asked again only when
        the answer for this key (user, session, organization) is ACCESS_CACHE_SECONDS old:
        a user's sockets on this process share one check."""
        found = self.access.get(key)
        if found is not None and time.monotonic() - found[0] < ACCESS_CACHE_SECONDS:
            return found[1], found[0]
        asked = time.monotonic()
        answer = await check()
        self.access[key] = (asked, answer)
        if len(self.access) > 4 * max(self.total, 64):
            cutoff = time.monotonic() - ACCESS_CACHE_SECONDS
            self.access = {k: v for k, v in self.access.items() if v[0] >= cutoff}
        return answer, asked


_hubs: dict[int, LiveHub] = {}


def current() -> LiveHub:
    """The hub of the running event loop (made on first use)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(id(loop))
    if hub is None or hub.loop is not loop:
        for loop_id, old in list(_hubs.items()):
            if old.loop.is_closed():
                del _hubs[loop_id]
        hub = _hubs[id(loop)] = LiveHub(loop)
    return hub


def deliver_here(organization_id: int, message: str) -> None:
    """Hand a message to this process's sockets, from any thread (the embedded default,
    which has no Redis to publish to)."""
    for hub in list(_hubs.values()):
        if organization_id in hub.listeners and not hub.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # (a loop closing meanwhile)
                hub.loop.call_soon_threadsafe(hub.fan_out, organization_id, message)


def watched_here(organization_ids: set[int]) -> set[int]:
    """Which of these organizations somebody on this process watches (embedded default)."""
    found: set[int] = set()
    for hub in list(_hubs.values()):
        found.update(organization_ids.intersection(list(hub.listeners)))
    return found
