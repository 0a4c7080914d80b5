"""Operator metrics in Prometheus' text format, at /metrics behind the operator's token.

Counted by the usage pipeline from the calls it writes, not on the hot path: the gateway
already emits one event per call, so its processes pay nothing for metrics, every replica
is counted in one place (a Redis hash), and a scrape of any web process sees the whole
fleet. Only newly written records are counted, so a re-drained batch is not counted
twice. Queue depth, dead letters and the age of the oldest pending event are read at
scrape time. Without Redis (embedded mode) the counters live in this process.

Every label value comes from a bounded set (metric_labels.py: catalog model ids,
configured providers, ...; anything else is "other"), so the hash stays small whatever
callers send. The families and the hash's encoding are in metric_families.py; the
exposition is prometheus_client's, from the collector in metric_exposition.py.
"""

from __future__ import annotations

import hmac
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from credit import connections
from credit.stores import current as credit_store
from nexeon import counters
from nexeon.counters import field
from usage import metric_labels
from usage.metric_exposition import Stored, StoredMetrics
from usage.metric_families import (
    DEAD_LETTERS,
    DURATION_BUCKETS,
    HASH,
    LAG_BUCKETS,
    OLDEST_PENDING,
    QUEUE_DEPTH,
    bucket_labels,
)
from usage.metric_labels import Bounds

UPSTREAM_STATUSES = frozenset({"502", "503", "504"})


# --- counting ----------------------------------------------------------------------------


class _Histogram:
    """Counts per bucket (not cumulative), as stored."""

    __slots__ = ("bounds", "buckets", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.buckets = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def add(self, value: float) -> None:
        self.buckets[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def write(self, out: Counter[str], name: str, **labels: str) -> None:
        for le, count in zip(bucket_labels(self.bounds), self.buckets, strict=True):
            if count:
                out[field(f"{name}_bucket", le=le, **labels)] += count
        out[field(f"{name}_sum", **labels)] += self.sum  # type: ignore[assignment]  # (floats too)


def _histogram(histograms: dict, key: object, bounds: tuple[float, ...]) -> _Histogram:
    found = histograms.get(key)
    if found is None:
        found = histograms[key] = _Histogram(bounds)
    return found


def counts_for(
    events: Iterable[dict], now: float | None = None, bounds: Bounds | None = None
) -> Counter[str]:
    """What a batch of newly written calls (their usage events) adds to the metrics, every
    label bounded (pure, given `bounds`). Thousands of calls a second at peak: one pass,
    then one field per label set. Counts are ints; dollars and seconds are floats."""
    now = time.time() if now is None else now
    bounds = Bounds.current() if bounds is None else bounds
    requests: Counter[tuple[str, str, str]] = Counter()
    upstream: Counter[tuple[str, str]] = Counter()
    tokens: Counter[tuple[str, str]] = Counter()
    cost: Counter[str] = Counter()
    durations: dict[tuple[str, str], _Histogram] = {}
    ttfbs: dict[str, _Histogram] = {}
    lag = _Histogram(LAG_BUCKETS)
    for event in events:
        model = bounds.model(event.get("model"))
        status = metric_labels.status(event.get("status") or 200)
        requests[(metric_labels.endpoint(event.get("endpoint") or "chat"), model, status)] += 1
        duration = float(event.get("duration_ms") or 0) / 1000
        _histogram(durations, (model, status), DURATION_BUCKETS).add(duration)
        if event.get("ttfb_ms") is not None:
            _histogram(ttfbs, model, DURATION_BUCKETS).add(float(event["ttfb_ms"]) / 1000)
        if status in UPSTREAM_STATUSES and event.get("provider"):
            upstream[(bounds.provider(event["provider"]), status)] += 1
        if event.get("prompt_tokens"):
            tokens[(model, "prompt")] += int(event["prompt_tokens"])
        if event.get("completion_tokens"):
            tokens[(model, "completion")] += int(event["completion_tokens"])
        if event.get("cost_nanos"):
            cost[model] += int(event["cost_nanos"])
        lag.add(max(now - float(event.get("at") or now) - duration, 0.0))
    out: Counter[str] = Counter()
    for (endpoint, model, status), count in requests.items():
        out[field("nexeon_requests_total", endpoint=endpoint, model=model, status=status)] += count
    for (provider, status), count in upstream.items():
        out[field("nexeon_upstream_errors_total", provider=provider, status=status)] += count
    for (model, kind), count in tokens.items():
        out[field("nexeon_tokens_total", kind=kind, model=model)] += count
    for model, nanos in cost.items():
        out[field("nexeon_cost_usd_total", model=model)] += nanos / 1e9  # type: ignore[assignment]
    for (model, status), histogram in durations.items():
        histogram.write(out, "nexeon_request_duration_seconds", model=model, status=status)
    for model, histogram in ttfbs.items():
        histogram.write(out, "nexeon_time_to_first_byte_seconds", model=model)
    if any(lag.buckets):
        lag.write(out, "nexeon_accounting_lag_seconds")
    return out


def observe(events: list[dict], client: redis.Redis | None) -> None:
    """Add newly written calls to the counters: in Redis through `client` (the drain's own
    connection), or in this process when there is no Redis."""
    if events:
        counters.add(counts_for(events), client)


# --- reading -----------------------------------------------------------------------------


def queue_figures() -> dict[str, float]:
    """The usage queue at scrape time (the credit store's stream): calls waiting to be
    booked, the oldest one's age in seconds, and the dead letters."""
    backlog = credit_store().usage_backlog()
    age = max(time.time() - backlog.oldest_at, 0.0) if backlog.oldest_at else 0.0
    return {
        QUEUE_DEPTH: float(backlog.waiting + backlog.pending),
        OLDEST_PENDING: age,
        DEAD_LETTERS: float(backlog.dead),
    }


def _current() -> tuple[Stored, dict[str, float]]:
    if not connections.configured():
        return dict(counters.local), queue_figures()
    return connections.sync().hgetall(HASH), queue_figures()  # type: ignore[return-value]


# Private: the default registry would add this process's own metrics to the fleet's.
_registry = CollectorRegistry(auto_describe=False)
_registry.register(StoredMetrics(_current))


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics with `Authorization: Bearer $METRICS_TOKEN`; 404 when no token is set."""
    token = settings.METRICS_TOKEN
    if not token:
        return JsonResponse({"error": "not found"}, status=404)
    presented = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(presented.encode(), token.encode()):
        response = JsonResponse({"error": "the operator's metrics token is required"}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(_registry), content_type=CONTENT_TYPE_LATEST)
