"""The billing page's purchase form: a preset amount or a custom one, between
BILLING_MIN_PURCHASE_USD and BILLING_MAX_PURCHASE_USD."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings

PRESETS_USD = (10, 25, 50, 100)


def purchase_bounds() -> tuple[int, int]:
    return settings.BILLING_MIN_PURCHASE_USD, settings.BILLING_MAX_PURCHASE_USD


def presets() -> list[int]:
    """The preset amounts the configured bounds allow."""
    low, high = purchase_bounds()
    return [amount for amount in PRESETS_USD if low <= amount <= high]


class PurchaseForm(forms.Form):
    """A preset button (``preset``, whole dollars) or a custom amount in dollars and cents.

    Either is checked against the configured bounds, so the error names the range.
    """

    preset = forms.IntegerField(required=False)
    custom_amount = forms.DecimalField(
        required=False, max_digits=9, decimal_places=2, label="Other amount (USD)"
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.is_bound and self.data.get("preset"):
            # A preset button was pressed: whatever sits in the custom box does not count.
            self.fields["custom_amount"].disabled = True
        low, high = purchase_bounds()
        self.fields["custom_amount"].widget.attrs.update(
            {"min": low, "max": high, "step": "0.01", "placeholder": f"{low} to {high}"}
        )

    def clean(self) -> dict:
        data: dict[str, Any] = super().clean()  # type: ignore[assignment]  # (cleaned_data)
        preset, custom = data.get("preset"), data.get("custom_amount")
        if self.errors:
            return data
        amount = Decimal(preset) if preset is not None else custom
        if amount is None:
            raise forms.ValidationError("Choose an amount.")
        low, high = purchase_bounds()
        if not low <= amount <= high:
            raise forms.ValidationError(f"A purchase is between ${low} and ${high}.")
        data["amount_cents"] = int(amount * 100)  # exact: at most two decimal places
        return data
