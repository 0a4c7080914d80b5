"""Operator counters kept in one place for the whole fleet: a hash in the project's Redis
(credit.keys.METRICS), or this process's memory without Redis. usage/metrics.py exposes
them at /metrics (only the names its FAMILIES register); any app may add to them (the
usage drain, billing's reconciliation)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from functools import lru_cache

import orjson
import redis

from credit import connections, keys

local: Counter[str] = Counter()  # without Redis


@lru_cache(maxsize=4096)  # label values are bounded, so are the fields
def field(name: str, **labels: str) -> str:
    """A sample's field in the hash: the JSON of [sample name, label pairs sorted by name],
    which no label value can break out of."""
    return orjson.dumps([name, sorted(labels.items())]).decode()


def add(counts: Mapping[str, float], client: redis.Redis | None) -> None:
    """Add to fields: through `client`, or in this process when there is no Redis."""
    if client is None:
        local.update(counts)
        return
    pipe = client.pipeline(transaction=False)
    for name, amount in counts.items():
        # Each field keeps one type: once HINCRBYFLOAT'd, a field refuses HINCRBY.
        if isinstance(amount, float):
            pipe.hincrbyfloat(keys.METRICS, name, amount)
        else:
            pipe.hincrby(keys.METRICS, name, amount)
    pipe.execute()


def increment(name: str, value: int = 1, **labels: str) -> None:
    """Add to a counter whose labels the caller bounds (fixed sets, never input)."""
    add({field(name, **labels): value}, connections.sync() if connections.configured() else None)
