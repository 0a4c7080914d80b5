"""Hourly and daily totals, recomputed from the records (idempotent: run it twice, same rows).

Two writers keep them, so that the usage page agrees with the ledger under every setup:

* beat (`usage.rollup_hours` / `usage.rollup_days`) recomputes the current and previous
  hour/day of every organization often, so late records (a drain that was behind) count;
* the usage page, before it reads them, rolls up its organization's records written since
  it was last read (`rollup_pending`), so they are current without beat too (`make run`).

Both rewrite whole periods from the records under one lock (a PostgreSQL advisory lock:
beat's excludes every page's, pages of different organizations run side by side; SQLite
takes one writer at a time anyway), so whoever writes last writes the true totals and
nothing is counted twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, Min, Q, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from accounts.models import Organization
from usage.models import Period, RollupMark, UsageRecord, UsageRollup

_TRUNC = {Period.HOUR: TruncHour, Period.DAY: TruncDay}
_STEP = {Period.HOUR: timedelta(hours=1), Period.DAY: timedelta(days=1)}
# A page rolls up records whose call came at most this long before they were written
# (beat, likewise, only the current and previous period).
LATE_RECORDS = timedelta(hours=1)
# An organization's first page view rolls up this far back (the longest range shown).
LOOKBACK = timedelta(days=366)
# Records written this long before a page view are looked at again at the next one: a batch
# still committing while the page read may not have been visible to it.
COMMIT_MARGIN = timedelta(minutes=5)
_LOCK = 0x6E78  # advisory lock class of the rollups ("nx")


def period_start(period: Period, moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    if period == Period.HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _lock(organization_id: int | None) -> None:
    """Inside a transaction: every organization's rollups (None), or one's."""
    if connection.vendor != "postgresql":
        return  # SQLite: one writing transaction at a time already
    with connection.cursor() as cursor:
        if organization_id is None:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, 0)", [_LOCK])
        else:
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s, 0)", [_LOCK])
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK + 1, organization_id])


@transaction.atomic
def rollup(period: Period, *, since: datetime, until: datetime | None = None) -> int:
    """Rewrite the rollups of every `period` from the one containing `since` up to `until`
    (default: now), of every organization. Returns how many rows were written."""
    _lock(None)
    return _rewrite(period, since, until or timezone.now(), None)


def rollup_pending(organization: Organization) -> None:
    """Roll up the organization's records written since this last ran for it (on every
    read of its usage page; beat or not, the rollups then hold every recorded call)."""
    started = timezone.now()
    with transaction.atomic():
        _lock(organization.pk)
        mark = RollupMark.objects.filter(organization=organization).first()
        since = mark.through if mark else started - LOOKBACK
        earliest = UsageRecord.objects.filter(
            organization=organization,
            created_at__gte=since - LATE_RECORDS,
            recorded_at__gte=since,
        ).aggregate(first=Min("created_at"))["first"]
        if earliest is not None:
            for period in Period:
                _rewrite(period, earliest, started, organization.pk)
        if earliest is not None or mark is None:
            RollupMark.objects.update_or_create(
                organization=organization, defaults={"through": started - COMMIT_MARGIN}
            )


def _rewrite(period: Period, since: datetime, until: datetime, organization_id: int | None) -> int:
    start = period_start(period, since)
    end = period_start(period, until) + _STEP[period]
    records = UsageRecord.objects.filter(created_at__gte=start, created_at__lt=end)
    rollups = UsageRollup.objects.filter(period=period, start__gte=start, start__lt=end)
    if organization_id is not None:
        records = records.filter(organization_id=organization_id)
        rollups = rollups.filter(organization_id=organization_id)
    rows = (
        records.annotate(bucket=_TRUNC[period]("created_at", tzinfo=UTC))
        .values("bucket", "organization_id", "api_key_id", "model")
        .annotate(
            requests=Count("pk"),
            errors=Count("pk", filter=Q(status__gte=400)),
            prompt_tokens=Sum("prompt_tokens"),
            completion_tokens=Sum("completion_tokens"),
            cost_nanos=Sum("cost_nanos"),
        )
    )
    rollups.delete()
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
    return rollups.count()
