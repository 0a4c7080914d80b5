"""Rate limit and credit reservation in one step: one Redis round trip (a Lua script), or a
dict in embedded mode (one process).

The balance in Redis is a cache of the ledger: loaded from it when missing, reserved
before a call, settled after it. A reservation is also recorded as a hold with a deadline
(billing.holds), so a process that dies mid-call cannot strand credit. Settling returns
the unused part and queues the call's usage event (usage.pipeline) in the same round
trip, so the event is durable before the response completes; the embedded mode books it
into the ledger directly. A key's monthly spend limit is checked in the same script,
against a short-lived counter loaded from the ledger.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import orjson
from django.conf import settings

from apigateway import redis as gateway_redis
from apigateway.dbsync import run_sync
from apigateway.errors import API_ERROR, INSUFFICIENT_QUOTA, RATE_LIMITED, GatewayError
from apigateway.resp import RedisUnavailable
from billing import holds
from billing.balance_cache import balance_key
from billing.money import format_usd
from billing.selectors import key_month_usage_nanos, organization_balance_nanos_by_id
from usage import pipeline

logger = logging.getLogger(__name__)
WINDOW_SECONDS = 60
SPEND_CACHE_SECONDS = 300  # a key's month-to-date spend is re-read from the ledger this often

# KEYS: rpm counter, balance, holds, spend counter. ARGV: rpm limit (0 = none), reserve
# (nano-dollars), request id, organization id, hold deadline, spend limit (0 = none).
# Returns {status, value, hold}: 1 ok (value = balance left), -1 rate limited (value =
# seconds to wait), -2 balance not cached, -4 spend not cached (load it, call again),
# -3 insufficient (value = balance), -5 over the key's spend limit (value = spent).
# A request refused for credit still counts against the rate limit (it was made).
RESERVE_SCRIPT = """
local limit = tonumber(ARGV[1])
if limit > 0 then
  local count = redis.call('INCR', KEYS[1])
  if count == 1 then redis.call('EXPIRE', KEYS[1], 60) end
  if count > limit then
    redis.call('DECR', KEYS[1])
    local ttl = redis.call('TTL', KEYS[1])
    if ttl < 1 then ttl = 1 end
    return {-1, ttl}
  end
end
local balance = redis.call('GET', KEYS[2])
local spend_limit = tonumber(ARGV[6])
local spent = false
if spend_limit > 0 then spent = redis.call('GET', KEYS[4]) end
if not balance or (spend_limit > 0 and not spent) then
  if limit > 0 then redis.call('DECR', KEYS[1]) end
  if not balance then return {-2, 0} end
  return {-4, 0}
end
balance = tonumber(balance)
local reserve = tonumber(ARGV[2])
if balance <= 0 or balance < reserve then return {-3, balance} end
local counted = ''
if spend_limit > 0 then
  if tonumber(spent) + reserve > spend_limit then return {-5, tonumber(spent)} end
  redis.call('INCRBY', KEYS[4], reserve)
  counted = KEYS[4]
end
local hold = ARGV[3] .. '|' .. ARGV[4] .. '|' .. ARGV[2] .. '|' .. counted
redis.call('ZADD', KEYS[3], ARGV[5], hold)
return {1, redis.call('DECRBY', KEYS[2], reserve), hold}
"""


def rpm_key(key_id: int) -> str:
    return f"nexeon:rpm:{key_id}:{int(time.time() // WINDOW_SECONDS)}"


@dataclass(slots=True)
class Reservation:
    organization_id: int
    amount_nanos: int
    key_id: int = 0
    hold: str = ""  # the Redis hold member ('' in embedded mode)
    spend: str = ""  # embedded mode: the month counter this reservation is counted in


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


def spend_limit_reached(limit_nanos: int) -> GatewayError:
    return GatewayError(
        402,
        f"This API key has reached its monthly spend limit of {format_usd(limit_nanos)} (or "
        "this request could exceed it). Raise the key's limit on the dashboard's API keys "
        "page, use another key, or lower max_tokens.",
        type=INSUFFICIENT_QUOTA,
        code="spend_limit_reached",
    )


class MemoryQuota:
    """Embedded mode: the same rules in this process's memory.

    The ledger is the balance here (usage is booked as each call settles); it is re-read
    every RELOAD_SECONDS so credits bought meanwhile count, minus what calls in flight hold.
    """

    RELOAD_SECONDS = 2.0

    def __init__(self) -> None:
        self.counters: dict[str, int] = {}
        self.ledger: dict[object, tuple[int, float]] = {}  # org id / spend key -> (nanos, at)
        self.held: dict[object, int] = {}  # org id / spend key -> nanos held in flight

    async def _ledger(self, what: object, read, *args) -> int:
        cached = self.ledger.get(what)
        if cached is None or time.monotonic() - cached[1] > self.RELOAD_SECONDS:
            cached = self.ledger[what] = (await run_sync(read, *args), time.monotonic())
        return cached[0]

    def _hold(self, what: object, amount: int) -> None:
        self.held[what] = self.held.get(what, 0) + amount

    async def reserve(
        self, *, key_id, organization_id, rpm_limit, amount_nanos, request_id, spend_limit=None
    ) -> Reservation:
        window = rpm_key(key_id)
        if rpm_limit and self.counters.get(window, 0) >= rpm_limit:
            raise rate_limited(rpm_limit, WINDOW_SECONDS - int(time.time()) % WINDOW_SECONDS)
        if rpm_limit:
            if len(self.counters) > 100_000:
                self.counters.clear()
            self.counters[window] = self.counters.get(window, 0) + 1
        balance = await self._ledger(
            organization_id, organization_balance_nanos_by_id, organization_id
        )
        balance -= self.held.get(organization_id, 0)
        if balance <= 0 or balance < amount_nanos:
            raise insufficient_credits()
        month = holds.spend_key(key_id)
        if spend_limit:
            spent = await self._ledger(month, key_month_usage_nanos, key_id)
            if spent + self.held.get(month, 0) + amount_nanos > spend_limit:
                raise spend_limit_reached(spend_limit)
            self._hold(month, amount_nanos)
        self._hold(organization_id, amount_nanos)
        return Reservation(
            organization_id, amount_nanos, key_id, spend=month if spend_limit else ""
        )

    async def settle(self, reservation: Reservation, cost_nanos: int, event: bytes | None) -> None:
        if event is not None:
            await run_sync(pipeline.book_now, [orjson.loads(event)])
        # The booking is in the ledger now: count it at once, not at the next re-read.
        self._release(reservation.organization_id, reservation.amount_nanos, -cost_nanos)
        if reservation.spend:
            self._release(reservation.spend, reservation.amount_nanos, cost_nanos)

    def _release(self, what: object, held: int, ledger_change: int) -> None:
        self._hold(what, -held)
        if what in self.ledger:
            value, at = self.ledger[what]
            self.ledger[what] = (value + ledger_change, at)

    def settle_now(self, reservation: Reservation, cost_nanos: int, event: bytes | None) -> None:
        """Embedded mode keeps balances in memory, which the stopping process takes with it;
        the ledger cannot be written from the event loop's thread."""
        logger.warning("process stopping: usage of a call cut short not booked (embedded mode)")


def credit_service_unavailable() -> GatewayError:
    """Fail closed: without Redis nobody's credit can be checked, so nothing is forwarded."""
    return GatewayError(
        503,
        "The credit service is temporarily unavailable; nothing was charged. Retry shortly.",
        type=API_ERROR,
        headers={"retry-after": "1"},
    )


def settle_keys(reservation: Reservation) -> list[str]:
    """The settle script's keys: holds, balance, the key's month counter (the hold's last
    field, '' when uncounted) and the usage queue."""
    spend = reservation.hold.rsplit("|", 1)[1]
    return [holds.HOLDS, balance_key(reservation.organization_id), spend, pipeline.QUEUE]


class RedisQuota:
    async def reserve(
        self, *, key_id, organization_id, rpm_limit, amount_nanos, request_id, spend_limit=None
    ) -> Reservation:
        spend = holds.spend_key(key_id) if spend_limit else ""  # (unread without a limit)
        keys = [rpm_key(key_id), balance_key(organization_id), holds.HOLDS, spend]
        deadline = time.time() + settings.GATEWAY_HOLD_SECONDS
        args = [rpm_limit or 0, amount_nanos, request_id, organization_id, f"{deadline:.3f}"]
        args.append(spend_limit or 0)
        client = gateway_redis.fast()
        for _ in range(3):
            try:
                result = await client.run_script(RESERVE_SCRIPT, keys, args)
            except RedisUnavailable:
                raise credit_service_unavailable() from None
            status, value = result[0], result[1]
            if status == 1:
                return Reservation(organization_id, amount_nanos, key_id, result[2].decode())
            if status == -1:
                raise rate_limited(rpm_limit, int(value))
            if status == -3:
                raise insufficient_credits()
            if status == -5:
                raise spend_limit_reached(spend_limit)
            loader = gateway_redis.client()
            if status == -2:
                balance = await run_sync(organization_balance_nanos_by_id, organization_id)
                await loader.set(balance_key(organization_id), balance, nx=True)
            else:
                spent = await run_sync(key_month_usage_nanos, key_id)
                await loader.set(spend, spent, nx=True, ex=SPEND_CACHE_SECONDS)
        raise insufficient_credits()

    async def settle(self, reservation: Reservation, cost_nanos: int, event: bytes | None) -> None:
        """Release the hold, return the unused part, queue the usage event: one round trip."""
        args = [reservation.hold, cost_nanos, event or b""]
        await gateway_redis.fast().run_script(holds.SETTLE_SCRIPT, settle_keys(reservation), args)

    def settle_now(self, reservation: Reservation, cost_nanos: int, event: bytes | None) -> None:
        """The same settlement as a blocking call, for a process whose loop is stopping."""
        import redis as sync_redis

        keys = settle_keys(reservation)
        with sync_redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2) as client:
            client.eval(holds.SETTLE_SCRIPT, 4, *keys, reservation.hold, cost_nanos, event or b"")


_memory = MemoryQuota()
_redis = RedisQuota()


def quota() -> MemoryQuota | RedisQuota:
    return _redis if gateway_redis.client() is not None else _memory
