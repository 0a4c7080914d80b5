"""The ledger invariants the billing tests end on: the running totals are the ledger's
sums, and the credit store's balance is the ledger's balance once nothing is in flight."""

from __future__ import annotations

import time

from django.conf import settings
from django.db.models import Q, Sum

from billing.models import EntryKind, LedgerEntry
from billing.selectors import ledger_figures
from credit.stores import current as credit_store
from usage import pipeline


def ledger_sums(organization_id: int) -> tuple[int, int]:
    """(credits, usage) summed over the ledger's rows, the slow way."""
    totals = LedgerEntry.objects.filter(organization_id=organization_id).aggregate(
        credits=Sum("amount_nanos", filter=~Q(kind=EntryKind.USAGE)),
        usage=Sum("amount_nanos", filter=Q(kind=EntryKind.USAGE)),
    )
    return int(totals["credits"] or 0), -int(totals["usage"] or 0)


def assert_balance_reconciles(organization_id: int) -> int:
    """Book queued usage, then check nothing is held or unbooked and the store agrees with
    the ledger; returns the ledger's balance."""
    store = credit_store()
    pipeline.drain()
    # A lease is given back a moment after its last call (GATEWAY_LEASE_SECONDS).
    deadline = time.monotonic() + settings.GATEWAY_LEASE_SECONDS + 2
    while time.monotonic() < deadline:
        state = store.credit_state(organization_id)
        if state is None or not state.held:
            break
        time.sleep(0.05)
    pipeline.drain()
    credits, usage = ledger_sums(organization_id)
    figures = ledger_figures(organization_id)
    assert (figures.credits, figures.usage) == (credits, usage), "running totals != ledger"
    state = store.credit_state(organization_id)
    if state is not None:
        assert state.held == 0, f"credit still held: {state}"
        assert state.unbooked == 0, f"usage charged but not booked: {state}"
        assert state.available == credits - usage, f"store {state} != ledger {credits - usage}"
    return credits - usage


def held_nanos(organization_id: int) -> int:
    """Credit the store holds for the organization's calls in flight (not yet spent)."""
    state = credit_store().credit_state(organization_id)
    return state.held if state else 0


def available_nanos(organization_id: int) -> int | None:
    """What the organization's calls may still reserve, as the store has it (None: not
    loaded yet)."""
    state = credit_store().credit_state(organization_id)
    return state.available if state else None


def book_test_usage(
    organization, request_id: str, amount_nanos: int, description: str = "", key_id=None
) -> None:
    """Usage in the ledger as the usage pipeline books it (reference usage:<request id>)."""
    from django.db import transaction
    from django.utils import timezone

    from billing.services import UsageCharge, book_usage

    with transaction.atomic():
        book_usage(
            [
                UsageCharge(
                    request_id,
                    organization.pk,
                    key_id,
                    amount_nanos,
                    timezone.now(),
                    description,
                )
            ]
        )
