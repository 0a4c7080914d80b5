"""allauth customisation, in the one place allauth expects it."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.contrib import messages

from accounts import invitations
from accounts.current import SESSION_KEY
from accounts.services import (
    MembershipError,
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

    def post_login(self, request, user, **kwargs):
        """Every login, after sign-up and email verification too: the invitation the
        visitor opened before having an account is accepted, and its organization shown."""
        response = super().post_login(request, user, **kwargs)
        try:
            joined = invitations.accept_pending(request, user)
        except MembershipError as error:
            messages.error(request, f"The invitation was not accepted: {error}")
        else:
            if joined is not None:
                request.session[SESSION_KEY] = joined.organization_id
                messages.success(request, f"You joined {joined.organization.name}.")
        return response

    def set_password(self, user, password) -> None:
        """Every allauth path that sets a password (change, set, reset by link or code)."""
        super().set_password(user, password)
        management_tokens_revoke_for_user(user=user)
