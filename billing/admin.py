"""The Django admin of billing: the ledger, where operators add credit entries (booked by
the ledger's writer, never edited or deleted), and Stripe's purchases, events and disputes,
which only Stripe's events write (an operator may clear a lost dispute's flag)."""

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from billing.models import (
    DisputeStatus,
    EntryKind,
    LedgerEntry,
    Purchase,
    StripeDispute,
    StripeEvent,
)
from billing.services import ledger_book


class LedgerEntryForm(forms.ModelForm):
    """Operators book credit entries; usage is booked by the gateway alone."""

    kind = forms.ChoiceField(choices=[c for c in EntryKind.choices if c[0] != EntryKind.USAGE])

    class Meta:
        model = LedgerEntry
        fields = ("organization", "kind", "amount_nanos", "reference", "description")


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    """Append-only: operators add entries (grants, adjustments) but never edit or delete;
    an entry added here is booked by the ledger's writer, so the organization's running
    balance and the gateway's credit move with it."""

    form = LedgerEntryForm
    list_display = ("created_at", "organization", "kind", "amount_nanos", "reference")
    list_filter = ("kind",)
    search_fields = ("reference", "organization__name")
    raw_id_fields = ("organization",)

    def save_model(self, request, obj, form, change) -> None:
        entry, _ = ledger_book(
            organization=obj.organization,
            kind=EntryKind(obj.kind),
            amount_nanos=obj.amount_nanos,
            reference=obj.reference,
            description=obj.description,
        )
        obj.pk = entry.pk

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Purchase)
class PurchaseAdmin(admin.ModelAdmin):
    """Written by Stripe's events only; operators read them."""

    list_display = (
        "created_at",
        "organization",
        "amount_cents",
        "status",
        "refunded_cents",
        "shortfall_nanos",
    )
    list_filter = ("status",)
    search_fields = (
        "stripe_checkout_session_id",
        "stripe_payment_intent_id",
        "organization__name",
    )
    raw_id_fields = ("organization", "created_by")

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    """Every verified event; one left unprocessed failed and can be resent from Stripe."""

    list_display = ("received_at", "type", "event_id", "processed")
    list_filter = ("processed", "type")
    search_fields = ("event_id",)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(StripeDispute)
class StripeDisputeAdmin(admin.ModelAdmin):
    """Chargebacks, written by Stripe's events. A flagged organization cannot buy credits:
    an open dispute flags it until Stripe closes it; a lost one until an operator clears it
    here (after settling with the customer)."""

    list_display = (
        "opened_at",
        "organization",
        "dispute_id",
        "amount_cents",
        "status",
        "flagged",
        "taken_nanos",
        "shortfall_nanos",
    )
    list_filter = ("status",)
    search_fields = ("dispute_id", "organization__name")
    raw_id_fields = ("organization", "purchase")
    actions = ("clear_flag",)

    @admin.display(boolean=True, description="Flagged")
    def flagged(self, obj: StripeDispute) -> bool:
        return obj.flags

    @admin.action(description="Clear the flag of the selected lost disputes")
    def clear_flag(self, request: HttpRequest, queryset: QuerySet[StripeDispute]) -> None:
        cleared = queryset.filter(status=DisputeStatus.LOST, cleared_at__isnull=True).update(
            cleared_at=timezone.now()
        )
        self.message_user(request, f"{cleared} dispute flag(s) cleared.", messages.SUCCESS)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False
