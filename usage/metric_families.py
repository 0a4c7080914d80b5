"""What the metrics are (names, types, HELP, label names, buckets) and how a sample is
stored: a field of one Redis hash, the JSON of [sample name, label pairs sorted by name],
which no label value can break out of. A histogram is stored as each bucket's own count
(`le` its upper bound, not cumulative) and its `_sum`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from credit.keys import METRICS

HASH = METRICS
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
LAG_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)
QUEUE_DEPTH = "nexeon_usage_queue_depth"
OLDEST_PENDING = "nexeon_usage_oldest_pending_seconds"
DEAD_LETTERS = "nexeon_usage_dead_letters"

Labels = tuple[tuple[str, str], ...]  # sorted by name


@lru_cache(maxsize=64)
def bucket_labels(bounds: tuple[float, ...]) -> tuple[str, ...]:
    """The `le` values of a histogram's buckets, +Inf last."""
    return (*(f"{bound:g}" for bound in bounds), "+Inf")


@dataclass(frozen=True, slots=True)
class Family:
    kind: str  # counter, histogram or gauge
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()  # a histogram's upper bounds; +Inf follows

    @property
    def le(self) -> tuple[str, ...]:
        return bucket_labels(self.buckets)


FAMILIES: dict[str, Family] = {
    "nexeon_requests_total": Family(
        "counter",
        "Calls to /v1 by endpoint, model and HTTP status.",
        ("endpoint", "model", "status"),
    ),
    "nexeon_request_duration_seconds": Family(
        "histogram",
        "Time to the last byte, by model and HTTP status.",
        ("model", "status"),
        DURATION_BUCKETS,
    ),
    "nexeon_time_to_first_byte_seconds": Family(
        "histogram", "Time to the first byte, by model.", ("model",), DURATION_BUCKETS
    ),
    "nexeon_upstream_errors_total": Family(
        "counter",
        "Calls that failed because of the provider (502/503/504), by provider and status.",
        ("provider", "status"),
    ),
    "nexeon_tokens_total": Family(
        "counter", "Tokens billed, by model and kind.", ("kind", "model")
    ),
    "nexeon_cost_usd_total": Family("counter", "US dollars charged, by model.", ("model",)),
    "nexeon_accounting_lag_seconds": Family(
        "histogram",
        "From a call's last byte to its usage record being written.",
        buckets=LAG_BUCKETS,
    ),
    QUEUE_DEPTH: Family("gauge", "Usage events waiting to be written."),
    OLDEST_PENDING: Family("gauge", "Age of the oldest waiting event."),
    DEAD_LETTERS: Family("gauge", "Usage events that could not be written."),
    "nexeon_balance_discrepancies_total": Family(
        "counter",
        "Differences between the credit store and the ledger found by reconciliation, by "
        "kind: usage_not_booked (charged, never booked: lost usage, alert), "
        "usage_not_charged (booked without the store: charged to it), credits_missed "
        "(synced), credits_ahead (the store's credits newer than the ledger's: alert).",
        ("kind",),
    ),
}


def decode(raw: Any) -> tuple[str, Labels] | None:
    """A field as (sample name, labels), or None when it does not have a field's shape."""
    try:
        decoded = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):
        return None
    if not (isinstance(decoded, list) and len(decoded) == 2):
        return None
    name, pairs = decoded
    if not (isinstance(name, str) and isinstance(pairs, list)):
        return None
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2):
            return None
        if not (isinstance(pair[0], str) and isinstance(pair[1], str)):
            return None
    return name, tuple(sorted((key, value) for key, value in pairs))


def placed(name: str, labels: Labels) -> bool:
    """Whether a stored sample belongs to a family of FAMILIES, with that family's labels."""
    names = [key for key, _ in labels]
    family = FAMILIES.get(name)
    if family is not None:
        return family.kind == "counter" and names == sorted(family.labels)
    base, _, part = name.rpartition("_")
    family = FAMILIES.get(base)
    if family is None or family.kind != "histogram":
        return False
    if part == "sum":
        return names == sorted(family.labels)
    return (
        part == "bucket"
        and names == sorted((*family.labels, "le"))
        and dict(labels)["le"] in family.le
    )
