"""The request table as CSV: same filters as the page, exact dollars, formula-safe text."""

from __future__ import annotations

import csv
from datetime import UTC

from django.http import HttpResponse

from accounts.models import Organization
from billing.history import usd_exact
from usage.selectors import RequestFilters, recent_requests

MAX_ROWS = 100_000
HEADER = [
    "created_at_utc",
    "request_id",
    "key_name",
    "key_prefix",
    "model",
    "provider",
    "endpoint",
    "status",
    "error_code",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_usd",
    "ttfb_ms",
    "duration_ms",
    "streamed",
    "client_disconnected",
]


def csv_text(value: str) -> str:
    """Text a spreadsheet would run as a formula is prefixed so it stays text (as in the
    billing CSV): key names are the customer's own, model names come from the request."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def requests_csv(*, organization: Organization, filters: RequestFilters) -> HttpResponse:
    """At most MAX_ROWS rows, newest first; `X-Row-Limit-Reached: 1` when cut there."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="nexeon-requests-{organization.slug}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(HEADER)
    records = recent_requests(organization=organization, filters=filters)[: MAX_ROWS + 1]
    for written, record in enumerate(records.iterator(chunk_size=2000)):
        if written == MAX_ROWS:
            response["X-Row-Limit-Reached"] = "1"
            break
        key = record.api_key
        writer.writerow(
            [
                record.created_at.astimezone(UTC).isoformat(),
                csv_text(record.request_id),
                csv_text(key.name) if key else "",
                key.prefix if key else "",
                csv_text(record.model),
                csv_text(record.provider),
                record.endpoint,
                record.status,
                csv_text(record.error_code),
                record.prompt_tokens,
                record.completion_tokens,
                record.cached_tokens,
                usd_exact(record.cost_nanos),
                _ms(record.ttfb_ms),
                _ms(record.duration_ms),
                "true" if record.streamed else "false",
                "true" if record.client_disconnected else "false",
            ]
        )
    return response
