"""allauth customisation, in the one place allauth expects it."""

from __future__ import annotations

from dataclasses import dataclass

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context
from django.contrib import messages

from accounts import invitations
from accounts.current import SESSION_KEY
from accounts.services import (
    MembershipError,
    management_tokens_revoke_for_user,
    personal_organization_get_or_create,
)

PRODUCT_NAME = "NeXeonAI"


@dataclass(frozen=True)
class BrandedSite:
    """What allauth's mail templates call `current_site`: the product's name. Without it,
    and without django.contrib.sites, allauth names the site after the request's host (such
    as "127.0.0.1:8100")."""

    name: str
    domain: str


class AccountAdapter(DefaultAccountAdapter):
    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=commit)
        if commit:
            # Every new user starts with an organization of their own to hold keys/credits.
            personal_organization_get_or_create(user=user)
        return user

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        request = allauth_context.request
        branded = {
            "current_site": BrandedSite(name=PRODUCT_NAME, domain=PRODUCT_NAME),
            "dashboard_url": request.build_absolute_uri("/") if request else "",
        }
        super().send_mail(template_prefix, email, {**context, **branded})

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
