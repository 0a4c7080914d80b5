"""Reads on the ledger."""

from __future__ import annotations

from django.db.models import Sum

from accounts.models import Organization
from billing.models import LedgerEntry


def organization_balance_nanos(*, organization: Organization) -> int:
    total = LedgerEntry.objects.filter(organization=organization).aggregate(
        total=Sum("amount_nanos")
    )["total"]
    return int(total or 0)


def organization_balance_nanos_by_id(organization_id: int) -> int:
    total = LedgerEntry.objects.filter(organization_id=organization_id).aggregate(
        total=Sum("amount_nanos")
    )["total"]
    return int(total or 0)
