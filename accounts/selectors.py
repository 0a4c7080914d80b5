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
