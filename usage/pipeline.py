"""Usage events from the gateway into PostgreSQL: every /v1 call recorded exactly once.

The gateway appends one JSON event per call to a Redis list before it answers (for a
charged call, in the same Lua script that settles its credit). A Celery task (beat, every
second) drains the list in batches: read a batch (LRANGE), write its usage records and
ledger entries in one transaction, then trim what it wrote (LTRIM). The request id is
unique in both tables, so a batch written twice — a worker killed after the commit and
before the trim, a redelivered task — adds nothing. A batch that could not be written (the
database is down) stays in Redis and is retried. One drainer at a time (a Redis lock that
each batch renews) keeps batches in order. Events that can never be written (malformed,
an organization that no longer exists) go to a dead-letter list instead of blocking the
queue.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson
import redis
from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import ApiKey, Organization
from billing.models import EntryKind, LedgerEntry
from usage import fast_insert, live, metrics
from usage.models import UsageRecord

logger = logging.getLogger(__name__)
QUEUE = "nexeon:usage:events"
DEAD = "nexeon:usage:dead"
LOCK = "nexeon:usage:drain-lock"
BATCH = 1000
LOCK_SECONDS = 30


def redis_connection() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=10)


def _moment(at: Any) -> datetime:
    return datetime.fromtimestamp(float(at), tz=UTC) if at else timezone.now()


def record_values(event: dict[str, Any], recorded_at: datetime) -> dict[str, Any]:
    """A usage event as UsageRecord's columns: the one mapping both write paths use."""
    return {
        "request_id": event["request_id"],
        "organization_id": int(event["organization_id"]),
        "api_key_id": event.get("key_id"),
        "endpoint": event.get("endpoint") or "chat",
        "model": str(event.get("model") or "")[:200],
        "provider": str(event.get("provider") or "")[:64],
        "status": int(event.get("status") or 200),
        "error_code": str(event.get("error_code") or "")[:64],
        "streamed": bool(event.get("streamed")),
        "client_disconnected": bool(event.get("disconnected")),
        "prompt_tokens": int(event.get("prompt_tokens") or 0),
        "completion_tokens": int(event.get("completion_tokens") or 0),
        "cached_tokens": int(event.get("cached_tokens") or 0),
        "cost_nanos": int(event.get("cost_nanos") or 0),
        "ttfb_ms": event.get("ttfb_ms"),
        "duration_ms": float(event.get("duration_ms") or 0),
        "created_at": _moment(event.get("at")),
        "recorded_at": recorded_at,
    }


def entry_values(event: dict[str, Any]) -> dict[str, Any]:
    """A charged event as its ledger entry's columns."""
    return {
        "organization_id": int(event["organization_id"]),
        "kind": EntryKind.USAGE.value,
        "amount_nanos": -int(event["cost_nanos"]),
        "reference": f"usage:{event['request_id']}",
        "api_key_id": event.get("key_id"),
        "description": str(event.get("description", ""))[:300],
        # When the call happened, not when it was drained: month boundaries stay exact.
        "created_at": _moment(event.get("at")),
    }


def record_for(event: dict[str, Any], recorded_at: datetime) -> UsageRecord:
    return UsageRecord(**record_values(event, recorded_at))


def entry_for(event: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry(**entry_values(event))


def book(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Write records and ledger entries for events not written before; returns the new
    events. Idempotent: the same events again write nothing."""
    unique: dict[str, dict[str, Any]] = {}
    for event in events:
        unique.setdefault(event["request_id"], event)
    with transaction.atomic():
        written = set(
            UsageRecord.objects.filter(request_id__in=list(unique)).values_list(
                "request_id", flat=True
            )
        )
        fresh = [event for rid, event in unique.items() if rid not in written]
        if not fresh:
            return []
        key_ids = {event.get("key_id") for event in fresh} - {None}
        known_keys = set(ApiKey.objects.filter(pk__in=key_ids).values_list("pk", flat=True))
        for event in fresh:  # a key deleted since its call is recorded keyless
            if event.get("key_id") not in known_keys:
                event["key_id"] = None
        now = timezone.now()
        charged = [event for event in fresh if int(event.get("cost_nanos") or 0) > 0]
        if connection.vendor == "postgresql":
            fast_insert.insert(
                "usage_usagerecord", "request_id", [record_values(e, now) for e in fresh]
            )
            fast_insert.insert(
                "billing_ledgerentry", "reference", [entry_values(e) for e in charged]
            )
        else:
            UsageRecord.objects.bulk_create([record_for(e, now) for e in fresh])
            LedgerEntry.objects.bulk_create([entry_for(e) for e in charged], ignore_conflicts=True)
        _touch_keys(fresh)
    return fresh


def _touch_keys(events: list[dict[str, Any]]) -> None:
    """Keys' "last used" times, one UPDATE per key in the batch (never older than stored)."""
    latest: dict[int, float] = {}
    for event in events:
        if event.get("key_id") and event.get("at"):
            latest[event["key_id"]] = max(latest.get(event["key_id"], 0.0), float(event["at"]))
    for key_id, at in latest.items():
        moment = datetime.fromtimestamp(at, tz=UTC)
        ApiKey.objects.filter(pk=key_id).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=moment)
        ).update(last_used_at=moment)


POISON = (DataError, IntegrityError, ValueError, TypeError)  # the event, not the database


def _book_or_isolate(
    events: list[dict[str, Any]], items: list[bytes]
) -> tuple[list[dict[str, Any]], list[bytes]]:
    """Book a batch; if the database refuses it for its data (a value it cannot store),
    book its events one by one so that only the bad ones become dead letters and the
    queue keeps moving. A database that is down raises, and the batch is retried later."""
    try:
        return book(events), []
    except POISON:
        logger.exception("usage pipeline: a batch was refused; writing its events one by one")
    fresh: list[dict[str, Any]] = []
    dead: list[bytes] = []
    for event, item in zip(events, items, strict=True):
        try:
            fresh += book([event])
        except POISON:
            dead.append(item)
    return fresh, dead


def _parse(raw: list[bytes]) -> tuple[list[dict[str, Any]], list[bytes], list[bytes]]:
    """Events that can be written (and their raw items), and the raw items that never can
    (dead letters)."""
    parsed: list[tuple[bytes, dict[str, Any]]] = []
    dead: list[bytes] = []
    for item in raw:
        try:
            event = orjson.loads(item)
            if not isinstance(event, dict) or not event.get("request_id"):
                raise ValueError("not an event")
            event["organization_id"] = int(event["organization_id"])
        except (ValueError, KeyError, TypeError):
            dead.append(item)
            continue
        parsed.append((item, event))
    organizations = {event["organization_id"] for _, event in parsed}
    known = set(Organization.objects.filter(pk__in=organizations).values_list("pk", flat=True))
    events, items = [], []
    for item, event in parsed:
        if event["organization_id"] in known:
            events.append(event)
            items.append(item)
        else:
            dead.append(item)
    return events, items, dead


def book_now(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Embedded mode (no Redis): write at once, as the drain would."""
    fresh = book(events)
    after_commit(fresh, None)
    return fresh


def after_commit(events: list[dict[str, Any]], client: redis.Redis | None) -> None:
    """Best effort, never blocking the pipeline: operator metrics and the live feed."""
    try:
        metrics.observe(events, client)
    except Exception:
        logger.exception("usage metrics update failed")
    try:
        watched = live.watched({int(event["organization_id"]) for event in events})
        if watched:
            now = timezone.now()
            live.publish([record_for(e, now) for e in events if e["organization_id"] in watched])
    except Exception:
        logger.exception("live usage feed publish failed")


def drain(*, max_batches: int = 100) -> int:
    """Write queued events until the queue is empty (or max_batches); returns how many
    records were new."""
    client = redis_connection()
    with client:
        if not client.set(LOCK, "1", nx=True, ex=LOCK_SECONDS):
            return 0  # another drainer is at it
        try:
            written = 0
            for _ in range(max_batches):
                raw = client.lrange(QUEUE, 0, BATCH - 1)
                if not raw:
                    break
                events, items, dead = _parse(raw)
                fresh, refused = _book_or_isolate(events, items) if events else ([], [])
                dead += refused
                if dead:
                    logger.error("usage pipeline: %d events moved to %s", len(dead), DEAD)
                    client.rpush(DEAD, *dead)
                client.ltrim(QUEUE, len(raw), -1)
                client.expire(LOCK, LOCK_SECONDS)
                after_commit(fresh, client)
                written += len(fresh)
            return written
        finally:
            client.delete(LOCK)


def pending() -> int:
    with redis_connection() as client:
        return int(client.llen(QUEUE))
