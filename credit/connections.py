"""The one place Redis connections to the project's own database (REDIS_URL) are made.

* `fast()`: the hot path's pipelined client (credit/resp.py), one per event loop.
* `client()`: redis-py's asyncio client, one per event loop (pub/sub, admin paths).
* `sync()`: redis-py's blocking client, one per process (workers, commands, views).
* `probe()`: the same with short time-outs, for the readiness probe.

All three read the same URL; None / an error when REDIS_URL is unset (the embedded
default keeps the money state in memory: credit.memory_store).
"""

from __future__ import annotations

import redis
import redis.asyncio as aioredis
from django.conf import settings

from credit.resp import FastRedis
from nexeon.loops import running_loop

_clients: dict[int, aioredis.Redis] = {}
_fast: dict[int, FastRedis] = {}
_sync: tuple[str, redis.Redis] | None = None
_probe: tuple[str, redis.Redis] | None = None
SOCKET_TIMEOUT = 10.0
PROBE_TIMEOUT = 2.0


def configured() -> bool:
    return bool(settings.REDIS_URL)


def client() -> aioredis.Redis | None:
    # Looked up on every request: a dict hit, no Django settings access on the hot path.
    loop_id = id(running_loop())
    found = _clients.get(loop_id)
    if found is None:
        if not settings.REDIS_URL:
            return None
        # A blocking pool: under a burst, requests wait briefly for a connection instead
        # of failing with "Too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL,
            max_connections=512,
            timeout=5,
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=30,
        )
        found = _clients[loop_id] = aioredis.Redis(connection_pool=pool)
    return found


def fast() -> FastRedis:
    """The hot path's own client; only where REDIS_URL is set."""
    loop_id = id(running_loop())
    found = _fast.get(loop_id)
    if found is None:
        found = _fast[loop_id] = FastRedis(settings.REDIS_URL)
    return found


def sync() -> redis.Redis:
    """A blocking client (thread-safe, pooled; reconnects in a forked child)."""
    global _sync
    url = settings.REDIS_URL
    if _sync is None or _sync[0] != url:  # (tests point REDIS_URL at their own servers)
        made = redis.Redis.from_url(
            url, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=5, health_check_interval=30
        )
        _sync = (url, made)
    return _sync[1]


def probe() -> redis.Redis:
    """A blocking client that gives up within PROBE_TIMEOUT (a probe must answer in time)."""
    global _probe
    url = settings.REDIS_URL
    if _probe is None or _probe[0] != url:
        made = redis.Redis.from_url(
            url, socket_timeout=PROBE_TIMEOUT, socket_connect_timeout=PROBE_TIMEOUT
        )
        _probe = (url, made)
    return _probe[1]
