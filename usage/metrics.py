"""Operator metrics in Prometheus' text format, at /metrics behind the operator's token.

Counted by the usage pipeline from the records it writes, not on the hot path: the gateway
already emits one event per call, so its processes pay nothing for metrics, every replica
is counted in one place (a Redis hash), and a scrape of any web process sees the whole
fleet. Only newly written records are counted, so a re-drained batch is not counted
twice. Queue depth, dead letters and the age of the oldest pending event are read at
scrape time. Without Redis (embedded mode) the counters live in this process.
"""

from __future__ import annotations

import hmac
import time
from collections import Counter
from collections.abc import Iterable

import orjson
import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from usage.models import UsageRecord

HASH = "nexeon:metrics"
SEP = "\x1f"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
LAG_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)

HELP = {
    "nexeon_requests_total": ("counter", "Calls to /v1 by endpoint, model and HTTP status."),
    "nexeon_request_duration_seconds": ("histogram", "Time to the last byte, by model."),
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


def _field(name: str, **labels: str) -> str:
    return SEP.join([name, *(f"{k}={v}" for k, v in sorted(labels.items()))])


def _histogram(out: Counter, name: str, value: float, buckets, **labels: str) -> None:
    for bound in buckets:
        if value <= bound:
            out[_field(name + "_bucket", le=f"{bound:g}", **labels)] += 1
    out[_field(name + "_bucket", le="+Inf", **labels)] += 1
    out[_field(name + "_count", **labels)] += 1
    out[_field(name + "_sum", **labels)] += value


def counts_for(records: Iterable[UsageRecord], now: float | None = None) -> Counter[str]:
    """What a batch of newly written records adds to the metrics (pure)."""
    now = time.time() if now is None else now
    out: Counter[str] = Counter()
    for record in records:
        model = record.model
        out[
            _field(
                "nexeon_requests_total",
                endpoint=record.endpoint,
                model=model,
                status=str(record.status),
            )
        ] += 1
        _histogram(
            out,
            "nexeon_request_duration_seconds",
            record.duration_ms / 1000,
            DURATION_BUCKETS,
            model=model,
        )
        if record.ttfb_ms is not None:
            _histogram(
                out,
                "nexeon_time_to_first_byte_seconds",
                record.ttfb_ms / 1000,
                DURATION_BUCKETS,
                model=model,
            )
        if record.status in (502, 503, 504) and record.provider:
            out[
                _field(
                    "nexeon_upstream_errors_total",
                    provider=record.provider,
                    status=str(record.status),
                )
            ] += 1
        if record.prompt_tokens:
            out[_field("nexeon_tokens_total", model=model, kind="prompt")] += record.prompt_tokens
        if record.completion_tokens:
            out[_field("nexeon_tokens_total", model=model, kind="completion")] += (
                record.completion_tokens
            )
        if record.cost_nanos:
            out[_field("nexeon_cost_usd_total", model=model)] += record.cost_nanos / 1e9
        finished = record.created_at.timestamp() + record.duration_ms / 1000
        _histogram(out, "nexeon_accounting_lag_seconds", max(now - finished, 0.0), LAG_BUCKETS)
    return out


def observe(records: list[UsageRecord]) -> None:
    if not records:
        return
    counts = counts_for(records)
    if not settings.REDIS_URL:
        _local.update(counts)
        return
    with redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5) as client:
        pipe = client.pipeline(transaction=False)
        for field, value in counts.items():
            if isinstance(value, float) and not value.is_integer():
                pipe.hincrbyfloat(HASH, field, value)
            else:
                pipe.hincrby(HASH, field, int(value))
        pipe.execute()


def _snapshot() -> dict[str, float]:
    from usage import pipeline

    if not settings.REDIS_URL:
        values = {field: float(v) for field, v in _local.items()}
        values[_field("nexeon_usage_queue_depth")] = 0
        values[_field("nexeon_usage_dead_letters")] = 0
        values[_field("nexeon_usage_oldest_pending_seconds")] = 0
        return values
    with redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5) as client:
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(HASH)
        pipe.llen(pipeline.QUEUE)
        pipe.llen(pipeline.DEAD)
        pipe.lindex(pipeline.QUEUE, 0)
        stored, depth, dead, oldest = pipe.execute()
    values = {field.decode(): float(value) for field, value in stored.items()}
    values[_field("nexeon_usage_queue_depth")] = depth
    values[_field("nexeon_usage_dead_letters")] = dead
    age = 0.0
    if oldest:
        try:
            age = max(time.time() - float(orjson.loads(oldest).get("at") or time.time()), 0.0)
        except (ValueError, TypeError, AttributeError):
            age = 0.0
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
