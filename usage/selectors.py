"""Reads for the usage page. Every query is scoped by organization.

Charts and breakdowns read the rollups (small, indexed by organization/period/start);
the request table reads the records themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from django.db.models import F, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from accounts.models import ApiKey, Organization
from usage.models import Period, UsageRecord, UsageRollup
from usage.rollups import period_start


class Granularity(StrEnum):
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"


# How many buckets each granularity shows, ending with the current one.
BUCKETS = {Granularity.HOUR: 48, Granularity.DAY: 30, Granularity.MONTH: 12}
RANGE_LABELS = {
    Granularity.HOUR: "last 48 hours",
    Granularity.DAY: "last 30 days",
    Granularity.MONTH: "last 12 months",
}
BREAKDOWN_ROWS = 10


@dataclass(frozen=True)
class Bucket:
    start: datetime
    requests: int = 0
    errors: int = 0
    cost_nanos: int = 0


@dataclass(frozen=True)
class BreakdownRow:
    label: str
    detail: str  # a key's prefix; empty for models
    requests: int
    errors: int
    cost_nanos: int


def _month_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _months_back(month: datetime, count: int) -> datetime:
    index = month.year * 12 + (month.month - 1) - count
    return month.replace(year=index // 12, month=index % 12 + 1)


def bucket_starts(granularity: Granularity, now: datetime | None = None) -> list[datetime]:
    """The starts (UTC) of the buckets shown for `granularity`, oldest first."""
    now = now or timezone.now()
    count = BUCKETS[granularity]
    if granularity == Granularity.MONTH:
        current = _month_start(now)
        return [_months_back(current, count - 1 - i) for i in range(count)]
    period = Period.HOUR if granularity == Granularity.HOUR else Period.DAY
    step = timedelta(hours=1) if granularity == Granularity.HOUR else timedelta(days=1)
    current = period_start(period, now)
    return [current - step * (count - 1 - i) for i in range(count)]


def _rollups(
    organization: Organization, granularity: Granularity, starts: list[datetime]
) -> QuerySet[UsageRollup]:
    # Months are summed from daily rollups: there is no monthly rollup to keep in sync.
    period = Period.HOUR if granularity == Granularity.HOUR else Period.DAY
    return UsageRollup.objects.filter(
        organization=organization, period=period, start__gte=starts[0]
    )


_TOTALS = {
    "total_requests": Sum("requests"),
    "total_errors": Sum("errors"),
    "total_cost": Sum("cost_nanos"),
}


def time_series(
    *, organization: Organization, granularity: Granularity, now: datetime | None = None
) -> list[Bucket]:
    """Requests, errors and spend per bucket, oldest first; empty buckets are zeros."""
    starts = bucket_starts(granularity, now)
    rollups = _rollups(organization, granularity, starts)
    bucket = TruncMonth("start", tzinfo=UTC) if granularity == Granularity.MONTH else F("start")
    rows = rollups.annotate(bucket=bucket).values("bucket").annotate(**_TOTALS).order_by()
    totals = {row["bucket"]: row for row in rows}
    series = []
    for start in starts:
        row = totals.get(start)
        series.append(
            Bucket(
                start=start,
                requests=row["total_requests"] or 0,
                errors=row["total_errors"] or 0,
                cost_nanos=row["total_cost"] or 0,
            )
            if row
            else Bucket(start=start)
        )
    return series


def _breakdown(
    organization: Organization,
    granularity: Granularity,
    now: datetime | None,
    fields: tuple[str, ...],
) -> list[dict]:
    starts = bucket_starts(granularity, now)
    rows = (
        _rollups(organization, granularity, starts)
        .values(*fields)
        .annotate(**_TOTALS)
        .order_by("-total_cost", "-total_requests", *fields)
    )
    return list(rows)


def _top(rows: list[BreakdownRow]) -> list[BreakdownRow]:
    """The biggest rows; the rest summed into one "Other" row, so a chart stays readable."""
    if len(rows) <= BREAKDOWN_ROWS:
        return rows
    head, tail = rows[: BREAKDOWN_ROWS - 1], rows[BREAKDOWN_ROWS - 1 :]
    other = BreakdownRow(
        label=f"Other ({len(tail)})",
        detail="",
        requests=sum(row.requests for row in tail),
        errors=sum(row.errors for row in tail),
        cost_nanos=sum(row.cost_nanos for row in tail),
    )
    return [*head, other]


def by_model(
    *, organization: Organization, granularity: Granularity, now: datetime | None = None
) -> list[BreakdownRow]:
    """Spend and requests per model over the range `granularity` shows, biggest first."""
    rows = _breakdown(organization, granularity, now, ("model",))
    return _top(
        [
            BreakdownRow(
                label=row["model"] or "(no model)",
                detail="",
                requests=row["total_requests"] or 0,
                errors=row["total_errors"] or 0,
                cost_nanos=row["total_cost"] or 0,
            )
            for row in rows
        ]
    )


def by_key(
    *, organization: Organization, granularity: Granularity, now: datetime | None = None
) -> list[BreakdownRow]:
    """Spend and requests per API key over the range `granularity` shows, biggest first."""
    rows = _breakdown(
        organization, granularity, now, ("api_key_id", "api_key__name", "api_key__prefix")
    )
    return _top(
        [
            BreakdownRow(
                # A deleted key's rollups keep their numbers with no key (SET_NULL).
                label=row["api_key__name"] if row["api_key_id"] else "(deleted key)",
                detail=row["api_key__prefix"] or "",
                requests=row["total_requests"] or 0,
                errors=row["total_errors"] or 0,
                cost_nanos=row["total_cost"] or 0,
            )
            for row in rows
        ]
    )


# --- the request table ----------------------------------------------------------------------


@dataclass(frozen=True)
class RequestFilters:
    api_key: ApiKey | None = None
    model: str = ""
    status: str = ""  # "", "ok", "error" or an exact status such as "429"
    since: date | None = None  # inclusive, UTC
    until: date | None = None  # inclusive, UTC


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def recent_requests(
    *, organization: Organization, filters: RequestFilters | None = None
) -> QuerySet[UsageRecord]:
    """The organization's calls, newest first, narrowed by `filters`."""
    filters = filters or RequestFilters()
    records = UsageRecord.objects.filter(organization=organization).select_related("api_key")
    if filters.api_key is not None:
        # The key must be this organization's too: another tenant's key id matches nothing.
        records = records.filter(api_key=filters.api_key, api_key__organization=organization)
    if filters.model:
        records = records.filter(model=filters.model)
    if filters.status == "ok":
        records = records.filter(status__lt=400)
    elif filters.status == "error":
        records = records.filter(status__gte=400)
    elif filters.status.isdigit():
        records = records.filter(status=int(filters.status))
    if filters.since:
        records = records.filter(created_at__gte=_day_start(filters.since))
    if filters.until:
        records = records.filter(created_at__lt=_day_start(filters.until) + timedelta(days=1))
    return records.order_by("-created_at", "-pk")


def models_used(*, organization: Organization) -> list[str]:
    """Every model the organization has called (from the daily rollups), for the filter."""
    return list(
        UsageRollup.objects.filter(organization=organization, period=Period.DAY)
        .exclude(model="")
        .values_list("model", flat=True)
        .distinct()
        .order_by("model")
    )
