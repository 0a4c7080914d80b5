from django.contrib import admin

from apigateway.models import CatalogModel


@admin.register(CatalogModel)
class CatalogModelAdmin(admin.ModelAdmin):
    list_display = ("public_id", "provider", "upstream_model", "mode", "enabled", "updated_at")
    list_filter = ("provider", "mode", "enabled")
    search_fields = ("public_id", "upstream_model")
    list_editable = ("enabled",)
    fields = (
        "public_id",
        "provider",
        "upstream_model",
        "deployments",
        "fallbacks",
        "owned_by",
        "created",
        "mode",
        "context_window",
        "max_output_tokens",
        "unsized_input_tokens",
        "prices",
        "enabled",
    )
