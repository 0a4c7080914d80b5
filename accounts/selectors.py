"""Reads on accounts, always scoped to what the user may see."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from accounts.models import Organization, User


def organizations_for_user(*, user: User) -> QuerySet[Organization]:
    return (
        Organization.objects.filter(memberships__user=user)
        .annotate(key_count=Count("api_keys"))
        .order_by("-is_personal", "name")
    )


def catalog_model_ids() -> list[str]:
    """The model ids a key can be limited to: the catalog's enabled models."""
    from apigateway.models import CatalogModel

    return list(
        CatalogModel.objects.filter(enabled=True)
        .order_by("public_id")
        .values_list("public_id", flat=True)
    )
