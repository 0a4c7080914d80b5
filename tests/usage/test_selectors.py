"""Usage selectors: buckets filled with zeros, months summed from days, breakdowns, the
request filters, and never another organization's numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from tests.usage.conftest import make_record, roll_up
from usage.selectors import (
    Granularity,
    RequestFilters,
    by_key,
    by_model,
    recent_requests,
    time_series,
)

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


def test_hourly_series_is_48_hours_with_empty_hours_as_zeros(
    organization, prod_key, other_organization, other_key
):
    make_record(organization, prod_key, created_at=NOW.replace(minute=10), cost_nanos=1_000)
    make_record(
        organization, prod_key, created_at=NOW.replace(minute=20), cost_nanos=2_000, status=500
    )
    make_record(organization, prod_key, created_at=datetime(2026, 11, 20, 13, 59, tzinfo=UTC))
    make_record(organization, prod_key, created_at=datetime(2026, 11, 18, 15, 59, tzinfo=UTC))
    make_record(other_organization, other_key, created_at=NOW, cost_nanos=10**9)
    roll_up(since=NOW - timedelta(days=3))

    series = time_series(organization=organization, granularity=Granularity.HOUR, now=NOW)

    assert len(series) == 48
    assert series[0].start == datetime(2026, 11, 18, 16, tzinfo=UTC)  # 15:59 two days ago is out
    assert series[-1].start == datetime(2026, 11, 20, 15, tzinfo=UTC)
    by_start = {bucket.start.hour: bucket for bucket in series[-3:]}
    assert (by_start[15].requests, by_start[15].errors, by_start[15].cost_nanos) == (2, 1, 3_000)
    assert (by_start[14].requests, by_start[14].cost_nanos) == (0, 0)
    assert (by_start[13].requests, by_start[13].cost_nanos) == (1, 1_000)
    assert sum(bucket.requests for bucket in series) == 3


def test_daily_series_is_30_days_ending_today(organization, prod_key):
    make_record(organization, prod_key, created_at=NOW, cost_nanos=7)
    make_record(organization, prod_key, created_at=NOW - timedelta(days=29), cost_nanos=11)
    make_record(organization, prod_key, created_at=NOW - timedelta(days=30))
    roll_up(since=NOW - timedelta(days=40))

    series = time_series(organization=organization, granularity=Granularity.DAY, now=NOW)

    assert [bucket.start for bucket in (series[0], series[-1])] == [
        datetime(2026, 10, 22, tzinfo=UTC),
        datetime(2026, 11, 20, tzinfo=UTC),
    ]
    assert len(series) == 30
    assert (series[0].cost_nanos, series[-1].cost_nanos) == (11, 7)
    assert sum(bucket.requests for bucket in series) == 2


def test_monthly_series_sums_daily_rollups_for_12_months_across_new_year(
    organization, prod_key, other_organization, other_key
):
    now = datetime(2026, 2, 10, 9, tzinfo=UTC)
    for moment, cost in [
        (datetime(2026, 2, 1, 0, 0, tzinfo=UTC), 100),
        (datetime(2026, 2, 9, 23, 59, tzinfo=UTC), 200),
        (datetime(2026, 1, 31, 23, 59, tzinfo=UTC), 40),
        (datetime(2025, 3, 1, 0, 0, tzinfo=UTC), 5),
        (datetime(2025, 2, 28, 23, 59, tzinfo=UTC), 999),  # 13 months back: out
    ]:
        make_record(organization, prod_key, created_at=moment, cost_nanos=cost)
    make_record(other_organization, other_key, created_at=now, cost_nanos=10**9)
    roll_up(since=datetime(2025, 1, 1, tzinfo=UTC))

    series = time_series(organization=organization, granularity=Granularity.MONTH, now=now)

    assert [bucket.start.strftime("%Y-%m") for bucket in series] == [
        *(f"2025-{month:02d}" for month in range(3, 13)),
        "2026-01",
        "2026-02",
    ]
    assert [(bucket.requests, bucket.cost_nanos) for bucket in series] == [
        (1, 5),
        *[(0, 0)] * 9,
        (1, 40),
        (2, 300),
    ]


def test_breakdowns_by_model_and_key_biggest_first_this_organization_only(
    organization, prod_key, dev_key, other_organization, other_key
):
    now = datetime.now(UTC)
    make_record(organization, prod_key, model="gpt-4o", cost_nanos=5_000)
    make_record(organization, prod_key, model="claude-3-5-sonnet", cost_nanos=9_000, status=429)
    make_record(organization, dev_key, model="gpt-4o", cost_nanos=1_000)
    gone = make_record(organization, None, model="gpt-4o-mini", cost_nanos=1)
    make_record(organization, prod_key, created_at=now - timedelta(days=45), cost_nanos=10**6)
    make_record(other_organization, other_key, model="secret-model", cost_nanos=10**9)
    roll_up()

    models = by_model(organization=organization, granularity=Granularity.DAY)
    assert [(row.label, row.requests, row.errors, row.cost_nanos) for row in models] == [
        ("claude-3-5-sonnet", 1, 1, 9_000),
        ("gpt-4o", 2, 0, 6_000),
        ("gpt-4o-mini", 1, 0, 1),
    ]
    keys = by_key(organization=organization, granularity=Granularity.DAY)
    assert [(row.label, row.detail, row.requests, row.cost_nanos) for row in keys] == [
        ("prod", prod_key.prefix, 2, 14_000),
        ("dev", dev_key.prefix, 1, 1_000),
        ("(deleted key)", "", 1, 1),
    ]
    assert gone.api_key_id is None
    # The year view includes the call 45 days ago.
    year = by_key(organization=organization, granularity=Granularity.MONTH)
    assert year[0].cost_nanos == 14_000 + 10**6


def test_a_long_tail_of_models_is_summed_into_other(organization, prod_key):
    for index in range(13):
        make_record(organization, prod_key, model=f"model-{index:02d}", cost_nanos=100 - index)
    roll_up()
    rows = by_model(organization=organization, granularity=Granularity.HOUR)
    assert len(rows) == 10
    assert rows[0].label == "model-00"
    assert (rows[-1].label, rows[-1].requests, rows[-1].cost_nanos) == (
        "Other (4)",
        4,
        91 + 90 + 89 + 88,
    )


def test_recent_requests_filter_by_key_model_status_and_dates_newest_first(
    organization, prod_key, dev_key, other_organization, other_key
):
    day = datetime(2026, 11, 10, 12, tzinfo=UTC)
    a = make_record(organization, prod_key, created_at=day, status=200)
    b = make_record(organization, prod_key, created_at=day + timedelta(days=1), status=429)
    c = make_record(organization, dev_key, created_at=day + timedelta(days=2), model="o1")
    d = make_record(organization, dev_key, created_at=day + timedelta(days=3), status=502)
    make_record(other_organization, other_key, created_at=day, status=429, model="o1")

    def ids(**filters) -> list[str]:
        found = recent_requests(organization=organization, filters=RequestFilters(**filters))
        return [record.request_id for record in found]

    assert ids() == [d.request_id, c.request_id, b.request_id, a.request_id]
    assert ids(api_key=prod_key) == [b.request_id, a.request_id]
    assert ids(api_key=other_key) == []  # another tenant's key matches nothing here
    assert ids(model="o1") == [c.request_id]
    assert ids(status="ok") == [c.request_id, a.request_id]
    assert ids(status="error") == [d.request_id, b.request_id]
    assert ids(status="429") == [b.request_id]
    assert ids(since=date(2026, 11, 11), until=date(2026, 11, 12)) == [c.request_id, b.request_id]
    assert ids(api_key=dev_key, status="error") == [d.request_id]
