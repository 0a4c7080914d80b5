"""Reads for the billing page: credits in and out (never usage), with Stripe receipts."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Q, QuerySet

from accounts.models import Organization
from billing.models import EntryKind, LedgerEntry, Purchase

CENT = Decimal("0.01")


def history_entries(*, organization: Organization) -> QuerySet[LedgerEntry]:
    """Purchases, grants, refunds and adjustments of one organization, newest first."""
    return organization.ledger_entries.exclude(kind=EntryKind.USAGE).order_by("-created_at", "-pk")


def receipt_urls(*, organization: Organization, entries: list[LedgerEntry]) -> dict[int, str]:
    """Entry id -> Stripe receipt URL, for the purchase and refund entries whose purchase
    has one (a refund shows on the receipt of the charge it refunds)."""
    sessions: dict[str, int] = {}
    charges: dict[str, list[int]] = {}
    for entry in entries:
        parts = entry.reference.split(":")
        if entry.reference.startswith("stripe:checkout:"):
            sessions[parts[2]] = entry.pk
        elif entry.reference.startswith("stripe:refund:") and len(parts) == 4:
            charges.setdefault(parts[2], []).append(entry.pk)
    if not sessions and not charges:
        return {}
    purchases = (
        Purchase.objects.filter(organization=organization)
        .filter(Q(stripe_checkout_session_id__in=sessions) | Q(stripe_charge_id__in=charges))
        .exclude(receipt_url="")
    )
    urls: dict[int, str] = {}
    for purchase in purchases:
        if purchase.stripe_checkout_session_id in sessions:
            urls[sessions[purchase.stripe_checkout_session_id]] = purchase.receipt_url
        for entry_id in charges.get(purchase.stripe_charge_id or "", []):
            urls[entry_id] = purchase.receipt_url
    return urls


def usd_exact(nanos: int) -> str:
    """Dollars as an exact decimal string: cents when exact ("-12.50"), else every digit
    down to the nano-dollar ("0.000123456"); never a float, never an exponent."""
    value = Decimal(nanos).scaleb(-9)
    value = value.quantize(CENT) if value == value.quantize(CENT) else value.normalize()
    return format(value, "f")
