"""Which store holds the money state in this process: Redis when REDIS_URL is set, else
this process's memory (the embedded default)."""

from __future__ import annotations

from credit import connections
from credit.memory_store import MemoryStore
from credit.redis_store import RedisStore

_redis = RedisStore()
_memory = MemoryStore()
_fallback = MemoryStore()


def current() -> RedisStore | MemoryStore:
    return _redis if connections.configured() else _memory


def redis_store() -> RedisStore:
    return _redis


def fallback() -> MemoryStore:
    """GATEWAY_REDIS_FAILURE=local: the store a gateway process checks credit in while its
    Redis is unreachable (loaded from the ledger; its usage is booked at once)."""
    return _fallback
