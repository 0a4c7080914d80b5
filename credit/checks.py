"""What the credit core needs of its Redis, checked when a process that uses it starts."""

from __future__ import annotations

import logging

import redis
from django.conf import settings
from redis.cluster import RedisCluster

from credit import connections

logger = logging.getLogger(__name__)


class UnsafeRedis(RuntimeError):
    """The money state's Redis would delete keys when full."""


def eviction_policy() -> str | None:
    """The money Redis's maxmemory-policy (over a cluster, the first master's that is not
    `noeviction`, if any), or None when it cannot be read (managed Redis services often
    disable CONFIG)."""
    client = connections.sync()
    try:
        if isinstance(client, RedisCluster):
            replies = client.config_get("maxmemory-policy", target_nodes=RedisCluster.PRIMARIES)
            policies = [reply.get("maxmemory-policy") for reply in replies.values()]
            return next((p for p in policies if p != "noeviction"), "noeviction")
        reply = client.config_get("maxmemory-policy")
    except redis.ResponseError:
        return None
    return reply.get("maxmemory-policy")


def check_eviction_policy() -> None:
    """Refuse (or, with REDIS_EVICTION_CHECK=warn, warn) unless the money Redis is
    `noeviction`: any other policy deletes balances, holds or queued usage when memory
    runs out, and money would be lost or given away. Redis unreachable: nothing to check
    yet (calls fail closed until it answers)."""
    if not connections.configured():
        return
    try:
        policy = eviction_policy()
    except redis.RedisError:
        logger.warning("Redis unreachable at startup: its eviction policy is not checked")
        return
    if policy is None:
        logger.warning(
            "REDIS_URL's maxmemory-policy cannot be read (CONFIG is disabled): make sure it "
            "is noeviction, or money state may be evicted"
        )
        return
    if policy == "noeviction":
        return
    message = (
        f"REDIS_URL's maxmemory-policy is {policy!r}: it must be 'noeviction', or balances, "
        "holds and queued usage are deleted when Redis is full"
    )
    if settings.REDIS_EVICTION_CHECK == "warn":
        logger.error("%s (REDIS_EVICTION_CHECK=warn: starting anyway)", message)
        return
    raise UnsafeRedis(message)
