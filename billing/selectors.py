"""Reads on the ledger."""

from __future__ import annotations

from django.db.models import Sum

from accounts.models import Organization
from billing.models import LedgerEntry


def organization_balance_nanos(*, organization: Organization) -> int:
    return organization_balance_nanos_by_id(organization.pk)


def organization_balance_nanos_by_id(organization_id: int) -> int:
    total = LedgerEntry.objects.filter(organization_id=organization_id).aggregate(
        total=Sum("amount_nanos")
    )["total"]
    return int(total or 0)


def organization_month_usage(*, organization: Organization) -> tuple[int, int]:
    """(nano-dollars spent, charged requests) since the start of this month (UTC)."""
    from django.db.models import Count
    from django.utils import timezone

    from billing.models import EntryKind

    start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    totals = LedgerEntry.objects.filter(
        organization=organization, kind=EntryKind.USAGE, created_at__gte=start
    ).aggregate(spent=Sum("amount_nanos"), requests=Count("pk"))
    return -(totals["spent"] or 0), totals["requests"]
