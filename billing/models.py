"""Billing's tables: the credit ledger (append-only; an organization's balance is the sum
of its entries) and the running totals its writer keeps; Stripe's purchases, events and
disputes; low-balance alerts."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class EntryKind(models.TextChoices):
    PURCHASE = "purchase", "Purchase"
    GRANT = "grant", "Grant"
    USAGE = "usage", "Usage"
    REFUND = "refund", "Refund"
    ADJUSTMENT = "adjustment", "Adjustment"
    DISPUTE = "dispute", "Dispute"


class LedgerEntry(models.Model):
    """One movement of credit. ``reference`` is unique, so a replay cannot book twice."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="ledger_entries"
    )
    kind = models.CharField(max_length=16, choices=EntryKind.choices)
    amount_nanos = models.BigIntegerField(help_text="Positive adds credit, negative spends it.")
    reference = models.CharField(max_length=200, unique=True)
    api_key = models.ForeignKey(
        "accounts.ApiKey",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="ledger_entries",
        help_text="The key a usage entry was spent through.",
    )
    description = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "ledger entries"
        indexes = [
            models.Index(fields=["organization", "created_at"]),
            models.Index(fields=["api_key", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount_nanos} ({self.reference})"


class PurchaseStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PAID = "paid", "Paid"
    EXPIRED = "expired", "Expired"


class Purchase(models.Model):
    """A credits purchase through Stripe Checkout. The amount credited is ours, not Stripe's.

    The session id is empty only for the moment between saving the row and Stripe answering
    (the row's id goes into the session's metadata).
    """

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="purchases"
    )
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    amount_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3, default="usd")
    # NULL, not "", while unknown: several rows may be unset under a unique constraint.
    stripe_checkout_session_id = models.CharField(  # noqa: DJ001
        max_length=255, unique=True, null=True
    )
    stripe_payment_intent_id = models.CharField(  # noqa: DJ001
        max_length=255, null=True, blank=True, db_index=True
    )
    stripe_charge_id = models.CharField(  # noqa: DJ001
        max_length=255, null=True, blank=True, db_index=True
    )
    status = models.CharField(
        max_length=16, choices=PurchaseStatus.choices, default=PurchaseStatus.PENDING
    )
    refunded_cents = models.PositiveIntegerField(
        default=0, help_text="Cumulative amount Stripe reports refunded."
    )
    shortfall_nanos = models.BigIntegerField(
        default=0,
        help_text="Refunded or disputed credit already spent when Stripe took the money "
        "back: not taken from the balance (never below zero), recorded here.",
    )
    receipt_url = models.URLField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "created_at"])]

    def __str__(self) -> str:
        return f"{self.amount_cents} {self.currency} ({self.status})"


class StripeEvent(models.Model):
    """Every verified Stripe event, once: a redelivered event id is acknowledged, not rerun."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    received_at = models.DateTimeField(default=timezone.now)
    processed = models.BooleanField(default=False)
    processed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class DisputeStatus(models.TextChoices):
    OPEN = "open", "Open"
    WON = "won", "Won"
    LOST = "lost", "Lost"


class StripeDispute(models.Model):
    """A chargeback on one purchase (billing/disputes.py). Its credits are taken back when it
    opens and given back if it is won; while it is open, or lost and not cleared by an
    operator, the organization is flagged: it cannot buy credits."""

    dispute_id = models.CharField(max_length=255, unique=True)
    purchase = models.ForeignKey(Purchase, on_delete=models.PROTECT, related_name="disputes")
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="stripe_disputes"
    )
    amount_cents = models.PositiveIntegerField(help_text="What the card holder disputes.")
    reason = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=8, choices=DisputeStatus.choices, default=DisputeStatus.OPEN
    )
    taken_nanos = models.BigIntegerField(default=0, help_text="Credit taken back.")
    shortfall_nanos = models.BigIntegerField(
        default=0, help_text="Disputed credit already spent: could not be taken back."
    )
    opened_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    cleared_at = models.DateTimeField(
        null=True, blank=True, help_text="When an operator lifted the flag of a lost dispute."
    )

    class Meta:
        indexes = [models.Index(fields=["organization", "status"])]

    def __str__(self) -> str:
        return f"dispute {self.dispute_id} ({self.status})"

    @property
    def flags(self) -> bool:
        return self.status == DisputeStatus.OPEN or (
            self.status == DisputeStatus.LOST and self.cleared_at is None
        )


class BalanceAlert(models.Model):
    """An organization told its balance ran low; deleted when the balance recovers, so the
    next drop is told again (never one mail per check)."""

    organization = models.OneToOneField(
        "accounts.Organization", on_delete=models.CASCADE, related_name="balance_alert"
    )
    balance_nanos = models.BigIntegerField()
    notified_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"low balance alert for {self.organization_id}"


class OrganizationBalance(models.Model):
    """An organization's ledger totals, kept by the ledger's one writer (billing.services)
    in the same transaction as each entry it books, so that reading them is one row
    whatever the ledger's length: /v1/credits, the gateway loading a balance, and
    reconciliation. `credits_seq` counts the credit entries (every kind but usage): the
    credit store applies a newer total only (credit/lua/sync_credits.lua)."""

    organization = models.OneToOneField(
        "accounts.Organization",
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="ledger_balance",
    )
    credits_nanos = models.BigIntegerField(default=0)
    usage_nanos = models.BigIntegerField(default=0, help_text="Positive: what was spent.")
    credits_seq = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"balance of {self.organization_id}: {self.balance_nanos}"

    @property
    def balance_nanos(self) -> int:
        return self.credits_nanos - self.usage_nanos


class KeyMonthSpend(models.Model):
    """What one API key spent in one calendar month (UTC), kept by the ledger's writer:
    monthly spend limits and /v1/key read it in one row."""

    api_key = models.ForeignKey(
        "accounts.ApiKey", on_delete=models.CASCADE, related_name="month_spend"
    )
    month = models.DateField(help_text="The first day of the month (UTC).")
    usage_nanos = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "month"], name="key_month_spend_unique")
        ]

    def __str__(self) -> str:
        return f"key {self.api_key_id} spent {self.usage_nanos} in {self.month:%Y-%m}"
