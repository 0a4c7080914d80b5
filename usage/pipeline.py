"""Usage events from the gateway into PostgreSQL: every /v1 call recorded exactly once.

A call's settlement queues one event in the credit store (a Redis Stream; the in-memory
store's queue in the embedded default) with what the call was charged. The drain reads a
batch through the stream's consumer group, writes its usage records and ledger entries
(billing.services.book_usage) in one transaction, and acknowledges the batch after the
commit. The request id is unique in both tables, so a batch written twice — a drainer
killed after its commit, or a batch claimed by a second drainer while the first one's
database stalled — adds nothing, and only rows actually inserted are counted (metrics,
live feed). Any number of drainers may run at once, each on its own entries; an entry a
drainer read and did not acknowledge within USAGE_CLAIM_SECONDS is claimed by another. Events
that can never be written (malformed, an organization that no longer exists) go to a
dead-letter list instead of blocking the queue.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import ApiKey, Organization
from billing.services import UsageCharge, book_usage
from credit import connections
from credit.records import QueuedUsage
from credit.redis_store import consumer_name
from credit.store import CreditStore
from credit.stores import current as credit_store
from nexeon import bulk
from usage import live, metrics
from usage.models import UsageRecord

logger = logging.getLogger(__name__)
BATCH = 1000


def _moment(at: Any) -> datetime:
    return datetime.fromtimestamp(float(at), tz=UTC) if at else timezone.now()


def record_values(event: dict[str, Any], charge: int, recorded_at: datetime) -> dict[str, Any]:
    """A usage event as UsageRecord's columns: the one mapping the database write (`book`)
    and the live feed (`after_commit`) use."""
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
        "cost_nanos": charge,
        "ttfb_ms": event.get("ttfb_ms"),
        "duration_ms": float(event.get("duration_ms") or 0),
        "created_at": _moment(event.get("at")),
        "recorded_at": recorded_at,
    }


@dataclass(slots=True)
class Booking:
    """A queued entry whose event can be written."""

    entry: QueuedUsage
    event: dict[str, Any]

    @property
    def charge(self) -> int:
        return self.entry.charge

    def usage_charge(self) -> UsageCharge:
        event = self.event
        return UsageCharge(
            request_id=event["request_id"],
            organization_id=event["organization_id"],
            api_key_id=event.get("key_id"),
            amount_nanos=self.charge,
            created_at=_moment(event.get("at")),
            description=str(event.get("description", "")),
        )


def book(bookings: list[Booking]) -> list[Booking]:
    """Write records and ledger entries for calls not written before; returns the new
    ones. Idempotent: the same entries again write nothing."""
    unique: dict[str, Booking] = {}
    for booking in bookings:
        unique.setdefault(booking.event["request_id"], booking)
    with transaction.atomic():
        key_ids = {booking.event.get("key_id") for booking in unique.values()} - {None}
        known_keys = set(ApiKey.objects.filter(pk__in=key_ids).values_list("pk", flat=True))
        for booking in unique.values():  # a key deleted since its call is recorded keyless
            if booking.event.get("key_id") not in known_keys:
                booking.event["key_id"] = None
        now = timezone.now()
        rows = [record_values(b.event, b.charge, now) for b in unique.values()]
        if connection.vendor == "postgresql":
            inserted = set(bulk.insert_new("usage_usagerecord", "request_id", rows))
        else:
            taken = set(
                UsageRecord.objects.filter(request_id__in=list(unique)).values_list(
                    "request_id", flat=True
                )
            )
            rows = [row for row in rows if row["request_id"] not in taken]
            UsageRecord.objects.bulk_create([UsageRecord(**row) for row in rows])
            inserted = {row["request_id"] for row in rows}
        fresh = [booking for request_id, booking in unique.items() if request_id in inserted]
        book_usage(booking.usage_charge() for booking in fresh if booking.charge > 0)
        _touch_keys(fresh)
    return fresh


def _touch_keys(bookings: list[Booking]) -> None:
    """Keys' "last used" times, one UPDATE per key in the batch (never older than stored)."""
    latest: dict[int, float] = {}
    for booking in bookings:
        key_id, at = booking.event.get("key_id"), booking.event.get("at")
        if key_id and at:
            latest[key_id] = max(latest.get(key_id, 0.0), float(at))
    for key_id, at in sorted(latest.items()):
        moment = datetime.fromtimestamp(at, tz=UTC)
        ApiKey.objects.filter(pk=key_id).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=moment)
        ).update(last_used_at=moment)


POISON = (DataError, IntegrityError, ValueError, TypeError, KeyError)  # the event, not the DB


def _book_or_isolate(bookings: list[Booking]) -> tuple[list[Booking], list[QueuedUsage]]:
    """Book a batch; if the database refuses it for its data (a value it cannot store),
    book its entries one by one so that only the bad ones become dead letters and the
    queue keeps moving. A database that is down raises, and the batch is read again."""
    try:
        return book(bookings), []
    except POISON:
        logger.exception("usage pipeline: a batch was refused; writing its events one by one")
    fresh: list[Booking] = []
    dead: list[QueuedUsage] = []
    for booking in bookings:
        try:
            fresh += book([booking])
        except POISON:
            dead.append(booking.entry)
    return fresh, dead


def _triage(entries: list[QueuedUsage]) -> tuple[list[Booking], list[QueuedUsage]]:
    """Entries that can be written, and those that never can (dead letters)."""
    writable: list[Booking] = []
    dead: list[QueuedUsage] = []
    for entry in entries:
        event = entry.event
        try:
            if event is None or not event.get("request_id"):
                raise ValueError("not an event")
            event["organization_id"] = int(event["organization_id"])
        except (ValueError, KeyError, TypeError):
            dead.append(entry)
            continue
        writable.append(Booking(entry, event))
    organizations = {booking.event["organization_id"] for booking in writable}
    known = set(Organization.objects.filter(pk__in=organizations).values_list("pk", flat=True))
    dead += [b.entry for b in writable if b.event["organization_id"] not in known]
    return [b for b in writable if b.event["organization_id"] in known], dead


def drain(
    store: CreditStore | None = None, *, max_batches: int = 100, consumer: str | None = None
) -> int:
    """Write queued usage until the queue is empty (or max_batches); returns how many
    records were new. `consumer` names this drainer in the stream's group (by default its
    host and process)."""
    store = store or credit_store()
    consumer = consumer or consumer_name()
    written = 0
    for _ in range(max_batches):
        entries = store.read_usage(consumer, BATCH, int(settings.USAGE_CLAIM_SECONDS * 1000))
        if not entries:
            break
        writable, dead = _triage(entries)
        fresh, refused = _book_or_isolate(writable) if writable else ([], [])
        dead += refused
        if dead:
            logger.error("usage pipeline: %d events moved to the dead letters", len(dead))
            store.dead_letter(dead)
        store.ack_usage(entries)
        after_commit(fresh)
        written += len(fresh)
    return written


def after_commit(bookings: list[Booking]) -> None:
    """Best effort, never blocking the pipeline: operator metrics and the live feed."""
    events = [{**booking.event, "cost_nanos": booking.charge} for booking in bookings]
    try:
        metrics.observe(events, connections.sync() if connections.configured() else None)
    except Exception:
        logger.exception("usage metrics update failed")
    try:
        watched = live.watched({int(event["organization_id"]) for event in events})
        if watched:
            now = timezone.now()
            live.publish(
                [
                    UsageRecord(**record_values(event, event["cost_nanos"], now))
                    for event in events
                    if event["organization_id"] in watched
                ]
            )
    except Exception:
        logger.exception("live usage feed publish failed")


def pending() -> int:
    backlog = credit_store().usage_backlog()
    return backlog.waiting + backlog.pending
