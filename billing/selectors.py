"""Reads on the ledger."""

from __future__ import annotations

from django.db.models import Count, Q, Sum
from django.utils import timezone

from accounts.models import Organization
from billing.models import EntryKind, LedgerEntry


def organization_balance_nanos(*, organization: Organization) -> int:
    return organization_balance_nanos_by_id(organization.pk)


def organization_balance_nanos_by_id(organization_id: int) -> int:
    total = LedgerEntry.objects.filter(organization_id=organization_id).aggregate(
        total=Sum("amount_nanos")
    )["total"]
    return int(total or 0)


def organization_month_usage(*, organization: Organization) -> tuple[int, int]:
    """(nano-dollars spent, charged requests) since the start of this month (UTC)."""
    start = month_start()
    totals = LedgerEntry.objects.filter(
        organization=organization, kind=EntryKind.USAGE, created_at__gte=start
    ).aggregate(spent=Sum("amount_nanos"), requests=Count("pk"))
    return -(totals["spent"] or 0), totals["requests"]


def month_start():
    """The first instant of this calendar month, UTC (spend limits reset then)."""
    return timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def key_month_usage_nanos(key_id: int) -> int:
    """Nano-dollars spent through this key since the start of the month (UTC)."""
    total = LedgerEntry.objects.filter(
        api_key_id=key_id, kind=EntryKind.USAGE, created_at__gte=month_start()
    ).aggregate(total=Sum("amount_nanos"))["total"]
    return -int(total or 0)


def key_usage_nanos(key_id: int) -> int:
    """Nano-dollars ever spent through this key."""
    total = LedgerEntry.objects.filter(api_key_id=key_id, kind=EntryKind.USAGE).aggregate(
        total=Sum("amount_nanos")
    )["total"]
    return -int(total or 0)


def organization_credit_totals(organization_id: int) -> tuple[int, int]:
    """(credits, usage) in nano-dollars, OpenRouter's meaning: credits is everything bought
    or granted net of refunds and adjustments, usage everything spent; balance = difference.
    """
    totals = LedgerEntry.objects.filter(organization_id=organization_id).aggregate(
        credits=Sum("amount_nanos", filter=~Q(kind=EntryKind.USAGE)),
        usage=Sum("amount_nanos", filter=Q(kind=EntryKind.USAGE)),
    )
    return int(totals["credits"] or 0), -int(totals["usage"] or 0)
