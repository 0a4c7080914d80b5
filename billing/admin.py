from django.contrib import admin

from billing.models import LedgerEntry


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
