"""The REST API's JSON shapes: organizations (with the caller's role in each), members,
API keys (the secret only in the answer that creates one) and usage."""

from __future__ import annotations

from rest_framework import serializers

from accounts.models import ApiKey, Membership, Organization


class OrganizationSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "is_personal", "created_at", "role"]

    def get_role(self, organization: Organization) -> str:
        return self.context["roles"].get(organization.pk, "")


class MemberSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email")

    class Meta:
        model = Membership
        fields = ["id", "email", "role", "created_at"]


class ApiKeySerializer(serializers.ModelSerializer):
    allowed_models = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        help_text="Catalog model ids (GET /v1/models) this key may call; empty: every model.",
    )

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
            "rpm_limit",
            "tpm_limit",
            "monthly_spend_limit_nanos",
            "allowed_models",
        ]
        read_only_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
        extra_kwargs = {"rpm_limit": {"min_value": 1}, "tpm_limit": {"min_value": 1}}


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The full key, returned once.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class UsageSerializer(serializers.Serializer):
    balance_usd = serializers.DecimalField(max_digits=20, decimal_places=9)
    spent_usd = serializers.DecimalField(max_digits=20, decimal_places=9)
    charged_requests = serializers.IntegerField()
