"""Stripe disputes (chargebacks): the disputed purchase's credits are taken back when the
dispute opens and given back if it is won; the organization is flagged meanwhile.

* ``charge.dispute.created`` takes back the disputed amount (at most what the purchase has
  not already refunded), never below zero: credit already spent is the dispute's (and the
  purchase's) shortfall. Reference ``stripe:dispute:<dispute id>``.
* ``charge.dispute.closed`` ``won`` (or ``warning_closed``: an inquiry that never became a
  chargeback) books back what was taken, reference ``stripe:dispute:<dispute id>:won``;
  ``lost`` keeps it. A close that arrives without its opening is handled as if both came.
* Once per dispute: its row (unique dispute id) is written under a lock on the purchase, so
  a redelivered or concurrently delivered event finds it and books nothing.
* Flagged (StripeDispute.flags): an open dispute, or a lost one an operator has not cleared
  in the admin. A flagged organization cannot buy credits; its keys keep working on the
  balance that is left (the credits in question are already taken back).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing.models import DisputeStatus, EntryKind, Purchase, StripeDispute
from billing.money import cents_to_nanos, format_usd
from billing.purchases import as_dict, paid_purchase_of
from billing.services import credits_take_back, ledger_book

logger = logging.getLogger(__name__)

WON = {"won", "warning_closed"}
LOST = {"lost"}


def _purchase(dispute: Mapping[str, Any]) -> Purchase | None:
    """The disputed paid purchase, found (and, if its completion event is late, granted
    from Stripe's session) before the caller's transaction, which then locks it."""
    found = paid_purchase_of(dispute)
    if found is None:
        logger.warning("dispute %s matches no paid purchase; nothing booked", dispute["id"])
    return found


def _locked(found: Purchase) -> Purchase:
    return Purchase.objects.select_for_update().get(pk=found.pk)


def _currency_ok(purchase: Purchase, dispute: Mapping[str, Any]) -> bool:
    if (dispute.get("currency") or "").lower() == purchase.currency:
        return True
    logger.error(
        "dispute %s refused for purchase %s: currency %r",
        dispute["id"],
        purchase.pk,
        dispute.get("currency"),
    )
    return False


def _open(purchase: Purchase, dispute: Mapping[str, Any]) -> StripeDispute:
    """Record the dispute and take its credits back (inside the purchase's lock)."""
    cents = max(
        0, min(int(dispute.get("amount") or 0), purchase.amount_cents - purchase.refunded_cents)
    )
    amount = cents_to_nanos(cents)
    outcome = credits_take_back(
        organization=purchase.organization,
        kind=EntryKind.DISPUTE,
        amount_nanos=amount,
        reference=f"stripe:dispute:{dispute['id']}",
        description=f"Payment disputed ({format_usd(amount)})",
    )
    if outcome.shortfall:
        purchase.shortfall_nanos += outcome.shortfall
        purchase.save(update_fields=["shortfall_nanos"])
        logger.warning(
            "dispute %s: %s already spent, not taken back",
            dispute["id"],
            format_usd(outcome.shortfall),
        )
    return StripeDispute.objects.create(
        dispute_id=dispute["id"],
        purchase=purchase,
        organization_id=purchase.organization_id,
        amount_cents=cents,
        reason=str(dispute.get("reason") or "")[:64],
        taken_nanos=outcome.taken,
        shortfall_nanos=outcome.shortfall,
    )


def dispute_created(dispute: Mapping[str, Any]) -> str:
    """charge.dispute.created: take the disputed credits back and flag the organization."""
    dispute = as_dict(dispute)
    found = _purchase(dispute)
    if found is None:
        return "unknown charge"
    with transaction.atomic():
        purchase = _locked(found)
        if StripeDispute.objects.filter(dispute_id=dispute["id"]).exists():
            return "already disputed"
        if not _currency_ok(purchase, dispute):
            return "refused"
        _open(purchase, dispute)
    return "credits taken back"


def dispute_closed(dispute: Mapping[str, Any]) -> str:
    """charge.dispute.closed: won gives the credits back, lost keeps them (and the flag)."""
    dispute = as_dict(dispute)
    status = dispute.get("status")
    if status not in WON | LOST:
        return "ignored"
    found = _purchase(dispute)
    if found is None:
        return "unknown charge"
    with transaction.atomic():
        purchase = _locked(found)
        record = StripeDispute.objects.filter(dispute_id=dispute["id"]).first()
        if record is None:
            if not _currency_ok(purchase, dispute):
                return "refused"
            if status in WON:  # nothing was taken, nothing to give back
                StripeDispute.objects.create(
                    dispute_id=dispute["id"],
                    purchase=purchase,
                    organization_id=purchase.organization_id,
                    amount_cents=int(dispute.get("amount") or 0),
                    reason=str(dispute.get("reason") or "")[:64],
                    status=DisputeStatus.WON,
                    closed_at=timezone.now(),
                )
                return "won"
            record = _open(purchase, dispute)
        if record.status != DisputeStatus.OPEN:
            return "already closed"
        record.closed_at = timezone.now()
        if status in LOST:
            record.status = DisputeStatus.LOST
            record.save(update_fields=["status", "closed_at"])
            return "lost"
        if record.taken_nanos:
            ledger_book(
                organization=purchase.organization,
                kind=EntryKind.DISPUTE,
                amount_nanos=record.taken_nanos,
                reference=f"stripe:dispute:{record.dispute_id}:won",
                description=f"Dispute won: credits returned ({format_usd(record.taken_nanos)})",
            )
        # Stripe keeps the money after all: what could not be taken back is no loss.
        purchase.shortfall_nanos -= record.shortfall_nanos
        purchase.save(update_fields=["shortfall_nanos"])
        record.status = DisputeStatus.WON
        record.save(update_fields=["status", "closed_at"])
    return "won, credits returned"
