"""How the REST API knows its caller: a management token (`Authorization: Bearer
nex-mt-…`), and how the OpenAPI schema describes that scheme."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from accounts import keys
from accounts.models import ManagementToken


class ManagementTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer nex-mt-…` acts as the token's user, in the token's organization
    alone (accounts/api/views.py; CSRF does not apply)."""

    keyword = "bearer"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != self.keyword or not token.startswith(keys.MANAGEMENT_PREFIX):
            return None
        if not keys.looks_like_key(token, keys.MANAGEMENT_PREFIX):
            raise exceptions.AuthenticationFailed("Malformed management token.")
        found = (
            ManagementToken.objects.select_related("user")
            .filter(digest=keys.digest(token), revoked_at__isnull=True, user__is_active=True)
            .first()
        )
        if found is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked management token.")
        if found.expires_at <= timezone.now():
            raise exceptions.AuthenticationFailed(
                "This management token has expired: create a new one on the Settings page."
            )
        return found.user, found

    def authenticate_header(self, request) -> str:
        return "Bearer"


class ManagementTokenScheme(OpenApiAuthenticationExtension):
    """Describes the token in the OpenAPI schema."""

    target_class = "accounts.api.authentication.ManagementTokenAuthentication"
    name = "managementToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "nex-mt-… management token: acts in its one organization until it "
            "expires (Settings page, or `manage.py create_management_token`)",
        }
