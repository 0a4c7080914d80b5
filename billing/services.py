"""Writes on the ledger. Every booking carries a unique reference, so retries are harmless."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from accounts.models import Organization
from billing.balance_cache import cached_balance_add
from billing.models import EntryKind, LedgerEntry


def ledger_book(
    *,
    organization: Organization,
    kind: EntryKind,
    amount_nanos: int,
    reference: str,
    description: str = "",
) -> tuple[LedgerEntry, bool]:
    """Book one entry once. Returns (entry, created); a repeated reference books nothing."""
    try:
        with transaction.atomic():
            entry = LedgerEntry.objects.create(
                organization=organization,
                kind=kind,
                amount_nanos=amount_nanos,
                reference=reference,
                description=description,
            )
    except IntegrityError:
        existing = LedgerEntry.objects.get(reference=reference)
        if existing.organization_id != organization.pk or existing.amount_nanos != amount_nanos:
            raise ValueError(
                f"ledger reference {reference!r} was booked with other terms"
            ) from None
        return existing, False
    return entry, True


def credits_grant(
    *, organization: Organization, amount_nanos: int, reference: str, description: str = ""
) -> tuple[LedgerEntry, bool]:
    if amount_nanos <= 0:
        raise ValueError("a grant must be positive")
    entry, created = ledger_book(
        organization=organization,
        kind=EntryKind.GRANT,
        amount_nanos=amount_nanos,
        reference=reference,
        description=description,
    )
    if created:
        transaction.on_commit(lambda: cached_balance_add(organization.pk, amount_nanos))
    return entry, created
