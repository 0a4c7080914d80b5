"""Reads on the ledger. Balances and key spend come from the running totals the ledger's
writer keeps (one row each, whatever the ledger's length)."""

from __future__ import annotations

from datetime import date

from django.db.models import Count, Q, Sum
from django.utils import timezone

from accounts.models import Organization
from billing.models import (
    DisputeStatus,
    EntryKind,
    KeyMonthSpend,
    LedgerEntry,
    OrganizationBalance,
    StripeDispute,
)
from credit.records import LedgerFigures


def ledger_figures(organization_id: int) -> LedgerFigures:
    """The organization's credits (with their sequence number) and usage, as booked."""
    row = OrganizationBalance.objects.filter(organization_id=organization_id).first()
    if row is None:
        return LedgerFigures(credits=0, credits_seq=0, usage=0)
    return LedgerFigures(row.credits_nanos, row.credits_seq, row.usage_nanos)


def organization_balance_nanos(*, organization: Organization) -> int:
    return organization_balance_nanos_by_id(organization.pk)


def organization_balance_nanos_by_id(organization_id: int) -> int:
    figures = ledger_figures(organization_id)
    return figures.credits - figures.usage


def organization_credit_totals(organization_id: int) -> tuple[int, int]:
    """(credits, usage) in nano-dollars, OpenRouter's meaning: credits is everything bought
    or granted net of refunds and adjustments, usage everything spent; balance = difference.
    """
    figures = ledger_figures(organization_id)
    return figures.credits, figures.usage


def organization_month_usage(*, organization: Organization) -> tuple[int, int]:
    """(nano-dollars spent, charged requests) since the start of this month (UTC)."""
    totals = LedgerEntry.objects.filter(
        organization=organization, kind=EntryKind.USAGE, created_at__gte=month_start()
    ).aggregate(spent=Sum("amount_nanos"), requests=Count("pk"))
    return -(totals["spent"] or 0), totals["requests"]


def month_start():
    """The first instant of this calendar month, UTC (spend limits reset then)."""
    return timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_of(month: str) -> date:
    """A YYYYMM month (credit.keys.month_of) as its first day."""
    return date(int(month[:4]), int(month[4:]), 1)


def key_month_usage_nanos(key_id: int, month: str | None = None) -> int:
    """Nano-dollars spent through this key in a month (YYYYMM; default this one, UTC)."""
    first = month_of(month) if month else month_start().date()
    row = KeyMonthSpend.objects.filter(api_key_id=key_id, month=first).first()
    return row.usage_nanos if row else 0


def key_usage_nanos(key_id: int) -> int:
    """Nano-dollars ever spent through this key (one row per month it was used)."""
    total = KeyMonthSpend.objects.filter(api_key_id=key_id).aggregate(total=Sum("usage_nanos"))
    return int(total["total"] or 0)


def dispute_flag(organization_id: int) -> StripeDispute | None:
    """The dispute that flags the organization (open, or lost and not cleared by an
    operator), oldest first; None when it is not flagged (billing/disputes.py)."""
    return (
        StripeDispute.objects.filter(organization_id=organization_id)
        .filter(
            Q(status=DisputeStatus.OPEN) | Q(status=DisputeStatus.LOST, cleared_at__isnull=True)
        )
        .order_by("opened_at", "pk")
        .first()
    )
