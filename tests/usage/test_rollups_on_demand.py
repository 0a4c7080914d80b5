"""The usage page agrees with the overview whether or not beat rolls usage up: reading the
page rolls up the organization's records written since it was last read, and beat's
rollups running beside it count nothing twice."""

from __future__ import annotations

import re
import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from billing.selectors import organization_month_usage
from tests.usage.test_pipeline import bookings, event
from usage import pipeline, tasks
from usage.models import Period, UsageRecord, UsageRollup


def calls(organization, *costs: int, at: float | None = None) -> None:
    """Calls booked as the pipeline books them (records and ledger), not rolled up."""
    extra = {} if at is None else {"at": at}
    pipeline.book(
        bookings(*(event(organization, f"req_{uuid.uuid4().hex}", c, **extra) for c in costs))
    )


def shown(client: Client, path: str, testid: str) -> str:
    html = client.get(path).content.decode()
    found = re.search(rf'data-testid="{testid}">([^<]+)<', html)
    assert found, f"{testid} not on {path}"
    return found[1].strip()


def assert_pages_agree(client: Client, organization) -> str:
    spent = shown(client, "/", "spent")
    assert shown(client, "/usage/?granularity=day", "total-spend") == spent
    assert shown(client, "/usage/?granularity=hour", "total-spend") == spent
    assert shown(client, "/usage/?granularity=month", "total-spend") == spent
    _, requests = organization_month_usage(organization=organization)
    assert shown(client, "/usage/?granularity=day", "total-requests") == str(requests)
    return spent


@pytest.mark.django_db
def test_without_beat_the_usage_page_shows_what_the_overview_shows(dashboard, organization):
    calls(organization, 20_000_000, 15_000_000)
    assert not UsageRollup.objects.exists()  # nothing rolled them up
    assert assert_pages_agree(dashboard, organization) == "$0.04"

    calls(organization, 35_000_000)  # after a first reading of the page
    assert assert_pages_agree(dashboard, organization) == "$0.07"


@pytest.mark.django_db
def test_calls_of_earlier_hours_never_rolled_up_are_counted(dashboard, organization):
    earlier = (timezone.now() - timedelta(hours=3)).timestamp()
    if timezone.now().day == 1 and timezone.now().hour < 3:
        earlier = timezone.now().timestamp()  # (keep them in this month, as the overview)
    calls(organization, 10_000_000, at=earlier)
    calls(organization, 20_000_000)
    assert assert_pages_agree(dashboard, organization) == "$0.03"
    hours = UsageRollup.objects.filter(organization=organization, period=Period.HOUR)
    assert sum(row.cost_nanos for row in hours) == 30_000_000


@pytest.mark.django_db
def test_with_beat_too_nothing_is_counted_twice(dashboard, organization):
    calls(organization, 10_000_000)
    tasks.rollup_hours()
    tasks.rollup_days()
    assert assert_pages_agree(dashboard, organization) == "$0.01"
    calls(organization, 5_000_000)
    assert assert_pages_agree(dashboard, organization) == "$0.02"  # read before beat's turn
    tasks.rollup_hours()
    tasks.rollup_days()
    assert assert_pages_agree(dashboard, organization) == "$0.02"
    for period in Period:
        rows = UsageRollup.objects.filter(organization=organization, period=period)
        assert sum(row.requests for row in rows) == UsageRecord.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_page_views_and_beat_at_once_write_each_total_once(signed_in, owner, organization):
    calls(organization, *([1_000_000] * 20))
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def view() -> None:
        try:
            client = signed_in(owner)
            start.wait()
            assert client.get("/usage/").status_code == 200
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def beat() -> None:
        try:
            start.wait()
            tasks.rollup_hours()
            tasks.rollup_days()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=view) for _ in range(4)]
    threads += [threading.Thread(target=beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for period in Period:
        rows = UsageRollup.objects.filter(organization=organization, period=period)
        assert sum(row.cost_nanos for row in rows) == 20_000_000
        assert sum(row.requests for row in rows) == 20
