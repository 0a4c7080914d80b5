"""The ledger's one writer. Every entry carries a unique reference, so retries are harmless;
every entry moves the organization's running totals (OrganizationBalance, and a key's
KeyMonthSpend for usage) in the same transaction, so the totals are always the ledger's
sums; and every credit entry reaches the credit store's balance after it commits.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import redis
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F

from accounts.models import Organization
from billing import money
from billing.models import EntryKind, KeyMonthSpend, LedgerEntry, OrganizationBalance
from credit.records import CreditState, CreditUnavailable
from credit.stores import current as credit_store
from nexeon import bulk

logger = logging.getLogger(__name__)


def ledger_book(
    *,
    organization: Organization,
    kind: EntryKind,
    amount_nanos: int,
    reference: str,
    description: str = "",
) -> tuple[LedgerEntry, bool]:
    """Book one credit entry (anything but usage) once. Returns (entry, created); a
    repeated reference books nothing. The credit store hears of it after the commit."""
    if kind == EntryKind.USAGE:
        raise ValueError("usage is booked by book_usage, from the gateway's usage events")
    try:
        with transaction.atomic():
            entry = LedgerEntry.objects.create(
                organization=organization,
                kind=kind,
                amount_nanos=amount_nanos,
                reference=reference,
                description=description,
            )
            _add_credits(organization.pk, amount_nanos)
    except IntegrityError:
        existing = LedgerEntry.objects.get(reference=reference)
        if existing.organization_id != organization.pk or existing.amount_nanos != amount_nanos:
            raise ValueError(
                f"ledger reference {reference!r} was booked with other terms"
            ) from None
        return existing, False
    organization_id = organization.pk
    transaction.on_commit(lambda: sync_credits(organization_id))
    return entry, True


def credits_grant(
    *, organization: Organization, amount_nanos: int, reference: str, description: str = ""
) -> tuple[LedgerEntry, bool]:
    if amount_nanos <= 0:
        raise ValueError("a grant must be positive")
    return ledger_book(
        organization=organization,
        kind=EntryKind.GRANT,
        amount_nanos=amount_nanos,
        reference=reference,
        description=description,
    )


@dataclass(frozen=True, slots=True)
class TakeBack:
    """What a take-back booked (`taken`) and what it could not, already spent (`shortfall`)."""

    taken: int
    shortfall: int


def credits_take_back(
    *,
    organization: Organization,
    kind: EntryKind,
    amount_nanos: int,
    reference: str,
    description: str = "",
) -> TakeBack:
    """Take credits back (a refund, a dispute) but never below zero: what is left of the
    balance goes; the rest is the shortfall, for the caller to record. Run it inside the
    caller's transaction, under the caller's lock on whatever makes it happen once (a
    purchase, a dispute): the balance row is locked here, so usage booked meanwhile cannot
    slip between reading the balance and booking.

    What is left is the lesser of the ledger's balance and what the credit store still
    lets calls reserve: the store has already charged calls the usage drain has not booked
    yet, and holds the most that calls in flight may cost."""
    if amount_nanos < 0:
        raise ValueError("the amount to take back is positive")
    _create_balance(organization.pk)
    row = OrganizationBalance.objects.select_for_update().get(organization_id=organization.pk)
    left = row.balance_nanos
    state = _store_state(organization.pk)
    if state is not None:  # as it will be once told of credits booked since its last sync
        left = min(left, state.available + row.credits_nanos - state.credits)
    taken = min(amount_nanos, max(left, 0))
    if taken:
        ledger_book(
            organization=organization,
            kind=kind,
            amount_nanos=-taken,
            reference=reference,
            description=description,
        )
    return TakeBack(taken=taken, shortfall=amount_nanos - taken)


def _store_state(organization_id: int) -> CreditState | None:
    """The organization's credit in the store; None when it has not loaded the balance (no
    call since) or cannot be reached (the ledger then decides alone)."""
    try:
        return credit_store().credit_state(organization_id)
    except (CreditUnavailable, redis.RedisError) as exc:
        logger.warning("credit state of organization %s not read: %s", organization_id, exc)
        return None


def signup_credit_grant(*, organization: Organization) -> tuple[LedgerEntry, bool] | None:
    """SIGNUP_CREDIT_USD for a new customer's organization, once: its reference names the
    organization, so a retry or a concurrent call books nothing more. None when it is 0."""
    amount_nanos = money.usd_to_nanos(settings.SIGNUP_CREDIT_USD)
    if amount_nanos <= 0:
        return None
    return credits_grant(
        organization=organization,
        amount_nanos=amount_nanos,
        reference=f"signup:{organization.pk}",
        description="Starting credit",
    )


MAX_OPERATOR_GRANT_USD = 100_000  # a typo's ceiling, not a business rule


def operator_credits_grant(
    *,
    organization: Organization,
    amount_nanos: int,
    granted_by: str,
    reference: str | None = None,
) -> tuple[LedgerEntry, bool]:
    """Credits an operator gives without Stripe (admin, command line). `granted_by` (who
    and how) is the entry's description; `reference` makes a retry book nothing more."""
    if amount_nanos > money.usd_to_nanos(MAX_OPERATOR_GRANT_USD):
        raise ValueError(f"a grant is at most ${MAX_OPERATOR_GRANT_USD:,}")
    return credits_grant(
        organization=organization,
        amount_nanos=amount_nanos,
        reference=reference or f"grant:operator:{uuid.uuid4()}",
        description=granted_by[:300],
    )


def _add_credits(organization_id: int, amount_nanos: int) -> None:
    updated = OrganizationBalance.objects.filter(organization_id=organization_id).update(
        credits_nanos=F("credits_nanos") + amount_nanos, credits_seq=F("credits_seq") + 1
    )
    if not updated:
        _create_balance(organization_id)
        _add_credits(organization_id, amount_nanos)


def _create_balance(organization_id: int) -> None:
    """The totals row of an organization that has none yet (one booking at a time may
    create it: the others wait for its insert and then update it)."""
    with transaction.atomic():
        OrganizationBalance.objects.bulk_create(
            [OrganizationBalance(organization_id=organization_id)], ignore_conflicts=True
        )


def sync_credits(organization_id: int) -> None:
    """Tell the credit store the organization's credits as the ledger has them now.
    Best effort, never raising (it runs after the entry's commit, and the caller's work is
    done): the store is also synced by reconciliation every minute."""
    row = OrganizationBalance.objects.filter(organization_id=organization_id).first()
    if row is None:
        return
    try:
        credit_store().sync_credits(organization_id, row.credits_nanos, row.credits_seq)
    except (CreditUnavailable, redis.RedisError) as exc:
        logger.warning("credits of organization %s not synced: %s", organization_id, exc)


@dataclass(frozen=True, slots=True)
class UsageCharge:
    """One call's charge, as the usage pipeline books it."""

    request_id: str
    organization_id: int
    api_key_id: int | None
    amount_nanos: int  # what was charged (positive)
    created_at: datetime  # when the call happened: month boundaries stay exact
    description: str = ""

    @property
    def reference(self) -> str:
        return f"usage:{self.request_id}"


def book_usage(charges: Iterable[UsageCharge]) -> list[UsageCharge]:
    """Book calls' usage once each (the request id makes the reference), inside the
    caller's transaction; returns the charges booked now (a charge booked before is
    skipped), whose amounts have moved the running totals."""
    pending = {charge.reference: charge for charge in charges if charge.amount_nanos > 0}
    if not pending:
        return []
    rows = [
        {
            "organization_id": charge.organization_id,
            "kind": EntryKind.USAGE.value,
            "amount_nanos": -charge.amount_nanos,
            "reference": reference,
            "api_key_id": charge.api_key_id,
            "description": charge.description[:300],
            "created_at": charge.created_at,
        }
        for reference, charge in pending.items()
    ]
    if connection.vendor == "postgresql":
        references = bulk.insert_new("billing_ledgerentry", "reference", rows)
    else:
        existing = set(
            LedgerEntry.objects.filter(reference__in=list(pending)).values_list(
                "reference", flat=True
            )
        )
        rows = [row for row in rows if row["reference"] not in existing]
        LedgerEntry.objects.bulk_create([LedgerEntry(**row) for row in rows])
        references = [row["reference"] for row in rows]
    booked = [pending[reference] for reference in references]
    _add_usage(booked)
    return booked


def _add_usage(booked: list[UsageCharge]) -> None:
    """Move the running totals by what was booked; rows updated in a fixed order, so that
    two drainers booking at once cannot deadlock."""
    by_organization: dict[int, int] = defaultdict(int)
    by_key_month: dict[tuple[int, date], int] = defaultdict(int)
    for charge in booked:
        by_organization[charge.organization_id] += charge.amount_nanos
        if charge.api_key_id is not None:
            at = charge.created_at.astimezone(UTC)
            by_key_month[(charge.api_key_id, date(at.year, at.month, 1))] += charge.amount_nanos
    for organization_id in sorted(by_organization):
        amount = by_organization[organization_id]
        updated = OrganizationBalance.objects.filter(organization_id=organization_id).update(
            usage_nanos=F("usage_nanos") + amount
        )
        if not updated:
            _create_balance(organization_id)
            OrganizationBalance.objects.filter(organization_id=organization_id).update(
                usage_nanos=F("usage_nanos") + amount
            )
    for key_id, month in sorted(by_key_month):
        amount = by_key_month[(key_id, month)]
        updated = KeyMonthSpend.objects.filter(api_key_id=key_id, month=month).update(
            usage_nanos=F("usage_nanos") + amount
        )
        if not updated:
            with transaction.atomic():
                KeyMonthSpend.objects.bulk_create(
                    [KeyMonthSpend(api_key_id=key_id, month=month)], ignore_conflicts=True
                )
            KeyMonthSpend.objects.filter(api_key_id=key_id, month=month).update(
                usage_nanos=F("usage_nanos") + amount
            )
