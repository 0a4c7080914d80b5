"""Operator metrics (usage/metrics.py) on the real Redis: what a batch of written calls adds
to the hash, and what GET /metrics answers for it, whatever the callers sent."""

from __future__ import annotations

import itertools
import time
import uuid
from collections import Counter

import pytest
from django.conf import settings as django_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from apigateway.models import CatalogModel
from nexeon import counters
from tests.usage.test_pipeline import bookings
from usage import metric_exposition, metric_labels, metrics, pipeline
from usage.metric_families import DURATION_BUCKETS, HASH, LAG_BUCKETS
from usage.models import Endpoint

TOKEN = "op-secret"
_ids = itertools.count(1)
CRAFTED_MODELS = [
    'gpt-4o",status="200',
    "gpt-4o,kind=prompt",
    "model=gpt-4o",
    'gpt-4o"}\nnexeon_cost_usd_total{model="gpt-4o"} 999\n',
    "gpt-4o}",
    "gpt-4o\x1fle=0.005",
    "gpt-4o\x1fstatus=200",
    "x\x1fz=1",
]


DISCREPANCIES = "nexeon_balance_discrepancies_total"


def written(booked: list[pipeline.Booking]) -> list[dict]:
    """The events the drain counts: those it wrote, with what was charged."""
    return [{**booking.event, "cost_nanos": booking.charge} for booking in booked]


def event(organization, **extra) -> dict:
    return {
        "request_id": f"req_{next(_ids)}",
        "organization_id": organization.pk,
        "key_id": None,
        "endpoint": "chat",
        "model": "gpt-4o",
        "provider": "openai",
        "status": 200,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_nanos": 1000,
        "ttfb_ms": 12.5,
        "duration_ms": 40.0,
        "at": time.time() - 1000,  # an accounting lag far above the last bound: one bucket
        **extra,
    }


def unknown_model_call(organization, model: str) -> dict:
    """What the gateway records for a call to a model it does not serve (a 404)."""
    return event(
        organization,
        model=model,
        provider="",
        status=404,
        prompt_tokens=0,
        completion_tokens=0,
        cost_nanos=0,
    )


def drained(redis_client, *events: dict) -> None:
    """What the usage drain does with a batch: write it, then count its new calls."""
    metrics.observe(written(pipeline.book(bookings(*events))), redis_client)


@pytest.fixture(autouse=True)
def fresh_catalog():
    metric_labels.forget_catalog()  # another test's catalog may be cached
    yield
    metric_labels.forget_catalog()


@pytest.fixture
def scrape(client, settings):
    settings.METRICS_TOKEN = TOKEN

    def get() -> str:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200, response.content[:500]
        return response.content.decode()

    return get


def samples(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(text: str, name: str, **labels: str) -> float:
    (found,) = [s.value for s in samples(text) if s.name == name and s.labels == labels]
    return found


def catalog_ids() -> set[str]:
    return set(CatalogModel.objects.values_list("public_id", flat=True))


# The label names each sample may carry, by sample name.
LABELS = {
    "nexeon_requests_total": {"endpoint", "model", "status"},
    "nexeon_upstream_errors_total": {"provider", "status"},
    "nexeon_tokens_total": {"kind", "model"},
    "nexeon_cost_usd_total": {"model"},
    "nexeon_request_duration_seconds_bucket": {"model", "status", "le"},
    "nexeon_request_duration_seconds_count": {"model", "status"},
    "nexeon_request_duration_seconds_sum": {"model", "status"},
    "nexeon_time_to_first_byte_seconds_bucket": {"model", "le"},
    "nexeon_time_to_first_byte_seconds_count": {"model"},
    "nexeon_time_to_first_byte_seconds_sum": {"model"},
    "nexeon_accounting_lag_seconds_bucket": {"le"},
    "nexeon_accounting_lag_seconds_count": set(),
    "nexeon_accounting_lag_seconds_sum": set(),
    "nexeon_usage_queue_depth": set(),
    "nexeon_usage_oldest_pending_seconds": set(),
    "nexeon_usage_dead_letters": set(),
    "nexeon_balance_discrepancies_total": {"kind"},
}


def assert_labels_bounded(text: str, models: set[str]) -> None:
    """Each sample has its family's label names, each value from its bounded set."""
    providers = set(django_settings.PROVIDERS)
    for sample in samples(text):
        assert set(sample.labels) == LABELS[sample.name], sample
        labels = sample.labels
        assert labels.get("model", "other") in models | {"other"}, sample
        assert labels.get("provider", "other") in providers | {"other"}, sample
        assert labels.get("endpoint", "chat") in {*Endpoint.values, "other"}
        assert labels.get("kind", "prompt") in {"prompt", "completion"}
        status = labels.get("status", "200")
        assert status == "other" or 100 <= int(status) <= 599, sample


# --- the findings ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_model_id_with_a_unit_separator_is_counted_and_the_scrape_still_answers(
    organization, redis_client, scrape
):
    # Such a call answers 404 but is recorded; its id must not make every scrape a 500.
    drained(redis_client, unknown_model_call(organization, "gpt-4o\x1fx"))
    text = scrape()
    assert value(text, "nexeon_requests_total", endpoint="chat", model="other", status="404") == 1


@pytest.mark.django_db
def test_crafted_model_and_provider_ids_cannot_forge_labels_or_samples(
    organization, redis_client, scrape
):
    drained(redis_client, event(organization))  # one real gpt-4o call: $0.000001
    drained(
        redis_client,
        *(unknown_model_call(organization, model) for model in CRAFTED_MODELS),
        event(organization, status=502, provider="openai\x1fstatus=200", cost_nanos=0),
        event(organization, status=503, provider='openai",status="200', cost_nanos=0),
    )
    text = scrape()
    assert_labels_bounded(text, catalog_ids())
    assert value(text, "nexeon_cost_usd_total", model="gpt-4o") == pytest.approx(1e-6)
    assert value(
        text, "nexeon_requests_total", endpoint="chat", model="other", status="404"
    ) == len(CRAFTED_MODELS)
    assert value(text, "nexeon_upstream_errors_total", provider="other", status="502") == 1
    assert value(text, "nexeon_upstream_errors_total", provider="other", status="503") == 1


@pytest.mark.django_db
def test_random_model_ids_do_not_grow_the_metrics_hash(organization, redis_client):
    drained(redis_client, unknown_model_call(organization, "no-such-model"))
    size = redis_client.hlen(HASH)
    for _ in range(5):
        drained(
            redis_client,
            *(unknown_model_call(organization, uuid.uuid4().hex) for _ in range(40)),
        )
    assert redis_client.hlen(HASH) == size


@pytest.mark.django_db
def test_a_whole_sum_after_a_fractional_one_is_still_added(organization, redis_client, scrape):
    # A field once HINCRBYFLOAT'd refuses HINCRBY: the 1.0 s batch must not be lost.
    drained(redis_client, event(organization, duration_ms=730.0))
    drained(redis_client, event(organization, duration_ms=1000.0))
    text = scrape()
    labels = {"model": "gpt-4o", "status": "200"}
    assert value(text, "nexeon_request_duration_seconds_sum", **labels) == pytest.approx(1.73)
    assert value(text, "nexeon_request_duration_seconds_count", **labels) == 2


# --- the exposition ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_known_batch_is_exposed_in_families_prometheus_can_parse(
    organization, redis_client, scrape
):
    now = time.time()
    drained(
        redis_client,
        event(organization, duration_ms=30.0, ttfb_ms=8.0, at=now - 0.5),
        event(organization, duration_ms=700.0, ttfb_ms=300.0, at=now - 0.5),
        event(organization, status=502, prompt_tokens=0, completion_tokens=0, cost_nanos=0),
        event(organization, endpoint="embeddings", model="text-embedding-3-small"),
        unknown_model_call(organization, "no-such-model"),
    )
    families = {family.name: family for family in text_string_to_metric_families(scrape())}
    assert {name: family.type for name, family in families.items()} == {
        "nexeon_requests": "counter",
        "nexeon_request_duration_seconds": "histogram",
        "nexeon_time_to_first_byte_seconds": "histogram",
        "nexeon_upstream_errors": "counter",
        "nexeon_tokens": "counter",
        "nexeon_cost_usd": "counter",
        "nexeon_accounting_lag_seconds": "histogram",
        "nexeon_usage_queue_depth": "gauge",
        "nexeon_usage_oldest_pending_seconds": "gauge",
        "nexeon_usage_dead_letters": "gauge",
        "nexeon_balance_discrepancies": "counter",
    }
    assert families["nexeon_requests"].documentation == (
        "Calls to /v1 by endpoint, model and HTTP status."
    )
    text = scrape()
    assert_labels_bounded(text, catalog_ids())
    requests = "nexeon_requests_total"
    assert value(text, requests, endpoint="chat", model="gpt-4o", status="200") == 2
    assert value(text, requests, endpoint="chat", model="gpt-4o", status="502") == 1
    assert value(text, requests, endpoint="chat", model="other", status="404") == 1
    assert (
        value(text, requests, endpoint="embeddings", model="text-embedding-3-small", status="200")
        == 1
    )
    assert value(text, "nexeon_upstream_errors_total", provider="openai", status="502") == 1
    assert value(text, "nexeon_tokens_total", kind="prompt", model="gpt-4o") == 20
    assert value(text, "nexeon_tokens_total", kind="completion", model="gpt-4o") == 10
    assert value(text, "nexeon_cost_usd_total", model="gpt-4o") == pytest.approx(2e-6)
    duration = "nexeon_request_duration_seconds"
    labels = {"model": "gpt-4o", "status": "200"}
    assert value(text, f"{duration}_bucket", le="0.025", **labels) == 0
    assert value(text, f"{duration}_bucket", le="0.05", **labels) == 1
    assert value(text, f"{duration}_bucket", le="1", **labels) == 2
    assert value(text, f"{duration}_bucket", le="+Inf", **labels) == 2
    assert value(text, f"{duration}_count", **labels) == 2
    assert value(text, f"{duration}_sum", **labels) == pytest.approx(0.73)
    bounds = [
        s.labels["le"]
        for s in samples(text)
        if s.name == f"{duration}_bucket"
        and s.labels["model"] == "gpt-4o"
        and s.labels["status"] == "200"
    ]
    assert bounds == [*(f"{b:g}" for b in DURATION_BUCKETS), "+Inf"]
    ttfb = "nexeon_time_to_first_byte_seconds"
    assert value(text, f"{ttfb}_bucket", model="gpt-4o", le="0.01") == 1
    assert value(text, f"{ttfb}_bucket", model="gpt-4o", le="0.5") == 3
    assert value(text, "nexeon_accounting_lag_seconds_count") == 5
    assert value(text, "nexeon_accounting_lag_seconds_bucket", le="1") == 2
    assert value(text, "nexeon_usage_queue_depth") == 0
    assert value(text, "nexeon_usage_dead_letters") == 0
    assert not [sample for sample in samples(text) if sample.name == DISCREPANCIES]


@pytest.mark.django_db
def test_a_foreign_or_malformed_field_in_the_hash_is_skipped(
    redis_client, scrape, caplog, monkeypatch
):
    monkeypatch.setattr(metric_exposition, "_skipped_reported", False)
    redis_client.hset(
        HASH,
        mapping={
            "nexeon_requests_total\x1fendpoint=chat\x1fmodel=a\x1fb": 1,  # an earlier encoding
            '["nexeon_requests_total", [["endpoint", "chat"]]]': 1,  # label names missing
            '["nexeon_no_such_metric", []]': 1,
            '["nexeon_cost_usd_total", [["model", "gpt-4o"]]]': "not a number",
            "[[[": 1,
            b"\xff\xfe": 1,
        },
    )
    counters.increment(DISCREPANCIES, kind="usage_not_booked")
    text = scrape()
    assert value(text, DISCREPANCIES, kind="usage_not_booked") == 1
    assert not [s for s in samples(text) if s.name == "nexeon_requests_total"]
    assert "skipped" in caplog.text
    caplog.clear()
    scrape()
    assert "skipped" not in caplog.text  # logged once per process


@pytest.mark.django_db
def test_without_redis_the_counts_live_in_the_process(organization, scrape, settings, monkeypatch):
    monkeypatch.setattr(counters, "local", Counter())
    settings.REDIS_URL = ""  # embedded mode
    booked = pipeline.book(bookings(event(organization), event(organization)))
    metrics.observe(written(booked), None)
    counters.increment(DISCREPANCIES, kind="usage_not_booked")
    text = scrape()
    assert value(text, "nexeon_requests_total", endpoint="chat", model="gpt-4o", status="200") == 2
    assert value(text, DISCREPANCIES, kind="usage_not_booked") == 1
    assert value(text, "nexeon_usage_queue_depth") == 0


# --- properties --------------------------------------------------------------------------


def field_bound(models: int) -> int:
    """Every field the hash can hold with `models` catalog ids: each label set, per family."""
    model, status = models + 1, 500 + 1  # "other" too
    endpoint, provider = 3 + 1, len(django_settings.PROVIDERS) + 1
    duration = len(DURATION_BUCKETS) + 1 + 2  # buckets, +Inf, _count, _sum
    lag = len(LAG_BUCKETS) + 1 + 2
    return (
        endpoint * model * status  # requests
        + provider * 3  # upstream errors: 502, 503, 504
        + model * 2  # tokens: prompt, completion
        + model  # cost
        + model * status * duration
        + model * duration  # time to first byte
        + lag
        + 1  # balance corrections
    )


any_text = st.text(max_size=40)
call = st.fixed_dictionaries(
    {
        "model": st.one_of(st.sampled_from(["gpt-4o", "gpt-4o-mini"]), any_text),
        "provider": st.one_of(st.sampled_from(["openai", "anthropic", ""]), any_text),
        "endpoint": st.one_of(st.sampled_from(["chat", "embeddings", "images"]), any_text),
        "status": st.one_of(
            st.sampled_from([200, 404, 502, 503, 504]),
            st.integers(-(10**6), 10**6),
            any_text,
            st.none(),
            st.booleans(),
            st.floats(allow_nan=False, allow_infinity=False),
        ),
        "prompt_tokens": st.integers(0, 10**6),
        "completion_tokens": st.integers(0, 10**6),
        "cost_nanos": st.integers(0, 10**9),
        "ttfb_ms": st.one_of(st.none(), st.floats(0, 10**6)),
        "duration_ms": st.floats(0, 10**6),
        "at": st.floats(0, 2 * 10**9),
    }
)


@pytest.mark.django_db
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(call, max_size=8))
def test_any_batch_keeps_the_hash_bounded_by_the_catalog_and_the_exposition_parsable(
    batch, redis_client, scrape
):
    metrics.observe(batch, redis_client)
    assert redis_client.hlen(HASH) <= field_bound(CatalogModel.objects.count())
    assert_labels_bounded(scrape(), catalog_ids())
