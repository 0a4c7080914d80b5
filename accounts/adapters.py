"""allauth customisation, in the one place allauth expects it."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter

from accounts.services import (
    management_tokens_revoke_for_user,
    personal_organization_get_or_create,
)


class AccountAdapter(DefaultAccountAdapter):
    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=commit)
        if commit:
            # Every new user starts with an organization of their own to hold keys/credits.
            personal_organization_get_or_create(user=user)
        return user

    def set_password(self, user, password) -> None:
        """Every allauth path that sets a password (change, set, reset by link or code)."""
        super().set_password(user, password)
        management_tokens_revoke_for_user(user=user)
