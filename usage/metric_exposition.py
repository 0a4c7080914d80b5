"""The metric families from stored counts, for prometheus_client to write out: a collector
that places each stored field in its family, makes histograms cumulative and skips (and
reports once) any field it cannot place, so that a stray field never fails a scrape.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from itertools import accumulate
from typing import Any

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from usage.metric_families import FAMILIES, HASH, Family, Labels, decode, placed

logger = logging.getLogger(__name__)
Stored = Mapping[bytes, bytes] | Mapping[str, float]  # the Redis hash, or a process's own
_skipped_reported = False


class StoredMetrics(Collector):
    """Every family, from what `read` returns at each collection: stored counts and the
    queue figures (gauges by name)."""

    def __init__(self, read: Callable[[], tuple[Stored, Mapping[str, float]]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        stored, queue = self._read()
        yield from families(stored, queue)


def render(stored: Stored, queue: Mapping[str, float] | None = None) -> str:
    """The exposition of given stored counts (pure)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoredMetrics(lambda: (stored, queue or {})))
    return generate_latest(registry).decode()


def families(stored: Stored, queue: Mapping[str, float]) -> list[Metric]:
    """Every family of FAMILIES, in its order."""
    series = _series(stored)
    out: list[Metric] = []
    for name, family in FAMILIES.items():
        if family.kind == "counter":
            out.append(_counter(name, family, series.get(name, {})))
        elif family.kind == "histogram":
            buckets, sums = series.get(f"{name}_bucket", {}), series.get(f"{name}_sum", {})
            out.append(_histogram(name, family, buckets, sums))
        else:
            out.append(GaugeMetricFamily(name, family.help, value=queue.get(name, 0.0)))
    return out


def _series(stored: Stored) -> dict[str, dict[Labels, float]]:
    """The stored samples by name, then labels."""
    by_sample: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
    skipped: list[object] = []
    for raw, raw_amount in stored.items():
        sample, amount = decode(raw), _amount(raw_amount)
        if sample is None or amount is None or not placed(*sample):
            skipped.append(raw)
            continue
        name, labels = sample
        by_sample[name][labels] += amount
    if skipped:
        _report_skipped(skipped)
    return by_sample


def _amount(raw: Any) -> float | None:
    try:
        amount = float(raw)
    except (TypeError, ValueError):
        return None
    return amount if math.isfinite(amount) else None


def _report_skipped(fields: list[object]) -> None:
    """Once per process: the same fields are skipped at every scrape."""
    global _skipped_reported
    if not _skipped_reported:
        _skipped_reported = True
        logger.warning(
            "metrics: %d fields of %s skipped, not in this version's encoding (first: %r)",
            len(fields),
            HASH,
            fields[0],
        )


def _values(labels: Labels, names: tuple[str, ...]) -> tuple[str, ...]:
    by_name = dict(labels)
    return tuple(by_name[name] for name in names)


def _counter(name: str, family: Family, stored: dict[Labels, float]) -> Metric:
    metric = CounterMetricFamily(name, family.help, labels=family.labels)
    values = {_values(labels, family.labels): value for labels, value in stored.items()}
    if not family.labels:
        values.setdefault((), 0.0)  # a counter without labels exists from the start
    for key, value in sorted(values.items()):
        metric.add_metric(list(key), value)
    return metric


def _histogram(
    name: str, family: Family, buckets: dict[Labels, float], sums: dict[Labels, float]
) -> Metric:
    metric = HistogramMetricFamily(name, family.help, labels=family.labels)
    position = {le: index for index, le in enumerate(family.le)}
    counts: dict[tuple[str, ...], list[float]] = {}
    for labels, count in buckets.items():
        key = _values(labels, family.labels)
        counts.setdefault(key, [0.0] * len(family.le))[position[dict(labels)["le"]]] += count
    totals = {_values(labels, family.labels): value for labels, value in sums.items()}
    if not family.labels:
        counts.setdefault((), [0.0] * len(family.le))  # like a counter without labels
    for key in sorted(counts.keys() | totals.keys()):
        cumulative = accumulate(counts.get(key, [0.0] * len(family.le)))
        metric.add_metric(
            list(key), list(zip(family.le, cumulative, strict=True)), totals.get(key, 0.0)
        )
    return metric
