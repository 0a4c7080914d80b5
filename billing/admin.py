from django.contrib import admin

from billing.models import LedgerEntry, Purchase, StripeEvent


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    """Append-only: operators add entries (grants, adjustments) but never edit or delete."""

    list_display = ("created_at", "organization", "kind", "amount_nanos", "reference")
    list_filter = ("kind",)
    search_fields = ("reference", "organization__name")
    raw_id_fields = ("organization",)

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Purchase)
class PurchaseAdmin(admin.ModelAdmin):
    """Written by Stripe's events only; operators read them."""

    list_display = ("created_at", "organization", "amount_cents", "status", "refunded_cents")
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
