"""The money promise as a property: for random schedules of concurrent calls (answers,
streams read to their end, streams the client cuts), providers billing up to the cap they
were sent, gateways killed mid-call and Redis killed and restarted from its append-only
file, an account that starts with little credit ends with

* a balance of at least zero, equal in the credit store and the ledger,
* every answered call booked exactly once (one usage record, one ledger entry if charged),
* nothing held and nothing charged but unbooked.

Each example runs a real gateway process against its own Redis (tests/own_services.py) and
the test database; the drain and the reaper run in this process, as the worker would.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import httpx
import pytest
from django.conf import settings as django_settings
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from accounts.models import User
from accounts.services import api_key_create, organization_create
from apigateway.catalog import catalog_load_defaults
from billing.models import EntryKind, LedgerEntry
from billing.services import credits_grant
from credit.stores import current as credit_store
from tests.apigateway.conftest import UPSTREAM_KEY
from tests.ledger_check import assert_balance_reconciles
from tests.own_services import OwnRedis
from tests.support import manage_env, start_nexeon, stop_process, test_database_url
from usage import pipeline
from usage.models import UsageRecord

START_NANOS = 10_000_000  # $0.01: a few calls' reservations, so refusals happen too

call_step = st.tuples(
    st.just("calls"),
    st.integers(min_value=1, max_value=6),  # at once
    st.sampled_from(["answer", "stream", "cut"]),
    st.integers(min_value=1, max_value=400),  # max_tokens
    st.just(0.0),
)
trouble_step = st.tuples(
    st.sampled_from(["kill", "redis"]),  # the gateway killed, or Redis, while calls run
    st.integers(min_value=1, max_value=6),
    st.sampled_from(["answer", "stream", "cut"]),
    st.integers(min_value=1, max_value=400),
    st.floats(min_value=0.0, max_value=0.6),  # seconds into the batch
)
schedules = st.lists(st.one_of(call_step, call_step, trouble_step), min_size=1, max_size=6)


class Stack:
    def __init__(self, fake_openai, redis: OwnRedis) -> None:
        self.fake = fake_openai
        self.redis = redis
        self.gateway = None
        self.url = ""

    def start(self) -> None:
        environment = manage_env(
            DATABASE_URL=test_database_url(),
            REDIS_URL=self.redis.url,
            OPENAI_BASE_URL=f"{self.fake.base_url}/v1",
            OPENAI_API_KEY=UPSTREAM_KEY,
            GATEWAY_LEASE_SECONDS="0.2",
            GATEWAY_SETTLE_RETRY_SECONDS="5",
        )
        self.url, self.gateway = start_nexeon(environment, workers=1, grace=1)  # type: ignore[assignment]

    def kill(self) -> None:
        stop_process(self.gateway, signal.SIGKILL)  # type: ignore[arg-type]

    def restart_redis(self) -> None:
        self.redis.kill()
        self.redis.start()


async def calls(url: str, key: str, count: int, kind: str, max_tokens: int) -> list[tuple]:
    body = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "a b c d e f g h i j"}],
        "max_tokens": max_tokens,
    }
    if kind != "answer":
        body["stream"] = True
    headers = {"authorization": f"Bearer {key}"}

    async def one(client: httpx.AsyncClient) -> tuple:
        try:
            if kind == "answer":
                response = await client.post(
                    f"{url}/v1/chat/completions", json=body, headers=headers
                )
                return response.status_code, response.headers.get("x-request-id")
            async with client.stream(
                "POST", f"{url}/v1/chat/completions", json=body, headers=headers
            ) as response:
                async for n, _ in aenumerate(response.aiter_lines()):
                    if kind == "cut" and n >= 2:
                        break
                return response.status_code, response.headers.get("x-request-id")
        except httpx.TransportError:
            return 0, None

    async with httpx.AsyncClient(timeout=20) as client:
        return await asyncio.gather(*(one(client) for _ in range(count)))


async def aenumerate(items):
    n = 0
    async for item in items:
        yield n, item
        n += 1


async def during(stack: Stack, step: tuple, key: str):
    """A batch of calls; with "kill" or "redis", that process is SIGKILLed while they run
    (`after` seconds into the batch; the provider takes 0.3 s), and started again."""
    what, count, kind, max_tokens, after = step
    if what == "calls":
        return await calls(stack.url, key, count, kind, max_tokens)
    stack.fake.latency = 0.3
    batch = asyncio.ensure_future(calls(stack.url, key, count, kind, max_tokens))
    await asyncio.sleep(after)
    if what == "kill":
        await asyncio.to_thread(stack.kill)
    else:
        await asyncio.to_thread(stack.restart_redis)
    results = await batch
    stack.fake.latency = 0.0
    if what == "kill":
        await asyncio.to_thread(stack.start)
    return results


@contextmanager
def own_money_redis(redis: OwnRedis) -> Iterator[None]:
    """This process's credit store and drain on the stack's Redis."""
    saved = django_settings.REDIS_URL
    django_settings.REDIS_URL = redis.url
    try:
        yield
    finally:
        django_settings.REDIS_URL = saved


@pytest.mark.django_db(transaction=True)
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(schedule=schedules)
def test_no_schedule_overdraws_loses_or_doubles_money(fake_openai, schedule):
    catalog_load_defaults()  # (a transactional test before this one emptied the tables)
    fake_openai.reset()
    fake_openai.bills = {"completion": "max"}  # every answer as long as its cap allows
    fake_openai.chunk_delay = 0.01
    owner, _ = User.objects.get_or_create(email="property@example.com")
    organization = organization_create(name="Property", owner=owner)
    credits_grant(
        organization=organization, amount_nanos=START_NANOS, reference=f"grant:{organization.pk}"
    )
    key = api_key_create(organization=organization, name="p").plaintext
    redis = OwnRedis()
    redis.start()
    stack = Stack(fake_openai, redis)
    answered: list[str] = []
    try:
        with own_money_redis(redis):
            stack.start()
            for step in schedule:
                what = step[0]
                results = asyncio.run(during(stack, step, key))
                answered += [rid for status, rid in results if status == 200 and rid]
                statuses = {status for status, _ in results}
                assert statuses <= {0, 200, 402, 503}
                for status in statuses:
                    event(f"{what}: {status}")
            stop_process(stack.gateway)
            credit_store().reap(now=10**10)  # a killed gateway's holds, long after
            balance = assert_balance_reconciles(organization.pk)
    finally:
        if stack.gateway is not None and stack.gateway.poll() is None:
            stop_process(stack.gateway)
        redis.stop()
    assert balance >= 0
    records = UsageRecord.objects.filter(organization=organization)
    recorded = list(records.values_list("request_id", flat=True))
    assert len(recorded) == len(set(recorded))  # never twice
    assert set(answered) <= set(recorded)  # every answered call
    charged = LedgerEntry.objects.filter(organization=organization, kind=EntryKind.USAGE)
    assert charged.count() == records.filter(cost_nanos__gt=0).count()
    spent = -sum(charged.values_list("amount_nanos", flat=True))
    assert balance == START_NANOS - spent
    assert Decimal(spent) <= START_NANOS
    pipeline.drain()  # (nothing left)
