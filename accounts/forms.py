from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django import forms
from django.utils import timezone

from billing.money import usd_to_nanos

EXPIRY_CHOICES = [("", "Never"), ("7", "In 7 days"), ("30", "In 30 days"), ("90", "In 90 days")]


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=120, initial="default")
    expires_in_days = forms.TypedChoiceField(
        choices=EXPIRY_CHOICES, coerce=int, empty_value=None, required=False, label="Expires"
    )
    monthly_spend_limit = forms.DecimalField(
        min_value=Decimal("0.01"),
        max_digits=12,
        decimal_places=2,
        required=False,
        label="Monthly spend limit (USD)",
    )
    rpm_limit = forms.IntegerField(min_value=1, required=False, label="Requests per minute")
    tpm_limit = forms.IntegerField(min_value=1, required=False, label="Tokens per minute")
    allowed_models = forms.CharField(
        required=False,
        label="Allowed models",
        help_text="Comma-separated model ids; empty allows every model.",
    )

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        days = data.get("expires_in_days")
        spend = data.get("monthly_spend_limit")
        return {
            "name": data["name"],
            "expires_at": timezone.now() + timedelta(days=days) if days else None,
            "monthly_spend_limit_nanos": usd_to_nanos(spend) if spend else None,
            "rpm_limit": data.get("rpm_limit"),
            "tpm_limit": data.get("tpm_limit"),
            "allowed_models": [
                m.strip() for m in (data.get("allowed_models") or "").split(",") if m.strip()
            ],
        }


class ApiKeyRenameForm(forms.Form):
    name = forms.CharField(max_length=120)


TOKEN_LIFETIME_CHOICES = [("30", "30 days"), ("90", "90 days"), ("365", "1 year")]


class ManagementTokenForm(forms.Form):
    """A REST API token: its name, the one organization it acts in, how long it lives."""

    name = forms.CharField(max_length=120, label="Token name")
    organization = forms.TypedChoiceField(coerce=int, label="Organization")
    days = forms.TypedChoiceField(
        choices=TOKEN_LIFETIME_CHOICES, coerce=int, initial="90", label="Expires after"
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from accounts.selectors import organizations_for_user

        self.organizations = {o.pk: o for o in organizations_for_user(user=user)}
        self.fields["organization"].choices = [(pk, o.name) for pk, o in self.organizations.items()]

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "organization": self.organizations[data["organization"]],
            "days": data["days"],
        }
