"""The credit core's money rules, each on both stores (Redis and memory), and on the
Redis store over a 3-master Redis Cluster."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import pytest

from credit import connections, keys
from credit.memory_store import MemoryStore
from credit.records import Charge, InsufficientCredit, LedgerFigures, Reserved, SpendLimitReached
from credit.redis_store import RedisStore


@dataclass(frozen=True)
class Payer:
    key_id: int = 5
    organization_id: int = 9
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    org_rpm_limit: int | None = None
    org_tpm_limit: int | None = None
    monthly_spend_limit_nanos: int | None = None


@pytest.fixture(params=["redis", "memory", "cluster"])
def store(request, redis_client):
    if request.param == "cluster":
        request.getfixturevalue("redis_cluster").flush()
        request.getfixturevalue("settings").REDIS_URL = request.getfixturevalue("redis_cluster").url
    made = MemoryStore() if request.param == "memory" else RedisStore()
    run(made.load_balance(9, LedgerFigures(credits=10_000, credits_seq=1, usage=0)))
    return made


def run(coroutine):
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        connections.close_fast(loop)
        loop.close()


def reserve(store, amount: int, payer: Payer = Payer(), hold_id: str = "r1"):
    return run(
        store.reserve(payer, hold_id=hold_id, amount=amount, tokens=0, deadline=time.time() + 60)
    )


def settle(store, reserved, cost: int, call_id: str = "r1", close: bool = True) -> int:
    amount = reserved.hold.amount
    return store.settle_blocking(reserved.hold, Charge(call_id, amount, cost, b"{}", close=close))


def available(store) -> int:
    return store.credit_state(9).available


def test_a_spend_limit_of_zero_admits_nothing(store):
    run(store.load_spend(9, 5, keys.month_of(), 0))
    refused = reserve(store, 1, Payer(monthly_spend_limit_nanos=0))
    assert isinstance(refused, SpendLimitReached)
    assert available(store) == 10_000


def test_a_call_is_never_charged_more_than_it_reserved(store):
    reserved = reserve(store, 3_000)
    assert isinstance(reserved, Reserved) and available(store) == 7_000
    assert settle(store, reserved, 50_000) == 3_000  # the provider billed more
    state = store.credit_state(9)
    assert (state.available, state.held, state.unbooked) == (7_000, 0, 3_000)


def test_a_settlement_sent_again_charges_nothing_more(store):
    reserved = reserve(store, 3_000)
    assert settle(store, reserved, 1_000) == settle(store, reserved, 1_000) == 1_000
    state = store.credit_state(9)
    assert (state.available, state.held, state.unbooked) == (9_000, 0, 1_000)
    [entry] = store.read_usage("d", 10, 60_000)  # one usage event, not two
    assert entry.charge == 1_000


def test_a_late_settlement_after_the_reaper_takes_only_what_is_left(store):
    reserved = reserve(store, 6_000)
    assert store.reap(now=time.time() + 3600) == 1
    assert available(store) == 10_000
    other = reserve(store, 9_500, hold_id="r2")  # the balance is spent meanwhile
    assert isinstance(other, Reserved)
    assert settle(store, other, 9_500, call_id="r2") == 9_500
    assert settle(store, reserved, 6_000) == 500  # charged what was left, never below zero
    assert available(store) == 0


def test_a_renewed_hold_is_not_reaped(store):
    reserved = reserve(store, 1_000)
    run(store.renew([reserved.hold], time.time() + 7200))
    assert store.reap(now=time.time() + 3600) == 0
    assert store.reap(now=time.time() + 7201) == 1


def test_a_lease_short_of_credit_counts_no_requests(store):
    limited = Payer(rpm_limit=10)
    refused = run(
        store.reserve(
            limited, hold_id="lease", amount=20_000, tokens=0, deadline=time.time() + 60, requests=5
        )
    )
    assert isinstance(refused, InsufficientCredit)
    single = reserve(store, 100, limited)
    assert single.rate.requests_remaining == 9  # the refused lease counted nothing
