"""Stripe's webhook events: each verified event is recorded once and handed to its handler."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.utils import timezone

from billing import disputes, purchases
from billing.models import StripeEvent

HANDLERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "checkout.session.completed": purchases.checkout_completed,
    "checkout.session.async_payment_succeeded": purchases.checkout_completed,
    "checkout.session.expired": purchases.checkout_expired,
    "charge.refunded": purchases.charge_refunded,
    "refund.created": purchases.refund_created,
    "charge.dispute.created": disputes.dispute_created,
    "charge.dispute.closed": disputes.dispute_closed,
}


def stripe_event_process(event: Mapping[str, Any]) -> str:
    """Record a verified event and run its handler unless that event id already ran.

    The handlers are idempotent on their own (ledger references, row locks), so two
    deliveries racing past the processed flag still book once.
    """
    record, _ = StripeEvent.objects.get_or_create(
        event_id=event["id"], defaults={"type": str(event["type"])[:100]}
    )
    if record.processed:
        return "duplicate event"
    handler = HANDLERS.get(event["type"])
    outcome = handler(event["data"]["object"]) if handler else "ignored"
    StripeEvent.objects.filter(pk=record.pk).update(processed=True, processed_at=timezone.now())
    return outcome
