"""The usage page (charts, breakdowns, live feed, request table) and its CSV export."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.functional import cached_property

from accounts.current import current_membership, page_context
from accounts.requests import AuthenticatedHttpRequest
from billing.money import format_usd
from usage import charts
from usage.charts import usd_label
from usage.export import requests_csv
from usage.forms import FILTER_FIELDS, STATUS_CHOICES, RequestFilterForm, granularity_from
from usage.rollups import rollup_pending
from usage.selectors import (
    RANGE_LABELS,
    BreakdownRow,
    Bucket,
    Granularity,
    by_key,
    by_model,
    models_used,
    recent_requests,
    time_series,
)

PAGE_SIZE = 50
# Counting every call of a busy organization is a long scan; pages stop here (filters and
# the CSV reach further back).
PAGED_ROWS = 10_000
BUCKET_FORMATS = {
    Granularity.HOUR: ("%H:00", "%Y-%m-%d %H:00 UTC"),
    Granularity.DAY: ("%b %d", "%Y-%m-%d"),
    Granularity.MONTH: ("%b %Y", "%B %Y"),
}


class CappedPaginator(Paginator):
    @cached_property
    def count(self) -> int:
        return self.object_list[:PAGED_ROWS].count()  # type: ignore[attr-defined]  # (a QuerySet)

    @property
    def capped(self) -> bool:
        return self.count >= PAGED_ROWS


def _time_charts(series: list[Bucket], granularity: Granularity) -> dict:
    short, long = BUCKET_FORMATS[granularity]
    period = RANGE_LABELS[granularity]
    spend = [
        charts.Column(
            label=bucket.start.strftime(short),
            value=bucket.cost_nanos,
            tooltip=f"{bucket.start.strftime(long)}: {charts.usd_label(bucket.cost_nanos)}",
        )
        for bucket in series
    ]
    requests = [
        charts.Column(
            label=bucket.start.strftime(short),
            value=bucket.requests,
            overlay=bucket.errors,
            tooltip=f"{bucket.start.strftime(long)}: {bucket.requests:,} requests, "
            f"{bucket.errors:,} errors",
        )
        for bucket in series
    ]
    total_cost = sum(bucket.cost_nanos for bucket in series)
    total_requests = sum(bucket.requests for bucket in series)
    total_errors = sum(bucket.errors for bucket in series)
    return {
        "spend_chart": charts.column_chart(
            chart_id="chart-spend",
            title=f"Spend per {granularity.value}, {period}",
            desc=f"Column chart of spend in US dollars per {granularity.value} (UTC); "
            f"{charts.usd_label(total_cost)} in total. The table below lists every value.",
            columns=spend,
            format_value=charts.usd_label,
        ),
        "requests_chart": charts.column_chart(
            chart_id="chart-requests",
            title=f"Requests per {granularity.value}, {period}",
            desc=f"Column chart of requests per {granularity.value} (UTC), errors shaded in "
            f"red; {total_requests:,} requests, {total_errors:,} errors in total.",
            columns=requests,
            format_value=charts.count_label,
        ),
        "series_rows": [
            (bucket.start.strftime(long), format_usd(bucket.cost_nanos, 6), bucket)
            for bucket in series
        ],
        "total_cost": format_usd(total_cost, 2),
        "total_requests": total_requests,
        "total_errors": total_errors,
    }


def _breakdown_charts(name: str, rows: list[BreakdownRow], period: str) -> dict:
    def label(row: BreakdownRow) -> str:
        return f"{row.label} ({row.detail}…)" if row.detail else row.label

    return {
        f"{name}_spend_chart": charts.bar_chart(
            chart_id=f"chart-{name}-spend",
            title=f"Spend by {name}, {period}",
            desc=f"Bar chart of spend in US dollars per {name}, largest first.",
            bars=[
                charts.Bar(row.label, row.cost_nanos, f"{label(row)}: {usd_label(row.cost_nanos)}")
                for row in rows
            ],
            format_value=charts.usd_label,
        ),
        f"{name}_requests_chart": charts.bar_chart(
            chart_id=f"chart-{name}-requests",
            title=f"Requests by {name}, {period}",
            desc=f"Bar chart of requests per {name}, in the order of the spend chart.",
            bars=[
                charts.Bar(row.label, row.requests, f"{label(row)}: {row.requests:,} requests")
                for row in rows
            ],
            format_value=charts.count_label,
        ),
        f"{name}_rows": [(row, format_usd(row.cost_nanos, 6)) for row in rows],
    }


@login_required
def usage_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    membership = current_membership(request)
    organization = membership.organization
    granularity = granularity_from(request.GET)
    period = RANGE_LABELS[granularity]
    rollup_pending(organization)  # (without beat, nothing else would)
    series = time_series(organization=organization, granularity=granularity)

    form = RequestFilterForm(request.GET, organization=organization)
    filters = form.filters()
    paginator = CappedPaginator(
        recent_requests(organization=organization, filters=filters), PAGE_SIZE
    )
    page = paginator.get_page(request.GET.get("page"))

    filter_query = request.GET.copy()
    for name in list(filter_query):
        if name not in FILTER_FIELDS:
            del filter_query[name]
    return render(
        request,
        "dashboard/usage.html",
        page_context(
            request,
            membership,
            granularity=granularity,
            granularities=list(Granularity),
            period=period,
            **_time_charts(series, granularity),
            **_breakdown_charts(
                "model", by_model(organization=organization, granularity=granularity), period
            ),
            **_breakdown_charts(
                "key", by_key(organization=organization, granularity=granularity), period
            ),
            form=form,
            status_choices=STATUS_CHOICES,
            models=models_used(organization=organization),
            page=page,
            rows=[(record, format_usd(record.cost_nanos, 6)) for record in page],
            filter_query=filter_query.urlencode(),
        ),
    )


@login_required
def usage_requests_csv(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = current_membership(request).organization
    filters = RequestFilterForm(request.GET, organization=organization).filters()
    return requests_csv(organization=organization, filters=filters)
