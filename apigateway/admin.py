"""The model catalog in Django's admin: list, filter and edit models, switch them on or off."""

from typing import TYPE_CHECKING

from django.contrib import admin

from apigateway.models import CatalogModel

# ModelAdmin is generic only in django-stubs; at run time it takes no type argument.
if TYPE_CHECKING:
    CatalogModelAdminBase = admin.ModelAdmin[CatalogModel]
else:
    CatalogModelAdminBase = admin.ModelAdmin


@admin.register(CatalogModel)
class CatalogModelAdmin(CatalogModelAdminBase):
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
