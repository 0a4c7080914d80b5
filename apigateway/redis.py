"""The gateway's asyncio Redis client: one per process and event loop, or None (embedded)."""

from __future__ import annotations

import redis.asyncio as aioredis
from django.conf import settings

from apigateway.loops import running_loop
from apigateway.resp import FastRedis

_clients: dict[int, aioredis.Redis] = {}
_fast: dict[int, FastRedis] = {}


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
    """The hot path's own client (apigateway/resp.py); only where REDIS_URL is set."""
    loop_id = id(running_loop())
    found = _fast.get(loop_id)
    if found is None:
        found = _fast[loop_id] = FastRedis(settings.REDIS_URL)
    return found
