"""Rate limit and credit reservation in one step: one Redis round trip (a Lua script), or a
dict in embedded mode (one process). The balance in Redis is a cache of the ledger: loaded
from it when missing, reserved before a call, settled after it. Settling also queues the
call's usage event (billing.usage_queue) in the same round trip, so the event is durable
before the response completes; the embedded mode books it into the ledger directly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson

from apigateway import redis as gateway_redis
from apigateway.dbsync import run_sync
from apigateway.errors import INSUFFICIENT_QUOTA, RATE_LIMITED, GatewayError
from billing import usage_queue
from billing.balance_cache import balance_key
from billing.selectors import organization_balance_nanos_by_id

WINDOW_SECONDS = 60

# KEYS: rpm counter, balance. ARGV: rpm limit (0 = none), reserve (nano-dollars).
# Returns {status, value}: 1 ok (value = balance left), -1 rate limited (value = seconds to
# wait), -2 balance not cached (load it and call again), -3 insufficient (value = balance).
RESERVE_SCRIPT = """
local limit = tonumber(ARGV[1])
local count = 0
if limit > 0 then
  count = redis.call('INCR', KEYS[1])
  if count == 1 then redis.call('EXPIRE', KEYS[1], 60) end
  if count > limit then
    redis.call('DECR', KEYS[1])
    local ttl = redis.call('TTL', KEYS[1])
    if ttl < 1 then ttl = 1 end
    return {-1, ttl}
  end
end
local balance = redis.call('GET', KEYS[2])
if not balance then
  if limit > 0 then redis.call('DECR', KEYS[1]) end
  return {-2, 0}
end
balance = tonumber(balance)
local reserve = tonumber(ARGV[2])
if balance <= 0 or balance < reserve then
  if limit > 0 then redis.call('DECR', KEYS[1]) end
  return {-3, balance}
end
return {1, redis.call('DECRBY', KEYS[2], reserve)}
"""


def rpm_key(key_id: int) -> str:
    return f"nexeon:rpm:{key_id}:{int(time.time() // WINDOW_SECONDS)}"


@dataclass(slots=True)
class Reservation:
    organization_id: int
    amount_nanos: int


def rate_limited(limit: int, retry_after: int) -> GatewayError:
    return GatewayError(
        429,
        f"Rate limit reached: {limit} requests per minute for this key. Retry after "
        f"{retry_after} s.",
        type=RATE_LIMITED,
        code="rate_limit_exceeded",
        headers={
            "retry-after": str(retry_after),
            "x-ratelimit-limit-requests": str(limit),
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": f"{retry_after}s",
        },
    )


def insufficient_credits() -> GatewayError:
    return GatewayError(
        402,
        "Insufficient credits for this request. Add credits on the dashboard's Billing page "
        "(or lower max_tokens) and try again.",
        type=INSUFFICIENT_QUOTA,
        code="insufficient_quota",
    )


class MemoryQuota:
    """Embedded mode: the same rules in this process's memory."""

    def __init__(self) -> None:
        self.counters: dict[str, int] = {}
        self.balances: dict[int, int] = {}

    async def reserve(self, *, key_id, organization_id, rpm_limit, amount_nanos) -> Reservation:
        window = rpm_key(key_id)
        if rpm_limit and self.counters.get(window, 0) >= rpm_limit:
            raise rate_limited(rpm_limit, WINDOW_SECONDS - int(time.time()) % WINDOW_SECONDS)
        if organization_id not in self.balances:
            self.balances[organization_id] = await run_sync(
                organization_balance_nanos_by_id, organization_id
            )
        balance = self.balances[organization_id]
        if balance <= 0 or balance < amount_nanos:
            raise insufficient_credits()
        if rpm_limit:
            if len(self.counters) > 100_000:
                self.counters.clear()
            self.counters[window] = self.counters.get(window, 0) + 1
        self.balances[organization_id] = balance - amount_nanos
        return Reservation(organization_id, amount_nanos)

    async def settle(self, reservation: Reservation, cost_nanos: int, event: bytes | None) -> None:
        if reservation.organization_id in self.balances:
            self.balances[reservation.organization_id] += reservation.amount_nanos - cost_nanos
        if event is not None:
            await run_sync(usage_queue.book, [orjson.loads(event)])

    async def credit(self, organization_id: int, amount_nanos: int) -> None:
        self.balances.pop(organization_id, None)  # reloaded from the ledger on next use


class RedisQuota:
    def __init__(self) -> None:
        self._scripts: dict[int, object] = {}  # one per client (clients are per event loop)

    async def reserve(self, *, key_id, organization_id, rpm_limit, amount_nanos) -> Reservation:
        client = gateway_redis.client()
        script = self._scripts.get(id(client))
        if script is None:
            script = self._scripts[id(client)] = client.register_script(RESERVE_SCRIPT)
        keys = [rpm_key(key_id), balance_key(organization_id)]
        for _ in range(2):
            status, value = await script(keys=keys, args=[rpm_limit or 0, amount_nanos])
            if status == 1:
                return Reservation(organization_id, amount_nanos)
            if status == -1:
                raise rate_limited(rpm_limit, int(value))
            if status == -3:
                raise insufficient_credits()
            balance = await run_sync(organization_balance_nanos_by_id, organization_id)
            await client.set(balance_key(organization_id), balance, nx=True)
        raise insufficient_credits()

    async def settle(self, reservation: Reservation, cost_nanos: int, event: bytes | None) -> None:
        """Return the unused reservation and queue the usage event: one round trip."""
        refund = reservation.amount_nanos - cost_nanos
        if not refund and event is None:
            return
        async with gateway_redis.client().pipeline(transaction=False) as pipe:
            if refund:
                pipe.incrby(balance_key(reservation.organization_id), refund)
            if event is not None:
                pipe.rpush(usage_queue.QUEUE, event)
            await pipe.execute()


_memory = MemoryQuota()
_redis = RedisQuota()


def quota() -> MemoryQuota | RedisQuota:
    return _redis if gateway_redis.client() is not None else _memory
