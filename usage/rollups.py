"""Hourly and daily totals, recomputed from the records (idempotent: run it twice, same rows).

Beat recomputes the current and previous hour/day often, so late records (a drain that
was behind) are still counted; older periods are final.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from usage.models import Period, UsageRecord, UsageRollup

_TRUNC = {Period.HOUR: TruncHour, Period.DAY: TruncDay}
_STEP = {Period.HOUR: timedelta(hours=1), Period.DAY: timedelta(days=1)}


def period_start(period: Period, moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    if period == Period.HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


@transaction.atomic
def rollup(period: Period, *, since: datetime, until: datetime | None = None) -> int:
    """Rewrite the rollups of every `period` from the one containing `since` up to `until`
    (default: now). Returns how many rows were written."""
    start = period_start(period, since)
    end = period_start(period, until or timezone.now()) + _STEP[period]
    rows = (
        UsageRecord.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(bucket=_TRUNC[period]("created_at", tzinfo=UTC))
        .values("bucket", "organization_id", "api_key_id", "model")
        .annotate(
            requests=Count("pk"),
            errors=Count("pk", filter=Q(status__gte=400)),
            prompt_tokens=Sum("prompt_tokens"),
            completion_tokens=Sum("completion_tokens"),
            cost_nanos=Sum("cost_nanos"),
        )
    )
    UsageRollup.objects.filter(period=period, start__gte=start, start__lt=end).delete()
    UsageRollup.objects.bulk_create(
        UsageRollup(
            period=period,
            start=row["bucket"],
            organization_id=row["organization_id"],
            api_key_id=row["api_key_id"],
            model=row["model"],
            requests=row["requests"],
            errors=row["errors"],
            prompt_tokens=row["prompt_tokens"] or 0,
            completion_tokens=row["completion_tokens"] or 0,
            cost_nanos=row["cost_nanos"] or 0,
        )
        for row in rows
    )
    return UsageRollup.objects.filter(period=period, start__gte=start, start__lt=end).count()
