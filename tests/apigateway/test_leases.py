"""Admission leases (credit/leases.py): a key's calls after the first are admitted from
a slice of credit and requests taken in one round trip, and every path still ends at
balance - cost, counting only the requests made: given back, reaped after a crash, or not
taken at all where a lease could change an answer."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import replace

import httpx
import pytest
from django.conf import settings

from accounts.services import api_key_create
from apigateway.auth import KeyInfo
from billing.selectors import organization_balance_nanos_by_id
from credit import keys, leases
from credit.records import Charge, LedgerFigures, Reserved
from credit.stores import redis_store
from credit.windows import RateInfo
from tests.apigateway.conftest import Tenant, gateway
from tests.ledger_check import assert_balance_reconciles, available_nanos
from tests.support import open_holds
from usage import pipeline

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def chat(tenant: Tenant, url: str | None = None, key: str | None = None) -> httpx.Response:
    """A chat call that must be answered, to the test's gateway or the one at `url`."""
    response = tenant.post("/chat/completions", CHAT, url=url, key=key)
    assert response.status_code == 200, response.text
    return response


def cost_of(response: httpx.Response) -> int:
    return round(float(response.headers["x-nexeon-cost"]) * 10**9)


def lease_holds(redis_client) -> list[bytes]:
    return [m for m in open_holds(redis_client) if b":credit:hold:lease-" in m]


def wait_for(condition, seconds: float = 5.0):
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return found


def test_a_gateway_killed_holding_a_lease_loses_nothing(tenant, fake_openai, redis_client):
    """Calls admitted from a lease settle against it one by one; when the worker dies, the
    reaper returns the lease minus what those calls spent, so the balance ends at the
    ledger's, every call charged once."""
    organization_id = tenant.organization.pk
    with gateway(fake_openai, workers=1, GATEWAY_LEASE_SECONDS="60") as (url, process):
        answers = [chat(tenant, url)]  # reserves on its own, and asks for a lease
        [member] = wait_for(lambda: lease_holds(redis_client))
        fake_openai.requests.clear()
        answers += [chat(tenant, url) for _ in range(3)]
        assert len(fake_openai.requests) == 3
        # Admitted from the lease: no hold of their own, their costs counted against it.
        assert lease_holds(redis_client) == [member]
        assert len(open_holds(redis_client)) == 1
        leased_costs = sum(cost_of(a) for a in answers[1:])
        assert leased_costs > 0
        assert int(redis_client.hget(member, "spent")) == leased_costs
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)

    lease_credit = int(redis_client.hget(member, "amount"))
    total = sum(cost_of(a) for a in answers)
    before = organization_balance_nanos_by_id(organization_id)
    held_back = available_nanos(organization_id)
    assert held_back == before - total - (lease_credit - leased_costs)
    assert redis_store().reap(now=time.time() + 10**6) == 1
    assert available_nanos(organization_id) == before - total
    assert pipeline.drain() == 4  # one usage record per call, none lost, none twice
    assert organization_balance_nanos_by_id(organization_id) == before - total
    assert_balance_reconciles(organization_id)


def test_a_stopping_gateway_gives_its_leases_back(tenant, fake_openai, redis_client):
    with gateway(fake_openai, workers=1, GATEWAY_LEASE_SECONDS="60") as (url, process):
        chat(tenant, url)
        wait_for(lambda: lease_holds(redis_client))
        chat(tenant, url)
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(15) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    assert lease_holds(redis_client) == []
    assert_balance_reconciles(tenant.organization.pk)


def test_a_lease_given_back_returns_the_credit_and_requests_it_did_not_use(
    tenant, fake_openai, redis_client
):
    """The x-ratelimit headers count each call, leased or not; once the lease is back, the
    window holds exactly the requests made and the balance exactly their cost."""
    key = api_key_create(organization=tenant.organization, name="leased", rpm_limit=10_000)
    answers = [chat(tenant, key=key.plaintext)]
    wait_for(lambda: lease_holds(redis_client))
    answers += [chat(tenant, key=key.plaintext) for _ in range(5)]
    limit = int(answers[0].headers["x-ratelimit-limit-requests"])  # the tightest: key or org
    remaining = [int(a.headers["x-ratelimit-remaining-requests"]) for a in answers]
    assert remaining == [limit - n for n in range(1, 7)]
    wait_for(lambda: not lease_holds(redis_client), settings.GATEWAY_LEASE_SECONDS + 3)
    for window in (
        keys.key_window(tenant.organization.pk, key.api_key.pk),
        keys.organization_window(tenant.organization.pk),
    ):
        assert int(redis_client.hget(window, "R")) == 6
    assert_balance_reconciles(tenant.organization.pk)


KEY = KeyInfo(
    key_id=7,
    organization_id=3,
    name="k",
    rpm_limit=1000,
    tpm_limit=None,
    allowed_models=(),
    expires_at=None,
    monthly_spend_limit_nanos=None,
)


def asked_for(
    key: KeyInfo, amount: int, balance_left: int, rate: RateInfo, monkeypatch, seconds=2.0
):
    """What `consider` would ask Redis for: (credit, requests), or None."""
    asked = []

    async def grant(self, key, credit, requests, seconds):
        asked.append((credit, requests))

    monkeypatch.setattr(leases.LeaseBook, "_grant", grant)
    monkeypatch.setattr(settings, "GATEWAY_LEASE_SECONDS", seconds)

    async def run():
        book = leases.LeaseBook()
        book.consider(key, amount, balance_left, rate)
        await asyncio.sleep(0)

    asyncio.run(run())
    return asked[0] if asked else None


@pytest.mark.parametrize(
    ("key", "amount", "balance_left", "rate", "expected"),
    [
        (KEY, 1_000, 10**9, RateInfo(1000, 900), (32_000, 32)),  # 32 calls like this one
        (KEY, 1_000, 64_000, RateInfo(1000, 900), (4_000, 32)),  # 1/16 of the balance
        (KEY, 1_000, 63_999, RateInfo(1000, 900), None),  # room for fewer than 4 calls
        (KEY, 1_000, 10**9, RateInfo(1000, 100), (32_000, 6)),  # 1/16 of the requests left
        (KEY, 1_000, 10**9, RateInfo(1000, 63), None),  # fewer than 4 requests
        (KEY, 1_000, 10**9, RateInfo(), (32_000, -1)),  # no request limit applies
    ],
)
def test_a_lease_is_a_small_share_of_what_is_left(
    key, amount, balance_left, rate, expected, monkeypatch
):
    assert asked_for(key, amount, balance_left, rate, monkeypatch) == expected


@pytest.mark.parametrize(
    "change",
    [{"tpm_limit": 10_000}, {"org_tpm_limit": 10_000}, {"monthly_spend_limit_nanos": 10**9}],
)
def test_keys_whose_limits_are_settled_per_call_take_no_lease(change, monkeypatch):
    key = replace(KEY, **change)
    assert asked_for(key, 1_000, 10**9, RateInfo(1000, 900), monkeypatch) is None


def test_no_lease_when_leases_are_off(monkeypatch):
    assert asked_for(KEY, 1_000, 10**9, RateInfo(1000, 900), monkeypatch, seconds=0) is None


def reserve(key: KeyInfo, amount: int, requests: int, hold_id: str = "lease-t"):
    return asyncio.run(
        redis_store().reserve(
            key,
            hold_id=hold_id,
            amount=amount,
            tokens=0,
            deadline=time.time() + 60,
            requests=requests,
        )
    )


def test_a_leased_call_settled_by_a_stopping_process_counts_against_its_lease(redis_client):
    """The blocking settlement (the loop is going away) does what the script call does: the
    cost against the live lease, the event queued; once the lease is reaped, the balance."""
    store = redis_store()
    asyncio.run(store.load_balance(3, LedgerFigures(credits=100_000, credits_seq=1, usage=0)))
    granted = reserve(KEY, 50_000, requests=8)
    assert isinstance(granted, Reserved)
    lease = granted.hold
    store.settle_blocking(
        lease, Charge("req_a", 2_000, 1_234, b'{"request_id": "req_a"}', close=False)
    )
    assert int(redis_client.hget(lease.name, "spent")) == 1_234
    [entry] = store.read_usage("test", 10, 60_000)
    assert (entry.raw, entry.charge) == (b'{"request_id": "req_a"}', 1_234)
    assert available_nanos(3) == 50_000  # (the grant took the other 50,000)
    assert store.reap(now=time.time() + 120) == 1
    assert available_nanos(3) == 100_000 - 1_234
    # Settled after the reaper: charged to the balance; the same settlement again, nothing.
    for _ in range(2):
        store.settle_blocking(lease, Charge("req_b", 2_000, 100, b"", close=False))
    assert available_nanos(3) == 100_000 - 1_334


def test_a_lease_grant_counts_its_requests_only_when_it_is_granted(redis_client):
    """The reservation with a request count: all of them or none; a grant short of credit
    or of requests counts nothing."""
    key = replace(KEY, rpm_limit=20)
    window = keys.key_window(key.organization_id, key.key_id)
    asyncio.run(
        redis_store().load_balance(3, LedgerFigures(credits=50_000, credits_seq=1, usage=0))
    )

    assert reserve(key, 60_000, 8).available == 50_000  # short of credit
    assert redis_client.hget(window, "R") is None
    granted = reserve(key, 40_000, 8, "lease-u")
    assert isinstance(granted, Reserved) and granted.available == 10_000
    assert (granted.rate.request_limit, granted.rate.requests_remaining) == (20, 12)
    assert int(redis_client.hget(window, "R")) == 8
    refused = reserve(key, 1_000, 13, "lease-v")  # 12 left: all or none
    assert refused.unit == "requests"
    assert int(redis_client.hget(window, "R")) == 8


def test_concurrent_calls_across_two_workers_with_leases_end_exact(
    tenant, fake_openai, redis_client
):
    """Two worker processes, each taking leases and giving them back while 16 clients call
    at once: every call is charged once, the balance ends at the ledger's, and the windows
    count exactly the calls made."""
    from concurrent.futures import ThreadPoolExecutor

    organization_id = tenant.organization.pk
    before = organization_balance_nanos_by_id(organization_id)
    with gateway(fake_openai, workers=2, GATEWAY_LEASE_SECONDS="0.2") as (url, _):

        def client_calls(_: int) -> list[httpx.Response]:
            return [chat(tenant, url) for _ in range(15)]

        with ThreadPoolExecutor(17) as pool:
            seen = pool.submit(wait_for, lambda: lease_holds(redis_client), 30)
            answers = [a for batch in pool.map(client_calls, range(16)) for a in batch]
            assert seen.result()  # leases were taken (and, below, all given back)
        wait_for(lambda: not open_holds(redis_client), 5)
    assert len(answers) == 240
    assert len({a.headers["x-request-id"] for a in answers}) == 240
    ledger = assert_balance_reconciles(organization_id)
    assert ledger == before - sum(cost_of(a) for a in answers)
    window = keys.organization_window(organization_id)
    assert int(redis_client.hget(window, "R")) == 240
