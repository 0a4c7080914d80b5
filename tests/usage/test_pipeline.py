"""The usage pipeline: events queued in the credit store's stream, written once as records
and ledger entries."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import orjson
import pytest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from accounts.services import api_key_create
from billing.models import LedgerEntry
from billing.selectors import organization_balance_nanos
from billing.services import credits_grant
from credit import keys
from credit.records import QueuedUsage
from usage import metric_exposition, metrics, pipeline
from usage.metric_labels import Bounds
from usage.models import Period, UsageRecord, UsageRollup
from usage.rollups import rollup
from usage.tasks import drain_events


def event(organization, request_id: str, cost: int = 1000, **extra) -> dict:
    return {
        "request_id": request_id,
        "organization_id": organization.pk,
        "key_id": None,
        "endpoint": "chat",
        "model": "gpt-4o",
        "provider": "openai",
        "status": 200,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_nanos": cost,
        "ttfb_ms": 12.5,
        "duration_ms": 40.0,
        "at": time.time(),
        "description": "gpt-4o via key test",
        **extra,
    }


def enqueue(redis_client, *events) -> None:
    """As a settlement queues them: the organization, the charge, the event."""
    for e in events:
        fields = {"o": e["organization_id"], "c": e["cost_nanos"], "u": 0, "e": orjson.dumps(e)}
        redis_client.xadd(keys.usage_stream(keys.shard_of(e["organization_id"])), fields)


def bookings(*events) -> list[pipeline.Booking]:
    """Events as the drain hands them to `book` (the charge as queued with them)."""
    found = []
    for e in events:
        entry = QueuedUsage("0-0", e["organization_id"], e["cost_nanos"], 0, orjson.dumps(e), e)
        found.append(pipeline.Booking(entry, dict(e)))
    return found


@pytest.mark.django_db
def test_writing_the_same_events_twice_writes_them_once(organization):
    events = [event(organization, "req_a"), event(organization, "req_b", 5)]
    assert len(pipeline.book(bookings(*events))) == 2  # the new events
    assert pipeline.book(bookings(*events)) == []
    assert pipeline.book(bookings(events[0], events[0])) == []
    assert UsageRecord.objects.count() == 2
    assert LedgerEntry.objects.filter(kind="usage").count() == 2
    assert organization_balance_nanos(organization=organization) == -1005
    record = UsageRecord.objects.get(request_id="req_a")
    assert (record.prompt_tokens, record.completion_tokens, record.cost_nanos) == (10, 5, 1000)
    assert record.ttfb_ms == 12.5 and record.duration_ms == 40.0 and record.status == 200


@pytest.mark.django_db
def test_free_and_refused_calls_are_recorded_but_charge_nothing(organization):
    pipeline.book(
        bookings(
            event(organization, "req_free", 0),
            event(organization, "req_402", 0, status=402, error_code="insufficient_quota"),
        )
    )
    assert UsageRecord.objects.get(request_id="req_402").error_code == "insufficient_quota"
    assert not LedgerEntry.objects.exists()


@pytest.mark.django_db
def test_a_drain_writes_everything_queued_and_empties_the_queue(organization, redis_client):
    credits_grant(organization=organization, amount_nanos=10_000, reference="grant:u")
    enqueue(redis_client, *[event(organization, f"req_{i}") for i in range(2500)])
    assert pipeline.drain() == 2500
    assert pipeline.pending() == 0
    assert UsageRecord.objects.count() == 2500
    assert organization_balance_nanos(organization=organization) == 10_000 - 2_500_000


@pytest.mark.django_db
def test_a_drain_that_died_before_acknowledging_is_finished_without_double_writing(
    organization, redis_client
):
    events = [event(organization, f"req_{i}") for i in range(10)]
    pipeline.book(bookings(*events[:6]))  # written, but the worker died before its ack
    enqueue(redis_client, *events)
    assert pipeline.drain() == 4
    assert LedgerEntry.objects.filter(kind="usage").count() == 10
    assert UsageRecord.objects.count() == 10


@pytest.mark.django_db
def test_events_that_can_never_be_written_go_to_dead_letters(organization, redis_client):
    for raw in (b"{not json", orjson.dumps({"no": "id"})):
        stream = keys.usage_stream(keys.shard_of(organization.pk))
        redis_client.xadd(stream, {"o": organization.pk, "c": 0, "u": 0, "e": raw})
    enqueue(
        redis_client,
        event(organization, "req_ok"),
        {**event(organization, "x"), "organization_id": 99999},
    )
    assert pipeline.drain() == 1
    assert pipeline.pending() == 0
    assert redis_client.llen(keys.USAGE_DEAD) == 3
    assert UsageRecord.objects.filter(request_id="req_ok").exists()


def test_a_real_worker_drains_the_queue(celery_worker, organization, redis_client):
    enqueue(redis_client, event(organization, "req_worker", 42))
    drain_events.delay()
    deadline = time.monotonic() + 30
    while not UsageRecord.objects.filter(request_id="req_worker").exists():
        assert celery_worker.poll() is None, "the worker died"
        assert time.monotonic() < deadline, "the worker did not write the event"
        time.sleep(0.2)
    assert LedgerEntry.objects.get(reference="usage:req_worker").amount_nanos == -42


@pytest.mark.django_db
def test_writing_updates_the_keys_last_used_time(organization, owner):
    api_key = api_key_create(organization=organization, name="k", created_by=owner).api_key
    pipeline.book(bookings(event(organization, "req_t", key_id=api_key.pk, at=1_800_000_000)))
    api_key.refresh_from_db()
    assert int(api_key.last_used_at.timestamp()) == 1_800_000_000
    assert UsageRecord.objects.get(request_id="req_t").api_key_id == api_key.pk
    pipeline.book(bookings(event(organization, "req_old", key_id=api_key.pk, at=1_700_000_000)))
    api_key.refresh_from_db()
    assert int(api_key.last_used_at.timestamp()) == 1_800_000_000  # never moves back


@pytest.mark.django_db
def test_a_deleted_key_does_not_block_its_usage(organization):
    pipeline.book(bookings(event(organization, "req_gone", key_id=424242)))
    assert UsageRecord.objects.get(request_id="req_gone").api_key_id is None


@pytest.mark.django_db
def test_rollups_total_by_hour_and_day_and_are_idempotent(organization):
    base = datetime(2026, 11, 20, 10, 15, tzinfo=UTC).timestamp()
    pipeline.book(
        bookings(
            event(organization, "r1", 100, at=base),
            event(organization, "r2", 200, at=base + 600),
            event(organization, "r3", 300, at=base + 3600, status=502),
            event(organization, "r4", 400, at=base + 3600, model="gpt-4o-mini"),
        )
    )
    since = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    until = since + timedelta(hours=23)
    for _ in range(2):
        rollup(Period.HOUR, since=since, until=until)
        rollup(Period.DAY, since=since, until=until)
    ten = UsageRollup.objects.get(period="hour", start=since.replace(hour=10), model="gpt-4o")
    assert (ten.requests, ten.cost_nanos, ten.prompt_tokens) == (2, 300, 20)
    eleven = UsageRollup.objects.get(period="hour", start=since.replace(hour=11), model="gpt-4o")
    assert (eleven.requests, eleven.errors) == (1, 1)
    day = UsageRollup.objects.filter(period="day", start=since)
    assert sum(r.requests for r in day) == 4 and sum(r.cost_nanos for r in day) == 1000
    assert UsageRollup.objects.count() == 3 + 2


# --- metrics ---------------------------------------------------------------------------


def test_metrics_count_and_render_in_prometheus_format():
    failed = {
        "request_id": "r",
        "organization_id": 1,
        "endpoint": "chat",
        "model": "gpt-4o",
        "provider": "openai",
        "status": 502,
        "prompt_tokens": 3,
        "cost_nanos": 1500,
        "duration_ms": 30.0,
        "at": 100.0,
    }
    known = Bounds(models=frozenset({"gpt-4o"}), providers=frozenset({"openai"}))
    counts = metrics.counts_for([failed, {**failed, "request_id": "s"}], now=100.9, bounds=known)
    text = metric_exposition.render(dict(counts))
    assert 'nexeon_requests_total{endpoint="chat",model="gpt-4o",status="502"} 2.0' in text
    assert 'nexeon_upstream_errors_total{provider="openai",status="502"} 2.0' in text
    assert 'nexeon_tokens_total{kind="prompt",model="gpt-4o"} 6.0' in text
    assert 'nexeon_cost_usd_total{model="gpt-4o"} 3e-06' in text
    duration = "nexeon_request_duration_seconds_bucket"
    assert f'{duration}{{le="0.025",model="gpt-4o",status="502"}} 0.0' in text
    assert f'{duration}{{le="0.05",model="gpt-4o",status="502"}} 2.0' in text
    assert f'{duration}{{le="+Inf",model="gpt-4o",status="502"}} 2.0' in text
    assert 'nexeon_accounting_lag_seconds_bucket{le="1"} 2.0' in text  # 0.87 s after the end
    assert 'nexeon_accounting_lag_seconds_bucket{le="0.5"} 0.0' in text
    lines = text.splitlines()
    assert "# TYPE nexeon_request_duration_seconds histogram" in lines
    buckets = [line for line in lines if line.startswith("nexeon_request_duration_seconds_")]
    assert buckets[-2].startswith("nexeon_request_duration_seconds_count")  # then _sum
    bounds = [float(b.split('le="')[1].split('"')[0].replace("+Inf", "inf")) for b in buckets[:-2]]
    assert bounds == sorted(bounds)
    counts = [float(b.rsplit(" ", 1)[1]) for b in buckets[:-2]]
    assert counts == sorted(counts)  # cumulative


@pytest.mark.django_db
def test_the_metrics_endpoint_needs_the_operators_token(
    client, settings, organization, redis_client, monkeypatch
):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    settings.METRICS_TOKEN = "op-secret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    enqueue(redis_client, event(organization, "req_m"), event(organization, "req_n"))
    pipeline.drain()
    enqueue(redis_client, event(organization, "req_pending"))
    later = time.time() + 3
    monkeypatch.setattr(metrics, "time", SimpleNamespace(time=lambda: later))  # 3 s on
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer op-secret")
    assert response.status_code == 200
    assert response["Content-Type"] == CONTENT_TYPE_LATEST
    text = response.content.decode()
    assert 'nexeon_requests_total{endpoint="chat",model="gpt-4o",status="200"} 2.0' in text
    assert "nexeon_usage_queue_depth 1.0" in text
    (oldest,) = [
        float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("nexeon_usage_oldest_pending_seconds ")
    ]
    assert 2.5 < oldest < 60
    pipeline.drain()
    pipeline.book(bookings(event(organization, "req_m")))  # written before: not counted again
    again = client.get("/metrics", HTTP_AUTHORIZATION="Bearer op-secret").content.decode()
    assert 'nexeon_requests_total{endpoint="chat",model="gpt-4o",status="200"} 3.0' in again


@pytest.mark.django_db(transaction=True)
def test_an_event_the_database_cannot_store_does_not_stop_the_queue(organization, redis_client):
    # PostgreSQL text cannot hold NUL: the whole batch is refused, then written one by one.
    enqueue(
        redis_client,
        event(organization, "req_before"),
        event(organization, "req_poison", model="gpt-4o\x00"),
        event(organization, "req_after"),
    )
    assert pipeline.drain() == 2
    assert pipeline.pending() == 0
    assert set(UsageRecord.objects.values_list("request_id", flat=True)) == {
        "req_before",
        "req_after",
    }
    (dead,) = redis_client.lrange(keys.USAGE_DEAD, 0, -1)
    assert orjson.loads(orjson.loads(dead)["event"])["request_id"] == "req_poison"
    assert LedgerEntry.objects.filter(reference="usage:req_poison").count() == 0


@pytest.mark.django_db
def test_events_queued_by_a_gateway_older_than_the_stream_are_booked(organization, redis_client):
    """Upgrading with usage still in the old Redis list: the drain moves it into the
    stream, each event once, and books it."""
    credits_grant(organization=organization, amount_nanos=10_000, reference="grant:old")
    redis_client.rpush(
        keys.LEGACY_USAGE_LIST,
        *[orjson.dumps(event(organization, f"req_old_{n}", 700)) for n in range(3)],
        b"{not json",
    )
    assert pipeline.drain() == 3
    assert not redis_client.exists(keys.LEGACY_USAGE_LIST)
    assert LedgerEntry.objects.filter(reference__startswith="usage:req_old_").count() == 3
    assert organization_balance_nanos(organization=organization) == 10_000 - 2_100
    assert redis_client.llen(keys.USAGE_DEAD) == 1
    assert pipeline.pending() == 0
