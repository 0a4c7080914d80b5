"""Operator counters kept in one place for the whole fleet: a hash in the project's Redis
(credit.keys.METRICS), or this process's memory without Redis. usage/metrics.py exposes
them at /metrics; any app may add to them (the usage drain, billing's reconciliation)."""

from __future__ import annotations

from collections import Counter

import orjson

from credit import connections, keys

local: Counter[str] = Counter()  # without Redis


def field(name: str, **labels: str) -> str:
    """A counter's field in the hash: JSON of its name and sorted labels, so that no label
    value can be mistaken for a separator."""
    return orjson.dumps([name, sorted(labels.items())]).decode()


def increment(name: str, value: float = 1, **labels: str) -> None:
    key = field(name, **labels)
    if not connections.configured():
        local[key] += value
    elif float(value).is_integer():
        connections.sync().hincrby(keys.METRICS, key, int(value))
    else:
        connections.sync().hincrbyfloat(keys.METRICS, key, value)
