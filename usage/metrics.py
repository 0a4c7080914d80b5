"""Operator metrics in Prometheus' text format, at /metrics behind the operator's token.

Counted by the usage pipeline from the calls it writes, not on the hot path: the gateway
already emits one event per call, so its processes pay nothing for metrics, every replica
is counted in one place (a Redis hash), and a scrape of any web process sees the whole
fleet. Only newly written records are counted, so a re-drained batch is not counted
twice. Queue depth, dead letters and the age of the oldest pending event are read at
scrape time. Without Redis (embedded mode) the counters live in this process.
"""

from __future__ import annotations

import hmac
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from credit import keys as credit_keys

HASH = credit_keys.METRICS
SEP = "\x1f"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
LAG_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)

HELP = {
    "nexeon_requests_total": ("counter", "Calls to /v1 by endpoint, model and HTTP status."),
    "nexeon_request_duration_seconds": (
        "histogram",
        "Time to the last byte, by model and HTTP status.",
    ),
    "nexeon_time_to_first_byte_seconds": ("histogram", "Time to the first byte, by model."),
    "nexeon_upstream_errors_total": (
        "counter",
        "Calls that failed because of the provider (502/503/504), by provider and status.",
    ),
    "nexeon_tokens_total": ("counter", "Tokens billed, by model and kind."),
    "nexeon_cost_usd_total": ("counter", "US dollars charged, by model."),
    "nexeon_accounting_lag_seconds": (
        "histogram",
        "From a call's last byte to its usage record being written.",
    ),
    "nexeon_usage_queue_depth": ("gauge", "Usage events waiting to be written."),
    "nexeon_usage_oldest_pending_seconds": ("gauge", "Age of the oldest waiting event."),
    "nexeon_usage_dead_letters": ("gauge", "Usage events that could not be written."),
}

_local: Counter[str] = Counter()  # embedded mode


@lru_cache(maxsize=20_000)
def _field(name: str, **labels: str) -> str:
    return SEP.join([name, *(f"{k}={v}" for k, v in sorted(labels.items()))])


class _Histogram:
    """Per-bucket counts (not cumulative) while counting; cumulative when written out."""

    __slots__ = ("buckets", "count", "sum")

    def __init__(self, size: int) -> None:
        self.buckets = [0] * size
        self.count = 0
        self.sum = 0.0

    def add(self, value: float, bounds: tuple) -> None:
        self.buckets[bisect_left(bounds, value)] += 1
        self.count += 1
        self.sum += value

    def write(self, out: Counter, name: str, bounds: tuple, **labels: str) -> None:
        running = 0
        for bound, count in zip((*bounds, None), self.buckets, strict=True):
            running += count
            le = "+Inf" if bound is None else f"{bound:g}"
            out[_field(name + "_bucket", le=le, **labels)] += running
        out[_field(name + "_count", **labels)] += self.count
        out[_field(name + "_sum", **labels)] += self.sum


def counts_for(events: Iterable[dict], now: float | None = None) -> Counter[str]:
    """What a batch of newly written calls (their usage events) adds to the metrics (pure).
    Thousands of calls a second at peak: one pass, then one line per label set."""
    now = time.time() if now is None else now
    requests: Counter[tuple] = Counter()
    upstream: Counter[tuple] = Counter()
    tokens: Counter[tuple] = Counter()
    cost: Counter[str] = Counter()
    durations: dict[tuple[str, int], _Histogram] = {}
    ttfbs: dict[str, _Histogram] = {}
    lag = _Histogram(len(LAG_BUCKETS) + 1)
    size = len(DURATION_BUCKETS) + 1
    for event in events:
        model = event.get("model") or ""
        status = int(event.get("status") or 200)
        requests[(event.get("endpoint") or "chat", model, status)] += 1
        duration = float(event.get("duration_ms") or 0) / 1000
        labels = (model, status)
        histogram = durations.get(labels) or durations.setdefault(labels, _Histogram(size))
        histogram.add(duration, DURATION_BUCKETS)
        if event.get("ttfb_ms") is not None:
            histogram = ttfbs.get(model) or ttfbs.setdefault(model, _Histogram(size))
            histogram.add(float(event["ttfb_ms"]) / 1000, DURATION_BUCKETS)
        if status in (502, 503, 504) and event.get("provider"):
            upstream[(event["provider"], status)] += 1
        if event.get("prompt_tokens"):
            tokens[(model, "prompt")] += int(event["prompt_tokens"])
        if event.get("completion_tokens"):
            tokens[(model, "completion")] += int(event["completion_tokens"])
        if event.get("cost_nanos"):
            cost[model] += int(event["cost_nanos"])
        lag.add(max(now - float(event.get("at") or now) - duration, 0.0), LAG_BUCKETS)
    out: Counter[str] = Counter()
    for (endpoint, model, status), count in requests.items():
        out[
            _field("nexeon_requests_total", endpoint=endpoint, model=model, status=str(status))
        ] += count
    for (provider, status), count in upstream.items():
        out[_field("nexeon_upstream_errors_total", provider=provider, status=str(status))] += count
    for (model, kind), count in tokens.items():
        out[_field("nexeon_tokens_total", model=model, kind=kind)] += count
    for model, nanos in cost.items():
        out[_field("nexeon_cost_usd_total", model=model)] += nanos / 1e9
    for (model, status), histogram in durations.items():
        histogram.write(
            out,
            "nexeon_request_duration_seconds",
            DURATION_BUCKETS,
            model=model,
            status=str(status),
        )
    for model, histogram in ttfbs.items():
        histogram.write(out, "nexeon_time_to_first_byte_seconds", DURATION_BUCKETS, model=model)
    if lag.count:
        lag.write(out, "nexeon_accounting_lag_seconds", LAG_BUCKETS)
    return out


def observe(events: list[dict], client: redis.Redis | None) -> None:
    """Add newly written calls to the counters: in Redis through `client` (the drain's own
    connection), or in this process when there is no Redis."""
    if not events:
        return
    counts = counts_for(events)
    if client is None:
        _local.update(counts)
        return
    pipe = client.pipeline(transaction=False)
    for field, value in counts.items():
        if isinstance(value, float) and not value.is_integer():
            pipe.hincrbyfloat(HASH, field, value)
        else:
            pipe.hincrby(HASH, field, int(value))
    pipe.execute()


def _snapshot() -> dict[str, float]:
    from credit.stores import current

    backlog = current().usage_backlog()
    if not settings.REDIS_URL:
        values = {field: float(v) for field, v in _local.items()}
    else:
        with redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5) as client:
            stored = client.hgetall(HASH)
        values = {field.decode(): float(value) for field, value in stored.items()}
    values[_field("nexeon_usage_queue_depth")] = backlog.waiting + backlog.pending
    values[_field("nexeon_usage_dead_letters")] = backlog.dead
    age = max(time.time() - backlog.oldest_at, 0.0) if backlog.oldest_at else 0.0
    values[_field("nexeon_usage_oldest_pending_seconds")] = age
    return values


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(values: dict[str, float]) -> str:
    """Prometheus text exposition format 0.0.4 (pure): families in a fixed order, each
    histogram's buckets in ascending order before its _count and _sum."""
    samples: dict[str, list[tuple]] = {}
    for field, value in values.items():
        name, *labels = field.split(SEP)
        pairs = [tuple(label.split("=", 1)) for label in labels]
        family, rank = name, 0
        for position, suffix in enumerate(("_bucket", "_count", "_sum")):
            if name.endswith(suffix) and name.removesuffix(suffix) in HELP:
                family, rank = name.removesuffix(suffix), position
        le = dict(pairs).get("le")
        others = tuple(pair for pair in pairs if pair[0] != "le")
        bound = float("inf") if le in (None, "+Inf") else float(le)
        ordered = [*others, *((("le", le),) if le is not None else ())]
        samples.setdefault(family, []).append((others, rank, bound, name, ordered, value))
    lines: list[str] = []
    for family, (kind, help_text) in HELP.items():
        lines += [f"# HELP {family} {help_text}", f"# TYPE {family} {kind}"]
        for _, _, _, name, pairs, value in sorted(samples.get(family, []), key=lambda s: s[:3]):
            text = ",".join(f'{key}="{_escape(str(val))}"' for key, val in pairs)
            lines.append(
                f"{name}{{{text}}} {_number(value)}" if text else f"{name} {_number(value)}"
            )
    return "\n".join(lines) + "\n"


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
    return HttpResponse(
        render(_snapshot()), content_type="text/plain; version=0.0.4; charset=utf-8"
    )
