"""The two credit stores follow one set of rules (credit/store.py): the same generated
schedule of reservations, leases, settlements (some sent twice), refused requests, reaping,
credit syncs and usage acknowledgements gives the same answers and the same state in
Redis (the Lua scripts) and in memory (Python)."""

from __future__ import annotations

import asyncio
from dataclasses import astuple, dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credit import connections, keys
from credit.memory_store import MemoryStore
from credit.records import (
    BalanceNotLoaded,
    Charge,
    Hold,
    LedgerFigures,
    Reserved,
    SpendNotLoaded,
)
from credit.redis_store import RedisStore

T0 = 1_800_000_000.0


def await_(coroutine):
    """Run a store's coroutine on the schedule's one event loop (the test runs in it)."""
    return asyncio.get_event_loop().run_until_complete(coroutine)


@dataclass(frozen=True)
class Payer:
    key_id: int
    organization_id: int
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    org_rpm_limit: int | None = None
    org_tpm_limit: int | None = None
    monthly_spend_limit_nanos: int | None = None


PAYERS = [
    Payer(11, 1, rpm_limit=5, org_rpm_limit=8),
    Payer(12, 1, tpm_limit=400, monthly_spend_limit_nanos=30_000),
    Payer(21, 13),  # (another shard: on the cluster, another master than organization 1's)
]
FIGURES = {1: LedgerFigures(60_000, 3, 20_000), 13: LedgerFigures(30_000, 1, 0)}
SPENT_BEFORE = 1_000  # what key 12 spent this month before the schedule

reserve_op = st.tuples(
    st.just("reserve"),
    st.sampled_from(range(len(PAYERS))),
    st.integers(min_value=0, max_value=40_000),  # amount
    st.integers(min_value=0, max_value=300),  # token estimate
    st.sampled_from([1, 1, 1, 3]),  # requests (3: a lease)
)
settle_op = st.tuples(
    st.just("settle"),
    st.integers(min_value=0, max_value=50),  # which reservation (modulo those made)
    st.integers(min_value=0, max_value=50_000),  # cost (may pass the reservation)
    st.booleans(),  # close
    st.integers(min_value=0, max_value=500),  # tokens really used
    st.booleans(),  # sent twice
)
other_op = st.one_of(
    st.tuples(st.just("count"), st.sampled_from(range(len(PAYERS)))),
    st.tuples(st.just("reap"), st.floats(min_value=0, max_value=120)),
    st.tuples(
        st.just("sync"),
        st.sampled_from([1, 13]),
        st.integers(min_value=0, max_value=200_000),
        st.integers(min_value=0, max_value=6),
    ),
    st.tuples(st.just("drain")),
    st.tuples(st.just("release"), st.integers(min_value=0, max_value=50), st.integers(0, 3)),
    st.tuples(st.just("wait"), st.floats(min_value=0, max_value=30)),
)
schedules = st.lists(st.one_of(reserve_op, reserve_op, settle_op, other_op), max_size=40)


def outcome(result) -> tuple:
    """What a reservation answered, without the hold's store-specific record."""
    if isinstance(result, Reserved):
        rate = result.rate
        return (
            "reserved",
            result.available,
            result.hold.amount,
            result.hold.spend_key,
            (rate.request_limit, rate.requests_remaining, rate.token_limit),
            (rate.tokens_remaining, rate.reset_ms, rate.second, rate.tokens),
        )
    return (type(result).__name__, *astuple(result))


class Both:
    """Every operation on both stores; answers compared as they come."""

    def __init__(self) -> None:
        self.memory = MemoryStore()
        self.redis = RedisStore()
        self.holds: list[tuple[Hold, int, int, bool]] = []  # hold, amount, second, is lease

    def both(self, operation):
        return operation(self.memory), operation(self.redis)

    def reserve(self, payer: Payer, amount: int, tokens: int, requests: int, at: float, n: int):
        hold_id = f"{'lease' if requests > 1 else 'req'}-{n}"

        def run(store):
            for _ in range(3):
                result = await_(
                    store.reserve(
                        payer,
                        hold_id=hold_id,
                        amount=amount,
                        tokens=tokens,
                        deadline=at + 60,
                        requests=requests,
                        now=at,
                    )
                )
                if isinstance(result, BalanceNotLoaded):
                    figures = FIGURES[result.organization_id]
                    await_(store.load_balance(result.organization_id, figures))
                elif isinstance(result, SpendNotLoaded):
                    await_(
                        store.load_spend(
                            result.organization_id, result.key_id, result.month, SPENT_BEFORE
                        )
                    )
                else:
                    return result
            raise AssertionError("never loaded")

        memory, redis = self.both(run)
        assert outcome(memory) == outcome(redis)
        if isinstance(memory, Reserved):
            self.holds.append((memory.hold, amount, memory.rate.second, requests > 1))

    def settle(self, index: int, cost: int, close: bool, used: int, twice: bool, n: int) -> None:
        if not self.holds:
            return
        hold, amount, second, lease = self.holds[index % len(self.holds)]
        share = max(amount // 3, 1) if lease else amount
        correction = (second, used)  # as the gateway: the real count minus the estimate

        def run(store):
            charges = []
            for _ in range(2 if twice else 1):
                charges.append(
                    store.settle_blocking(
                        hold,
                        Charge(
                            f"call-{n}",
                            share,
                            cost,
                            b'{"request_id": "r"}',
                            close=close and not lease,
                            token_correction=correction,
                        ),
                    )
                )
            return charges

        memory, redis = self.both(run)
        assert memory == redis
        assert len(set(memory)) == 1  # a settlement sent again charges nothing more

    def compare_windows(self, at: float) -> None:
        """Requests and tokens counted in the last 61 seconds, window by window."""
        now_s = int(at)
        names = {keys.key_window(p.organization_id, p.key_id) for p in PAYERS}
        names |= {keys.organization_window(p.organization_id) for p in PAYERS}
        for name in names:
            stored = connections.sync().hgetall(name)
            window = self.memory.windows._windows.get(name)
            for prefix, index in ((b"r", 0), (b"t", 1)):
                redis_count = sum(
                    int(stored.get(prefix + str(second).encode(), 0))
                    for second in range(now_s - 60, now_s + 1)
                )
                memory_count = sum(
                    bucket[index]
                    for second, bucket in (window.buckets.items() if window else ())
                    if now_s - 60 <= second <= now_s
                )
                assert redis_count == memory_count, (name, prefix)

    def compare_state(self) -> None:
        for organization_id in FIGURES:
            assert self.memory.credit_state(organization_id) == self.redis.credit_state(
                organization_id
            ), organization_id
        month = keys.month_of(T0)
        spend = keys.key_spend(1, 12, month)
        stored = connections.sync().get(spend)  # (the memory store's is a dict)
        assert self.memory.spend.get(spend) == (int(stored) if stored is not None else None)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@pytest.mark.parametrize("money_redis", ["redis", "cluster"], indirect=True)
@given(schedule=schedules)
def test_redis_and_memory_stores_agree(money_redis, schedule):
    """On a single Redis and on a 3-master cluster (each organization's shard on its own
    master)."""
    money_redis.flushdb()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        run(schedule)
    finally:
        connections.close_fast(loop)
        loop.close()
        asyncio.set_event_loop(None)


def run(schedule) -> None:
    both = Both()
    at = T0
    for n, step in enumerate(schedule):
        kind = step[0]
        if kind == "reserve":
            _, payer, amount, tokens, requests = step
            both.reserve(PAYERS[payer], amount, tokens, requests, at, n)
        elif kind == "settle":
            both.settle(*step[1:], n)  # type: ignore[call-arg]
        elif kind == "count":
            both.both(lambda store, p=PAYERS[step[1]], t=at: await_(store.count_refused(p, t)))
        elif kind == "reap":
            memory, redis = both.both(lambda store, t=at + step[1]: store.reap(now=t))
            assert memory == redis
        elif kind == "sync":
            memory, redis = both.both(lambda store, s=step: store.sync_credits(*s[1:]))
            assert memory == redis
        elif kind == "drain":
            memory, redis = both.both(lambda store: store.read_usage("drainer", 100, 60_000))
            # (the same entries; Redis reads them shard by shard, so in another order)
            assert sorted((e.charge, e.counted, e.raw) for e in memory) == sorted(
                (e.charge, e.counted, e.raw) for e in redis
            )
            assert both.memory.ack_usage(memory) == both.redis.ack_usage(redis)
        elif kind == "release":
            leases = [entry for entry in both.holds if entry[3]]
            if leases:
                hold, _, second, _ = leases[step[1] % len(leases)]
                memory, redis = both.both(
                    lambda store, h=hold, s=second, u=step[2]: await_(
                        store.release(h, unused_requests=u, second=s)
                    )
                )
                assert memory == redis
        elif kind == "wait":
            at += step[1]
        both.compare_state()
        both.compare_windows(at)
