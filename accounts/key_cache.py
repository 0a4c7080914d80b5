"""The gateway's shared copy of API keys' facts in Redis (credit.keys.api_key), and what
revoking, deleting or changing a key writes over it.

A gateway lookup that read a key from the database writes its copy only if there is none
(SET NX). Revoking or deleting a key writes a tombstone in its place, and changing one
writes a marker that sends every lookup to the database for a while; both with a plain
SET. So a lookup that read the database before the change, and writes after it, finds
the tombstone or the marker and writes nothing: the old facts never come back.
"""

from __future__ import annotations

import logging

import redis

from credit import connections, keys

logger = logging.getLogger(__name__)
COPY_SECONDS = 60  # how long a gateway's copy lives
TOMBSTONE = b"null"  # a revoked or deleted key (JSON null: "no such key")
TOMBSTONE_SECONDS = 86_400  # far longer than any lookup that could race it
CHANGED = b"~"  # read the database, do not cache
CHANGED_SECONDS = 300  # longer than a lookup's database read can take


def revoked(digest: str) -> None:
    """Sync, after a revocation or deletion commits."""
    _write(digest, TOMBSTONE, TOMBSTONE_SECONDS)


def changed(digest: str) -> None:
    """Sync, after a change of a key's facts (name, limits, models, its plan) commits."""
    _write(digest, CHANGED, CHANGED_SECONDS)


def _write(digest: str, value: bytes, seconds: int) -> None:
    if not connections.configured():
        return
    try:
        connections.sync().set(keys.api_key(digest), value, ex=seconds)
    except redis.RedisError:
        # The gateway's copies live COPY_SECONDS: the change reaches every worker by then.
        logger.warning("API key change not announced: Redis unreachable")
