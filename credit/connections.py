"""The one place Redis connections to the project's own database (REDIS_URL) are made.

* `fast()`: the hot path's pipelined client (credit/resp.py), one per event loop.
* `client()`: redis-py's asyncio client, one per event loop (pub/sub, admin paths).
* `sync()`: redis-py's blocking client, one per process (workers, commands, views).

All read the same URL through credit/redis_options.py (TLS options, Sentinel), as do the
Django cache (`CachePool`) and Celery's broker (nexeon/settings.py). None / an error when
REDIS_URL is unset (the embedded default keeps the money state in memory:
credit.memory_store).
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel
from django.conf import settings

from credit import redis_options
from credit.resp import FastRedis
from nexeon.loops import running_loop

_clients: dict[int, aioredis.Redis] = {}
_fast: dict[int, FastRedis] = {}
_sync: tuple[str, redis.Redis] | None = None
SOCKET_TIMEOUT = 10.0


def configured() -> bool:
    return bool(settings.REDIS_URL)


def pool(url: str, *, asyncio: bool = False, pool_class=None, **options: Any):
    """A redis-py connection pool for `url` (redis.asyncio's with `asyncio`), with every
    option of the URL; a Sentinel URL's asks its sentinels for the primary (and takes no
    `pool_class`: redis.sentinel's own, not blocking)."""
    target = redis_options.parse(url)
    kwargs = {**target.redis_py(asyncio=asyncio), **options}
    if not target.uses_sentinel:
        kind = pool_class or (aioredis.ConnectionPool if asyncio else redis.ConnectionPool)
        return kind(**kwargs)
    kwargs.pop("timeout", None)  # (a BlockingConnectionPool's wait)
    timeouts = ("socket_timeout", "socket_connect_timeout")
    sentinel_kwargs = {
        **target.sentinel_kwargs(),
        **{name: options[name] for name in timeouts if name in options},
    }
    if asyncio:
        manager = aiosentinel.Sentinel(target.sentinels, sentinel_kwargs=sentinel_kwargs)
        return aiosentinel.SentinelConnectionPool(target.service, manager, **kwargs)
    manager = redis.sentinel.Sentinel(target.sentinels, sentinel_kwargs=sentinel_kwargs)
    return redis.sentinel.SentinelConnectionPool(target.service, manager, **kwargs)


class CachePool:
    """The Django cache's pool class (CACHES' OPTIONS["pool_class"]): the same URL
    reading as every other client, Sentinel and TLS options included."""

    @classmethod
    def from_url(cls, url: str, **options: Any):
        return pool(url, **options)


def client() -> aioredis.Redis | None:
    # Looked up on every request: a dict hit, no Django settings access on the hot path.
    loop_id = id(running_loop())
    found = _clients.get(loop_id)
    if found is None:
        if not settings.REDIS_URL:
            return None
        # A blocking pool: under a burst, requests wait briefly for a connection instead
        # of failing with "Too many connections".
        made = pool(
            settings.REDIS_URL,
            asyncio=True,
            pool_class=aioredis.BlockingConnectionPool,
            max_connections=512,
            timeout=5,
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=30,
        )
        found = _clients[loop_id] = aioredis.Redis(connection_pool=made)
    return found


def fast() -> FastRedis:
    """The hot path's own client on this loop; only where REDIS_URL is set."""
    loop = running_loop()
    found = _fast.get(id(loop))
    if found is None or found.loop is not loop:  # (a loop that ended may leave its id)
        found = _fast[id(loop)] = FastRedis(settings.REDIS_URL, loop=loop)
    return found


def sync() -> redis.Redis:
    """A blocking client (thread-safe, pooled; reconnects in a forked child)."""
    global _sync
    url = settings.REDIS_URL
    if _sync is None or _sync[0] != url:  # (tests point REDIS_URL at their own servers)
        made = pool(
            url, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=5, health_check_interval=30
        )
        _sync = (url, redis.Redis(connection_pool=made))
    return _sync[1]
