"""Usage events: queued in Redis by the gateway, booked once by the drain task."""

import time

import orjson
import pytest

from billing import usage_queue
from billing.models import LedgerEntry
from billing.selectors import organization_balance_nanos
from billing.services import credits_grant
from billing.tasks import drain_usage_events


def event(organization, request_id: str, cost: int = 1000) -> dict:
    return {
        "request_id": request_id,
        "organization_id": organization.pk,
        "key_id": 1,
        "model": "gpt-4o",
        "cost_nanos": cost,
        "description": "gpt-4o via key test",
    }


def enqueue(redis_client, *events) -> None:
    redis_client.rpush(usage_queue.QUEUE, *[orjson.dumps(e) for e in events])


@pytest.mark.django_db
def test_booking_the_same_events_twice_books_them_once(organization):
    events = [event(organization, "req_a"), event(organization, "req_b", 5)]
    assert usage_queue.book(events) == 2
    assert usage_queue.book(events) == 0
    assert LedgerEntry.objects.filter(kind="usage").count() == 2
    assert organization_balance_nanos(organization=organization) == -1005


@pytest.mark.django_db
def test_a_drain_books_everything_queued_and_empties_the_queue(organization, redis_client):
    credits_grant(organization=organization, amount_nanos=10_000, reference="grant:u")
    enqueue(redis_client, *[event(organization, f"req_{i}") for i in range(1200)])
    assert usage_queue.drain() == 1200
    assert usage_queue.pending() == 0
    assert organization_balance_nanos(organization=organization) == 10_000 - 1_200_000


@pytest.mark.django_db
def test_a_drain_that_died_before_trimming_is_finished_without_double_booking(
    organization, redis_client
):
    events = [event(organization, f"req_{i}") for i in range(10)]
    usage_queue.book(events[:6])  # booked, but the worker died before LTRIM
    enqueue(redis_client, *events)
    assert usage_queue.drain() == 4
    assert LedgerEntry.objects.filter(kind="usage").count() == 10


@pytest.mark.django_db
def test_free_events_book_nothing(organization):
    assert usage_queue.book([event(organization, "req_free", 0)]) == 0
    assert not LedgerEntry.objects.exists()


def test_a_real_worker_drains_the_queue(celery_worker, organization, redis_client):
    enqueue(redis_client, event(organization, "req_worker", 42))
    drain_usage_events.delay()
    deadline = time.monotonic() + 30
    while not LedgerEntry.objects.filter(reference="usage:req_worker").exists():
        assert celery_worker.poll() is None, "the worker died"
        assert time.monotonic() < deadline, "the worker did not book the event"
        time.sleep(0.2)
    assert LedgerEntry.objects.get(reference="usage:req_worker").amount_nanos == -42


@pytest.mark.django_db
def test_booking_updates_the_keys_last_used_time(organization, owner):
    from accounts.services import api_key_create

    api_key = api_key_create(organization=organization, name="k", created_by=owner).api_key
    usage_queue.book([{**event(organization, "req_t"), "key_id": api_key.pk, "at": 1_800_000_000}])
    api_key.refresh_from_db()
    assert int(api_key.last_used_at.timestamp()) == 1_800_000_000
    usage_queue.book(
        [{**event(organization, "req_old"), "key_id": api_key.pk, "at": 1_700_000_000}]
    )
    api_key.refresh_from_db()
    assert int(api_key.last_used_at.timestamp()) == 1_800_000_000  # never moves back
