"""The billing page (buy credits, history, CSV) and Stripe's webhook."""

from __future__ import annotations

import csv
import json
import logging
from datetime import UTC

import stripe
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import DatabaseError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from accounts.current import can_manage, current_membership, page_context
from accounts.requests import AuthenticatedHttpRequest
from billing import purchases, stripe_events
from billing.forms import PurchaseForm, presets, purchase_bounds
from billing.history import history_entries, receipt_urls, usd_exact
from billing.models import DisputeStatus, Purchase
from billing.money import cents_to_nanos, format_usd
from billing.selectors import dispute_flag, organization_balance_nanos

logger = logging.getLogger(__name__)
HISTORY_PAGE_SIZE = 25
WEBHOOK_TOLERANCE_SECONDS = 300


@login_required
def billing_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    membership = current_membership(request)
    organization = membership.organization
    can_buy = can_manage(membership)
    flag = dispute_flag(organization.pk)
    form = PurchaseForm()
    if request.method == "POST":
        if not can_buy:
            raise PermissionDenied("Only owners and admins buy credits.")
        if flag is not None:
            messages.error(
                request,
                "Purchases are paused while a payment dispute is open."
                if flag.status == DisputeStatus.OPEN
                else "Purchases are paused: a payment dispute was lost. "
                "The operator can lift this once it is settled.",
            )
            return redirect("billing")
        if not purchases.stripe_configured():
            messages.error(request, "Purchases are not configured on this server.")
            return redirect("billing")
        form = PurchaseForm(request.POST)
        if form.is_valid():
            success = request.build_absolute_uri(reverse("billing_success"))
            try:
                url = purchases.checkout_start(
                    organization=organization,
                    user=request.user,
                    amount_cents=form.cleaned_data["amount_cents"],
                    # Stripe puts the session id in place of the template.
                    success_url=success + "?session_id={CHECKOUT_SESSION_ID}",
                    cancel_url=request.build_absolute_uri(reverse("billing_cancelled")),
                )
            except purchases.CheckoutUnavailable:
                messages.error(request, "Stripe did not answer; nothing was charged. Try again.")
                return redirect("billing")
            return HttpResponseRedirect(url, status=303)
    page = Paginator(history_entries(organization=organization), HISTORY_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    receipts = receipt_urls(organization=organization, entries=list(page))
    low, high = purchase_bounds()
    return render(
        request,
        "dashboard/billing.html",
        page_context(
            request,
            membership,
            balance=format_usd(organization_balance_nanos(organization=organization)),
            configured=purchases.stripe_configured(),
            can_buy=can_buy,
            flag=flag,
            flag_amount=format_usd(cents_to_nanos(flag.amount_cents)) if flag else "",
            form=form,
            presets=presets(),
            minimum=low,
            maximum=high,
            page=page,
            rows=[
                (entry, format_usd(entry.amount_nanos, 2), receipts.get(entry.pk)) for entry in page
            ],
        ),
    )


@login_required
def checkout_success(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Where Stripe sends the buyer back. Credits come from the webhook, never from here."""
    membership = current_membership(request)
    purchase = None
    session_id = request.GET.get("session_id", "")
    if session_id:
        # Any organization of this user (they may have switched since); nobody else's.
        purchase = (
            Purchase.objects.filter(
                stripe_checkout_session_id=session_id,
                organization__memberships__user=request.user,
            )
            .select_related("organization")
            .first()
        )
        if purchase is None:
            raise Http404("No such purchase.")
    return render(
        request,
        "dashboard/billing_return.html",
        page_context(
            request,
            membership,
            outcome="success",
            purchase=purchase,
            amount=format_usd(cents_to_nanos(purchase.amount_cents)) if purchase else None,
        ),
    )


@login_required
def checkout_cancelled(request: AuthenticatedHttpRequest) -> HttpResponse:
    membership = current_membership(request)
    return render(
        request,
        "dashboard/billing_return.html",
        page_context(request, membership, outcome="cancelled"),
    )


def _csv_text(value: str) -> str:
    """Text a spreadsheet would run as a formula is prefixed so it stays text."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@login_required
def history_csv(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = current_membership(request).organization
    entries = list(history_entries(organization=organization))
    receipts = receipt_urls(organization=organization, entries=entries)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="nexeon-billing-{organization.slug}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(["date_utc", "kind", "description", "amount_usd", "reference", "receipt_url"])
    for entry in entries:
        writer.writerow(
            [
                entry.created_at.astimezone(UTC).isoformat(),
                entry.kind,
                _csv_text(entry.description),
                usd_exact(entry.amount_nanos),
                _csv_text(entry.reference),
                receipts.get(entry.pk, ""),
            ]
        )
    return response


# --- Stripe's webhook ---------------------------------------------------------------------


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": {"message": message}}, status=status)


def _event_shape_ok(event: object) -> bool:
    if not isinstance(event, dict):
        return False
    data = event.get("data")
    return (
        isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and isinstance(data, dict)
        and isinstance(data.get("object"), dict)
        and isinstance(data["object"].get("id"), str)
    )


@csrf_exempt
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    """Verify, record once, act. Stripe retries anything but a 2xx for three days."""
    if request.method != "POST":
        return _error(405, "Use POST.")
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        # Unverifiable events are never acted on; 503 makes Stripe retry once configured.
        return _error(503, "Stripe webhooks are not configured on this server.")
    try:
        payload = request.body.decode("utf-8")
        stripe.WebhookSignature.verify_header(
            payload,
            request.headers.get("Stripe-Signature"),
            secret,
            tolerance=WEBHOOK_TOLERANCE_SECONDS,
        )
    except (UnicodeDecodeError, stripe.SignatureVerificationError):
        return _error(400, "Invalid or missing Stripe-Signature.")
    try:
        event = json.loads(payload)
    except ValueError:
        return _error(400, "The body is not JSON.")
    if not _event_shape_ok(event):
        return _error(400, "The body is not a Stripe event.")
    try:
        outcome = stripe_events.stripe_event_process(event)
    except purchases.RetryLater as exc:
        logger.warning("Stripe event %s postponed: %s", event["id"], exc)
        return _error(503, "Stripe could not be reached; retry later.")
    except DatabaseError:
        logger.exception("Stripe event %s: database error", event["id"])
        return _error(500, "Temporary database error; retry later.")
    except Exception:
        # A bug, not a transient fault: a retry would fail the same way. The event stays
        # unprocessed in StripeEvent, so resending it from Stripe runs it again.
        logger.exception("Stripe event %s could not be processed", event["id"])
        return JsonResponse({"received": True, "processed": False})
    return JsonResponse({"received": True, "outcome": outcome})
