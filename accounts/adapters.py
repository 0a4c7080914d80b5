"""allauth customisation, in the one place allauth expects it."""

from __future__ import annotations

from dataclasses import dataclass

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context

from accounts.services import personal_organization_get_or_create

PRODUCT_NAME = "NeXeonAI"


@dataclass(frozen=True)
class BrandedSite:
    """What allauth's mail templates call `current_site`. Without django.contrib.sites
    allauth names the site after the request's host, so mails said "127.0.0.1:8100"."""

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
