"""The request table's filters, read from the query string (GET), so a filtered view is a
link that can be shared and the CSV export reads the very same parameters."""

from __future__ import annotations

import re

from django import forms
from django.http import QueryDict

from accounts.models import ApiKey, Organization
from usage.selectors import Granularity, RequestFilters

STATUS_PATTERN = re.compile(r"^(ok|error|[1-5]\d\d)$")
STATUS_CHOICES = [
    ("", "Any status"),
    ("ok", "Successful (below 400)"),
    ("error", "Errors (400 and above)"),
    *((str(code), str(code)) for code in (200, 400, 401, 402, 404, 413, 429, 500, 502, 503, 504)),
]
# Query parameters that belong to the table's filters (the CSV link carries exactly these).
FILTER_FIELDS = ("key", "model", "status", "since", "until")


class RequestFilterForm(forms.Form):
    key = forms.ModelChoiceField(queryset=ApiKey.objects.none(), required=False, label="Key")
    model = forms.CharField(required=False, max_length=200, label="Model")
    status = forms.CharField(required=False, max_length=5, label="Status")
    since = forms.DateField(required=False, label="From (UTC)")
    until = forms.DateField(required=False, label="To (UTC)")

    def __init__(self, data: QueryDict, *, organization: Organization) -> None:
        super().__init__(data)
        # Only this organization's keys are valid choices: another tenant's id is an error.
        self.fields["key"].queryset = organization.api_keys.order_by("name", "pk")  # type: ignore[attr-defined]

    def clean_status(self) -> str:
        status = self.cleaned_data["status"].strip().lower()
        if status and not STATUS_PATTERN.match(status):
            raise forms.ValidationError("Use ok, error or a status code such as 429.")
        return status

    def filters(self) -> RequestFilters:
        """The filters that validated; an invalid one is dropped (and shown as an error)."""
        self.is_valid()
        data = self.cleaned_data
        return RequestFilters(
            api_key=data.get("key"),
            model=(data.get("model") or "").strip(),
            status=data.get("status") or "",
            since=data.get("since"),
            until=data.get("until"),
        )


def granularity_from(data: QueryDict) -> Granularity:
    try:
        return Granularity(data.get("granularity", Granularity.DAY))
    except ValueError:
        return Granularity.DAY
