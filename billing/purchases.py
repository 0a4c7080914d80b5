"""Buying credits with Stripe Checkout: start a session, grant once when paid, follow refunds
(disputes: billing/disputes.py; the webhook's event table: billing/stripe_events.py).

Exactly once, whatever order or how often Stripe delivers its events:

* a paid session books one PURCHASE entry, reference ``stripe:checkout:<session id>``, for
  the amount of OUR purchase row; Stripe's ``amount_total`` must match it or nothing is booked;
* a refund takes back the difference between the charge's cumulative ``amount_refunded`` and
  what the purchase has refunded so far, under a row lock, reference
  ``stripe:refund:<charge id>:<cumulative cents>``; an older or repeated event books nothing;
  never below zero: credit already spent is the purchase's ``shortfall_nanos``;
  ``refund.created`` reads the charge from Stripe and follows the same rule;
* a refund whose purchase is not yet known here as paid (it overtook
  ``checkout.session.completed``) looks the session up in Stripe and grants it first, so a
  refund is never booked without its purchase.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import stripe
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Organization, User
from billing.models import EntryKind, Purchase, PurchaseStatus
from billing.money import cents_to_nanos, format_usd
from billing.services import credits_take_back, ledger_book

logger = logging.getLogger(__name__)

PRODUCT_NAME = "NeXeonAI credits"
CURRENCY = "usd"
STRIPE_TIMEOUT = (5, 30)  # seconds to connect, to read: a dashboard request waits on it


class CheckoutUnavailable(Exception):
    """Stripe is not configured or refused to create the session; nothing was charged."""


class RetryLater(Exception):
    """Stripe could not be asked something an event needs; Stripe will redeliver the event."""


def stripe_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


@lru_cache(maxsize=4)
def _client(secret_key: str, api_base: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        secret_key,
        base_addresses={"api": api_base},
        max_network_retries=2,
        http_client=stripe.RequestsClient(timeout=STRIPE_TIMEOUT),
    )


def stripe_client() -> stripe.StripeClient:
    """One client per configuration (tests point STRIPE_API_BASE at a local fake)."""
    if not settings.STRIPE_SECRET_KEY:
        raise CheckoutUnavailable("STRIPE_SECRET_KEY is not set")
    return _client(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE)


def as_dict(value: Any) -> dict[str, Any]:
    """Events arrive as JSON dicts, API answers as StripeObjects: handle both as dicts."""
    return value.to_dict() if isinstance(value, stripe.StripeObject) else dict(value)


def _id(value: Any) -> str | None:
    """An expandable field: an id, an object with an id, or nothing."""
    if isinstance(value, Mapping):
        return value.get("id")
    return value or None


# --- starting a purchase ------------------------------------------------------------------


def checkout_start(
    *,
    organization: Organization,
    user: User,
    amount_cents: int,
    success_url: str,
    cancel_url: str,
) -> str:
    """Create a pending purchase and its Stripe Checkout Session; returns the session's URL."""
    if amount_cents <= 0:
        raise ValueError("a purchase must be positive")
    client = stripe_client()
    purchase = Purchase.objects.create(
        organization=organization, created_by=user, amount_cents=amount_cents, currency=CURRENCY
    )
    metadata = {"organization_id": str(organization.pk), "purchase_id": str(purchase.pk)}
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": CURRENCY,
                    "unit_amount": amount_cents,
                    "product_data": {"name": PRODUCT_NAME},
                },
            }
        ],
        "client_reference_id": str(organization.pk),
        "customer_email": user.email,
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    # One key for this purchase, so the SDK's retries cannot open a second session.
    options = {"idempotency_key": f"nexeon-purchase-{purchase.pk}-{secrets.token_hex(8)}"}
    try:
        session = client.v1.checkout.sessions.create(params, options)  # type: ignore[arg-type]
    except stripe.StripeError as exc:
        # Nobody saw a payment page for this row, so nothing can ever be paid against it.
        purchase.delete()
        logger.warning("Stripe refused a checkout session: %s", exc.user_message or exc)
        raise CheckoutUnavailable(str(exc)) from exc
    Purchase.objects.filter(pk=purchase.pk).update(stripe_checkout_session_id=session.id)
    return session.url  # type: ignore[return-value]  # (a hosted checkout session has one)


# --- events -------------------------------------------------------------------------------


def _mismatch(purchase: Purchase, session: Mapping[str, Any]) -> str | None:
    """Why this paid session must not credit this purchase, if it must not."""
    if session.get("mode") != "payment":
        return f"mode {session.get('mode')!r}"
    if session.get("amount_total") != purchase.amount_cents:
        return f"amount_total {session.get('amount_total')} != {purchase.amount_cents}"
    if (session.get("currency") or "").lower() != purchase.currency:
        return f"currency {session.get('currency')!r} != {purchase.currency!r}"
    if session.get("client_reference_id") != str(purchase.organization_id):
        return "client_reference_id names another organization"
    return None


def checkout_completed(session: Mapping[str, Any]) -> str:
    """checkout.session.completed and .async_payment_succeeded: credit a paid session once."""
    session = as_dict(session)
    session_id = session["id"]
    intent_id = _id(session.get("payment_intent"))
    with transaction.atomic():
        purchase = (
            Purchase.objects.select_for_update()
            .filter(stripe_checkout_session_id=session_id)
            .first()
        )
        if purchase is None:
            logger.warning("Stripe session %s matches no purchase; nothing booked", session_id)
            return "unknown session"
        if intent_id and not purchase.stripe_payment_intent_id:
            # Kept even while unpaid: a refund finds its purchase by it.
            purchase.stripe_payment_intent_id = intent_id
            purchase.save(update_fields=["stripe_payment_intent_id"])
        if session.get("payment_status") != "paid":
            return "unpaid"  # an async method: booked on async_payment_succeeded
        problem = _mismatch(purchase, session)
        if problem:
            logger.error(
                "Stripe session %s refused for purchase %s: %s", session_id, purchase.pk, problem
            )
            return "refused"
        amount = cents_to_nanos(purchase.amount_cents)
        _, created = ledger_book(
            organization=purchase.organization,
            kind=EntryKind.PURCHASE,
            amount_nanos=amount,
            reference=f"stripe:checkout:{session_id}",
            description=f"Credits purchase ({format_usd(amount)})",
        )
        purchase.status = PurchaseStatus.PAID
        purchase.paid_at = purchase.paid_at or timezone.now()
        purchase.save(update_fields=["status", "paid_at"])
    if not purchase.receipt_url and purchase.stripe_payment_intent_id:
        _record_receipt(purchase)  # after the commit: the grant never waits on it
    return "granted" if created else "already granted"


def _record_receipt(purchase: Purchase) -> None:
    """Best effort: the receipt link is a convenience, so a failure here is only logged."""
    try:
        intent = stripe_client().v1.payment_intents.retrieve(
            purchase.stripe_payment_intent_id,  # type: ignore[arg-type]
            {"expand": ["latest_charge"]},
        )
        charge = as_dict(intent).get("latest_charge")
    except Exception as exc:  # the grant is already committed; never undo it for a link
        logger.warning("receipt of purchase %s not fetched: %s", purchase.pk, exc)
        return
    if not isinstance(charge, dict):
        return
    Purchase.objects.filter(pk=purchase.pk).update(
        receipt_url=charge.get("receipt_url") or "", stripe_charge_id=charge.get("id")
    )


def checkout_expired(session: Mapping[str, Any]) -> str:
    updated = Purchase.objects.filter(
        stripe_checkout_session_id=session["id"], status=PurchaseStatus.PENDING
    ).update(status=PurchaseStatus.EXPIRED)
    return "expired" if updated else "not pending"


def _session_for_intent(intent_id: str, purchase: Purchase | None) -> dict[str, Any] | None:
    try:
        sessions = stripe_client().v1.checkout.sessions
        if purchase is not None and purchase.stripe_checkout_session_id:
            return as_dict(sessions.retrieve(purchase.stripe_checkout_session_id))
        found = sessions.list({"payment_intent": intent_id, "limit": 1})
    except (stripe.StripeError, CheckoutUnavailable) as exc:
        raise RetryLater(f"could not look up the session of {intent_id}: {exc}") from exc
    return as_dict(found.data[0]) if found.data else None


def _paid_purchase_for_intent(intent_id: str) -> Purchase | None:
    purchase = Purchase.objects.filter(stripe_payment_intent_id=intent_id).first()
    if purchase is not None and purchase.status == PurchaseStatus.PAID:
        return purchase
    # The refund overtook the completion event: grant from Stripe's own session first.
    session = _session_for_intent(intent_id, purchase)
    if session is None:
        return None
    checkout_completed(session)
    return Purchase.objects.filter(
        stripe_payment_intent_id=intent_id, status=PurchaseStatus.PAID
    ).first()


def paid_purchase_of(obj: Mapping[str, Any]) -> Purchase | None:
    """The paid purchase a charge, refund or dispute is about (by its PaymentIntent, else its
    charge id)."""
    intent_id = _id(obj.get("payment_intent"))
    if intent_id:
        return _paid_purchase_for_intent(intent_id)
    charge_id = _id(obj.get("charge"))
    if not charge_id:
        return None
    return Purchase.objects.filter(stripe_charge_id=charge_id, status=PurchaseStatus.PAID).first()


def charge_refunded(charge: Mapping[str, Any]) -> str:
    """charge.refunded: take back what was newly refunded, from Stripe's cumulative amount,
    never below zero (the part already spent is recorded as the purchase's shortfall)."""
    charge = as_dict(charge)
    charge_id = charge["id"]
    cumulative = int(charge.get("amount_refunded") or 0)
    found = paid_purchase_of({"payment_intent": charge.get("payment_intent"), "charge": charge_id})
    if found is None:
        logger.warning("refund of charge %s matches no paid purchase; nothing booked", charge_id)
        return "unknown charge"
    with transaction.atomic():
        purchase = Purchase.objects.select_for_update().get(pk=found.pk)
        if (charge.get("currency") or "").lower() != purchase.currency or not (
            0 <= cumulative <= purchase.amount_cents
        ):
            logger.error(
                "refund of charge %s refused for purchase %s: %s %s refunded of %s",
                *(
                    charge_id,
                    purchase.pk,
                    cumulative,
                    charge.get("currency"),
                    purchase.amount_cents,
                ),
            )
            return "refused"
        if cumulative <= purchase.refunded_cents:
            return "already refunded"  # a repeated event, or one older than what is booked
        amount = cents_to_nanos(cumulative - purchase.refunded_cents)
        outcome = credits_take_back(
            organization=purchase.organization,
            kind=EntryKind.REFUND,
            amount_nanos=amount,
            reference=f"stripe:refund:{charge_id}:{cumulative}",
            description=f"Refund ({format_usd(amount)})",
        )
        purchase.refunded_cents = cumulative
        purchase.shortfall_nanos += outcome.shortfall
        purchase.stripe_charge_id = purchase.stripe_charge_id or charge_id
        purchase.receipt_url = purchase.receipt_url or charge.get("receipt_url") or ""
        purchase.save(
            update_fields=["refunded_cents", "shortfall_nanos", "stripe_charge_id", "receipt_url"]
        )
    if outcome.shortfall:
        logger.warning(
            "refund of charge %s: %s already spent, not taken back",
            charge_id,
            format_usd(outcome.shortfall),
        )
    return "refunded" if not outcome.shortfall else "refunded, part already spent"


def refund_created(refund: Mapping[str, Any]) -> str:
    """refund.created: the refund names its charge, whose cumulative `amount_refunded` is
    what counts; asking Stripe for the charge makes this and charge.refunded (which Stripe
    sends for the same refund) book it once between them."""
    refund = as_dict(refund)
    charge_id = _id(refund.get("charge"))
    if not charge_id:
        return "no charge"
    try:
        charge = stripe_client().v1.charges.retrieve(charge_id)
    except (stripe.StripeError, CheckoutUnavailable) as exc:
        raise RetryLater(f"could not look up charge {charge_id}: {exc}") from exc
    return charge_refunded(as_dict(charge))
