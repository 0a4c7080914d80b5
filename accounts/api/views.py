"""The REST API: organizations, members, keys and usage of the caller's organizations.

Every lookup goes through the caller's memberships, so another tenant's ids answer 404; a
management token's caller has one membership, its organization's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db.models import Count, QuerySet, Sum
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.api.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeySerializer,
    MemberSerializer,
    OrganizationSerializer,
    UsageSerializer,
)
from accounts.current import can_manage
from accounts.models import ApiKey, ManagementToken, Membership
from accounts.requests import AuthenticatedRequest
from billing.models import EntryKind
from billing.money import nanos_to_usd


def caller_memberships(request: AuthenticatedRequest) -> QuerySet[Membership]:
    """The caller's memberships; for a management token, only its organization's."""
    memberships = Membership.objects.select_related("organization").filter(user=request.user)
    if isinstance(request.auth, ManagementToken):
        memberships = memberships.filter(organization_id=request.auth.organization_id)
    return memberships


def membership_or_404(request: AuthenticatedRequest, organization_id: int) -> Membership:
    return get_object_or_404(caller_memberships(request), organization_id=organization_id)


class OrganizationList(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=OrganizationSerializer(many=True))
    def get(self, request: AuthenticatedRequest) -> Response:
        memberships = caller_memberships(request)
        roles = {m.organization_id: m.role for m in memberships}
        organizations = [m.organization for m in memberships]
        return Response(
            OrganizationSerializer(organizations, many=True, context={"roles": roles}).data
        )


class MemberList(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=MemberSerializer(many=True))
    def get(self, request: AuthenticatedRequest, organization_id: int) -> Response:
        membership = membership_or_404(request, organization_id)
        members = membership.organization.memberships.select_related("user").order_by("pk")
        return Response(MemberSerializer(members, many=True).data)


class KeyList(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=ApiKeySerializer(many=True))
    def get(self, request: AuthenticatedRequest, organization_id: int) -> Response:
        membership = membership_or_404(request, organization_id)
        api_keys = membership.organization.api_keys.order_by("-created_at")
        return Response(ApiKeySerializer(api_keys, many=True).data)

    @extend_schema(request=ApiKeySerializer, responses={201: ApiKeyCreatedSerializer})
    def post(self, request: AuthenticatedRequest, organization_id: int) -> Response:
        membership = membership_or_404(request, organization_id)
        if not can_manage(membership):
            raise PermissionDenied("Only owners and admins create keys.")
        serializer = ApiKeySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with refused_settings_as_400():
            created = services.api_key_create(
                organization=membership.organization,
                created_by=request.user,
                **serializer.validated_data,
            )
        body = ApiKeyCreatedSerializer(created.api_key).data
        body["key"] = created.plaintext
        return Response(body, status=status.HTTP_201_CREATED)


class KeyDetail(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=ApiKeySerializer)
    def get(self, request: AuthenticatedRequest, organization_id: int, key_id: int) -> Response:
        membership = membership_or_404(request, organization_id)
        api_key = get_object_or_404(ApiKey, pk=key_id, organization=membership.organization)
        return Response(ApiKeySerializer(api_key).data)

    @extend_schema(request=ApiKeySerializer, responses=ApiKeySerializer)
    def patch(self, request: AuthenticatedRequest, organization_id: int, key_id: int) -> Response:
        """Change a key's name, expiry, limits or allowed models (only the fields sent);
        the gateway applies it within GATEWAY_KEY_CACHE_SECONDS."""
        membership = membership_or_404(request, organization_id)
        api_key = get_object_or_404(ApiKey, pk=key_id, organization=membership.organization)
        if not can_manage(membership):
            raise PermissionDenied("Only owners and admins edit keys.")
        serializer = ApiKeySerializer(api_key, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        with refused_settings_as_400():
            api_key = services.api_key_update(api_key=api_key, **serializer.validated_data)
        return Response(ApiKeySerializer(api_key).data)


@contextmanager
def refused_settings_as_400() -> Iterator[None]:
    """The services' refusal of a key setting, as DRF's 400 naming the field."""
    try:
        yield
    except services.InvalidKeySetting as error:
        field = "non_field_errors" if error.field == "__all__" else error.field
        raise ValidationError({field: [str(error)]}) from error


class KeyRevoke(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses=ApiKeySerializer)
    def post(self, request: AuthenticatedRequest, organization_id: int, key_id: int) -> Response:
        membership = membership_or_404(request, organization_id)
        api_key = get_object_or_404(ApiKey, pk=key_id, organization=membership.organization)
        if not can_manage(membership):
            raise PermissionDenied("Only owners and admins revoke keys.")
        services.api_key_revoke(api_key=api_key)
        return Response(ApiKeySerializer(api_key).data)


class Usage(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=UsageSerializer)
    def get(self, request: AuthenticatedRequest, organization_id: int) -> Response:
        membership = membership_or_404(request, organization_id)
        entries = membership.organization.ledger_entries
        balance = entries.aggregate(total=Sum("amount_nanos"))["total"] or 0
        usage = entries.filter(kind=EntryKind.USAGE).aggregate(
            total=Sum("amount_nanos"), count=Count("pk")
        )
        return Response(
            UsageSerializer(
                {
                    "balance_usd": nanos_to_usd(balance),
                    "spent_usd": nanos_to_usd(-(usage["total"] or 0)),
                    "charged_requests": usage["count"],
                }
            ).data
        )
