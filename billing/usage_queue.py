"""Usage events from the gateway to the ledger, durable and booked exactly once.

The gateway appends one JSON event per charged call to a Redis list (one round trip on the
hot path). A Celery task drains the list in batches: it reads a batch, books every event
with its request id as the ledger reference (a unique column, so a replay books nothing),
then trims what it booked. A worker that dies mid-batch leaves the events in the list; the
next drain books the ones that were missed and skips the rest. One drainer at a time
(a Redis lock) keeps batches from overlapping.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson
import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils.timezone import now

from accounts.models import ApiKey
from billing.models import EntryKind, LedgerEntry

logger = logging.getLogger(__name__)
QUEUE = "nexeon:usage:events"
LOCK = "nexeon:usage:drain-lock"
BATCH = 500
LOCK_SECONDS = 60


def connection() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=10)


def entry_for(event: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        organization_id=event["organization_id"],
        kind=EntryKind.USAGE,
        amount_nanos=-int(event["cost_nanos"]),
        reference=f"usage:{event['request_id']}",
        api_key_id=event.get("key_id"),
        description=str(event.get("description", ""))[:300],
        # When the call happened, not when it was drained: month boundaries stay exact.
        created_at=datetime.fromtimestamp(event["at"], tz=UTC) if event.get("at") else now(),
    )


def book(events: list[dict[str, Any]]) -> int:
    """Book events idempotently in one statement; returns how many were new."""
    charged = [event for event in events if int(event["cost_nanos"]) > 0]
    if not charged:
        return 0
    references = [f"usage:{event['request_id']}" for event in charged]
    # A key deleted since its call must not make the batch fail for ever: book it keyless.
    key_ids = {event.get("key_id") for event in charged} - {None}
    known = set(ApiKey.objects.filter(pk__in=key_ids).values_list("pk", flat=True))
    charged = [
        {**event, "key_id": event.get("key_id") if event.get("key_id") in known else None}
        for event in charged
    ]
    with transaction.atomic():
        before = LedgerEntry.objects.filter(reference__in=references).count()
        LedgerEntry.objects.bulk_create(
            [entry_for(event) for event in charged], ignore_conflicts=True
        )
        after = LedgerEntry.objects.filter(reference__in=references).count()
        _touch_keys(charged)
    return after - before


def _touch_keys(events: list[dict[str, Any]]) -> None:
    """Keys' "last used" times, one UPDATE per key in the batch (never older than stored)."""
    latest: dict[int, float] = {}
    for event in events:
        if event.get("key_id") and event.get("at"):
            latest[event["key_id"]] = max(latest.get(event["key_id"], 0.0), event["at"])
    for key_id, at in latest.items():
        moment = datetime.fromtimestamp(at, tz=UTC)
        ApiKey.objects.filter(pk=key_id).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=moment)
        ).update(last_used_at=moment)


def drain(*, max_batches: int = 100) -> int:
    """Book queued events until the queue is empty (or max_batches); returns events booked."""
    client = connection()
    with client:
        if not client.set(LOCK, "1", nx=True, ex=LOCK_SECONDS):
            return 0  # another drainer is at it
        try:
            booked = 0
            for _ in range(max_batches):
                raw = client.lrange(QUEUE, 0, BATCH - 1)
                if not raw:
                    break
                booked += book([orjson.loads(item) for item in raw])
                client.ltrim(QUEUE, len(raw), -1)
            return booked
        finally:
            client.delete(LOCK)


def pending() -> int:
    with connection() as client:
        return int(client.llen(QUEUE))
