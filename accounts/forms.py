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
