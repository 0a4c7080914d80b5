"""The dashboard's forms for API keys (create, edit, rename; allowed models are picked
from the catalog) and for management tokens."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django import forms
from django.utils import timezone

from accounts.models import ApiKey
from accounts.selectors import catalog_model_ids
from accounts.services import MANAGEMENT_TOKEN_DEFAULT_DAYS
from billing.money import usd_plain, usd_to_nanos

EXPIRY_CHOICES = [("", "Never"), ("7", "In 7 days"), ("30", "In 30 days"), ("90", "In 90 days")]
KEEP = "keep"
# The service's names (InvalidKeySetting.field) -> this form's.
FORM_FIELDS = {"monthly_spend_limit_nanos": "monthly_spend_limit", "__all__": None}


class _KeySettingsForm(forms.Form):
    """What a key is created with and can change later (the expiry differs: see below)."""

    name = forms.CharField(max_length=120, initial="default")
    monthly_spend_limit = forms.DecimalField(
        min_value=Decimal("0.000000001"),  # one nano-dollar, the API's unit
        max_digits=21,
        decimal_places=9,
        required=False,
        widget=forms.NumberInput(attrs={"step": "any"}),
        label="Monthly spend limit (USD)",
        help_text="Calls that could pass it are refused (402). Empty: no limit.",
    )
    rpm_limit = forms.IntegerField(min_value=1, required=False, label="Requests per minute")
    tpm_limit = forms.IntegerField(min_value=1, required=False, label="Tokens per minute")
    allowed_models = forms.MultipleChoiceField(
        required=False,
        label="Allowed models",
        help_text="Check none to allow every model.",
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, kept_models: list[str] | tuple[str, ...] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        catalog = catalog_model_ids()
        # A model the key already has stays listed (checked) even if the catalog dropped it.
        gone = [model for model in kept_models if model not in catalog]
        self.fields["allowed_models"].choices = [(m, m) for m in catalog] + [  # type: ignore[attr-defined]
            (m, f"{m} (no longer in the catalog)") for m in gone
        ]

    def settings_arguments(self) -> dict:
        data = self.cleaned_data
        spend = data.get("monthly_spend_limit")
        return {
            "name": data["name"],
            "monthly_spend_limit_nanos": usd_to_nanos(spend) if spend else None,
            "rpm_limit": data.get("rpm_limit"),
            "tpm_limit": data.get("tpm_limit"),
            "allowed_models": list(data.get("allowed_models") or []),
        }

    def add_service_error(self, field: str, message: str) -> None:
        self.add_error(FORM_FIELDS.get(field, field), message)


class ApiKeyCreateForm(_KeySettingsForm):
    expires_in_days = forms.TypedChoiceField(
        choices=EXPIRY_CHOICES, coerce=int, empty_value=None, required=False, label="Expires"
    )
    field_order = ["name", "expires_in_days"]

    def service_arguments(self) -> dict:
        days = self.cleaned_data.get("expires_in_days")
        return {
            **self.settings_arguments(),
            "expires_at": timezone.now() + timedelta(days=days) if days else None,
        }


class ApiKeyEditForm(_KeySettingsForm):
    expiry = forms.ChoiceField(label="Expires", required=False)
    field_order = ["name", "expiry"]

    def __init__(self, *args, api_key: ApiKey, **kwargs) -> None:
        kwargs.setdefault("initial", initial_settings(api_key))
        super().__init__(*args, kept_models=api_key.allowed_models, **kwargs)
        self.api_key = api_key
        current = api_key.expires_at
        keep = f"Unchanged ({current:%Y-%m-%d %H:%M} UTC)" if current else "Unchanged (never)"
        self.fields["expiry"].choices = [(KEEP, keep), ("never", "Never"), *EXPIRY_CHOICES[1:]]  # type: ignore[attr-defined]

    def service_arguments(self) -> dict:
        arguments = self.settings_arguments()
        expiry = self.cleaned_data.get("expiry") or KEEP
        if expiry == "never":
            arguments["expires_at"] = None
        elif expiry != KEEP:
            arguments["expires_at"] = timezone.now() + timedelta(days=int(expiry))
        return arguments


def initial_settings(api_key: ApiKey) -> dict:
    spend = api_key.monthly_spend_limit_nanos
    return {
        "name": api_key.name,
        "expiry": KEEP,
        "monthly_spend_limit": usd_plain(spend) if spend else None,
        "rpm_limit": api_key.rpm_limit,
        "tpm_limit": api_key.tpm_limit,
        "allowed_models": list(api_key.allowed_models),
    }


class ApiKeyRenameForm(forms.Form):
    name = forms.CharField(max_length=120)


TOKEN_LIFETIME_CHOICES = [("30", "30 days"), ("90", "90 days"), ("365", "1 year")]


class ManagementTokenForm(forms.Form):
    """A REST API token: its name, the one organization it acts in, how long it lives."""

    name = forms.CharField(max_length=120, label="Token name")
    organization = forms.TypedChoiceField(coerce=int, label="Organization")
    days = forms.TypedChoiceField(
        choices=TOKEN_LIFETIME_CHOICES,
        coerce=int,
        initial=str(MANAGEMENT_TOKEN_DEFAULT_DAYS),
        label="Expires after",
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from accounts.selectors import organizations_for_user

        self.organizations = {o.pk: o for o in organizations_for_user(user=user)}
        self.fields["organization"].choices = [(pk, o.name) for pk, o in self.organizations.items()]  # type: ignore[attr-defined]

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "organization": self.organizations[data["organization"]],
            "days": data["days"],
        }
