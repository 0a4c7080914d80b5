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
from contextlib import suppress
from dataclasses import dataclass, field

import orjson
from django.conf import settings
from redis.exceptions import RedisError

from apigateway import leases
from apigateway import redis as gateway_redis
from apigateway.auth import KeyInfo
from apigateway.dbsync import run_sync
from apigateway.errors import API_ERROR, INSUFFICIENT_QUOTA, GatewayError
from apigateway.ratelimit import LocalWindows, RateInfo, rate_limited
from apigateway.resp import RedisUnavailable, ScriptCall
from billing import holds
from billing.balance_cache import balance_key
from billing.money import format_usd
from billing.selectors import key_month_usage_nanos, organization_balance_nanos_by_id
from usage import pipeline

logger = logging.getLogger(__name__)
SPEND_CACHE_SECONDS = 300  # a key's month-to-date spend is re-read from the ledger this often

# KEYS: key window, org window, balance, holds, spend counter. ARGV: key rpm, key tpm, org
# rpm, org tpm (0 = none), token estimate, reserve (nano-dollars), request id (or lease id),
# org id, hold deadline, spend limit (0 = none), requests to count ('' = 1; a lease counts
# several), and optionally the time (unix seconds; by default Redis's own clock, the same
# for every gateway replica). Windows are hashes of one-second
# buckets (ratelimit.py): 'r<second>' requests, 't<second>' tokens, running totals 'R' and
# 'T', and 'c', the oldest second that may still hold counts. Returns:
#   {1, balance left, hold, request limit, requests left, token limit, tokens left,
#    ms until the window resets, second counted in}
#   {-1, ms to wait, subject (1 key, 2 org), unit (1 requests, 2 tokens), limit}: 429
#   {-2} balance not cached, {-4} spend not cached: load it, call again (nothing counted)
#   {-3, balance} insufficient; {-5, spent} over the key's spend limit: both still count
#   as requests (they were made) but not as tokens.
WINDOWS_LUA = """
local now = tonumber(ARGV[NOW])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local now_s = math.floor(now)
local oldest = now_s - 60

local function advance(win)
  local state = redis.call('HMGET', win, 'c', 'R', 'T')
  local cursor = tonumber(state[1])
  if not cursor then return 0, 0 end
  local requests, toks = tonumber(state[2]) or 0, tonumber(state[3]) or 0
  if cursor >= oldest then return requests, toks end
  if cursor + 60 < oldest then
    redis.call('DEL', win)
    return 0, 0
  end
  local gone = {}
  for s = cursor, oldest - 1 do
    local v = redis.call('HMGET', win, 'r' .. s, 't' .. s)
    requests = requests - (tonumber(v[1]) or 0)
    toks = toks - (tonumber(v[2]) or 0)
    gone[#gone + 1] = 'r' .. s
    gone[#gone + 1] = 't' .. s
  end
  redis.call('HDEL', win, unpack(gone))
  redis.call('HSET', win, 'c', oldest, 'R', requests, 'T', toks)
  return requests, toks
end

local function wait_ms(win, prefix, excess)
  local freed = 0
  for s = oldest, now_s do
    freed = freed + (tonumber(redis.call('HGET', win, prefix .. s)) or 0)
    if freed >= excess then return math.ceil((s + 61 - now) * 1000) end
  end
  return 61000
end
"""

RESERVE_SCRIPT = (
    WINDOWS_LUA.replace("ARGV[NOW]", "ARGV[12]")
    + """
local tokens = tonumber(ARGV[5])
local count = tonumber(ARGV[11]) or 1
local subjects = {}
for i = 1, 2 do
  local rpm, tpm = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  if rpm > 0 or tpm > 0 then
    local requests, toks = advance(KEYS[i])
    if rpm > 0 and requests + count > rpm then
      return {-1, wait_ms(KEYS[i], 'r', requests + count - rpm), i, 1, rpm}
    end
    if tpm > 0 and toks + tokens > tpm then
      return {-1, wait_ms(KEYS[i], 't', toks + tokens - tpm), i, 2, tpm}
    end
    subjects[#subjects + 1] = {KEYS[i], rpm, tpm, requests, toks}
  end
end

local balance = redis.call('GET', KEYS[3])
if not balance then return {-2} end
if count > 1 and tonumber(balance) < tonumber(ARGV[6]) then
  return {-3, tonumber(balance)}  -- a lease short of credit counts no requests
end
local spend_limit = tonumber(ARGV[10])
local spent = false
if spend_limit > 0 then
  spent = redis.call('GET', KEYS[5])
  if not spent then return {-4} end
end

local req_limit, req_left, tok_limit, tok_left = 0, 0, 0, 0
for _, w in ipairs(subjects) do
  redis.call('HSETNX', w[1], 'c', oldest)
  redis.call('HINCRBY', w[1], 'r' .. now_s, count)
  redis.call('HINCRBY', w[1], 'R', count)
  redis.call('PEXPIRE', w[1], 62000)
  if w[2] > 0 and (req_limit == 0 or w[2] - w[4] - count < req_left) then
    req_limit, req_left = w[2], w[2] - w[4] - count
  end
end

balance = tonumber(balance)
local reserve = tonumber(ARGV[6])
if balance <= 0 or balance < reserve then return {-3, balance} end
local counted = ''
if spend_limit > 0 then
  if tonumber(spent) + reserve > spend_limit then return {-5, tonumber(spent)} end
  redis.call('INCRBY', KEYS[5], reserve)
  counted = KEYS[5]
end
for _, w in ipairs(subjects) do
  if w[3] > 0 then
    if tokens > 0 then
      redis.call('HINCRBY', w[1], 't' .. now_s, tokens)
      redis.call('HINCRBY', w[1], 'T', tokens)
    end
    if tok_limit == 0 or w[3] - w[5] - tokens < tok_left then
      tok_limit, tok_left = w[3], math.max(w[3] - w[5] - tokens, 0)
    end
  end
end
local hold = ARGV[7] .. '|' .. ARGV[8] .. '|' .. ARGV[6] .. '|' .. counted
redis.call('ZADD', KEYS[4], ARGV[9], hold)
local reset = math.ceil((now_s + 61 - now) * 1000)
return {1, redis.call('DECRBY', KEYS[3], reserve), hold, req_limit, req_left, tok_limit,
        tok_left, reset, now_s}
"""
)


# A request refused before the limits were checked (400, 404, 413) still counts as one:
# KEYS: key window, org window. ARGV: key rpm, key tpm, org rpm, org tpm, [time].
COUNT_SCRIPT = (
    WINDOWS_LUA.replace("ARGV[NOW]", "ARGV[5]")
    + """
for i = 1, 2 do
  if tonumber(ARGV[2 * i - 1]) > 0 then
    advance(KEYS[i])
    redis.call('HSETNX', KEYS[i], 'c', oldest)
    redis.call('HINCRBY', KEYS[i], 'r' .. now_s, 1)
    redis.call('HINCRBY', KEYS[i], 'R', 1)
    redis.call('PEXPIRE', KEYS[i], 62000)
  end
end
return 1
"""
)


def key_window(key_id: int) -> str:
    return f"nexeon:rl:key:{key_id}"


def org_window(organization_id: int) -> str:
    return f"nexeon:rl:org:{organization_id}"


@dataclass(slots=True)
class Reservation:
    organization_id: int
    amount_nanos: int
    key_id: int = 0
    hold: str = ""  # the Redis hold member ('' in embedded mode)
    spend: str = ""  # embedded mode: the month counter this reservation is counted in
    rate: RateInfo = field(default_factory=RateInfo)
    token_windows: tuple[str, ...] = ()  # windows holding this call's token estimate
    lease: leases.Lease | None = None  # admitted from this process's lease for the key
    lease_released: bool = False

    def token_correction(self, tokens_used: int) -> int:
        return tokens_used - self.rate.tokens if self.token_windows else 0


def limits_of(key: KeyInfo) -> list[tuple[str, str, int | None, int | None]]:
    """(window, subject, rpm, tpm) of the limits that apply to this key's calls."""
    found = []
    if key.rpm_limit or key.tpm_limit:
        found.append((key_window(key.key_id), "key", key.rpm_limit, key.tpm_limit))
    if key.org_rpm_limit or key.org_tpm_limit:
        found.append(
            (org_window(key.organization_id), "organization", key.org_rpm_limit, key.org_tpm_limit)
        )
    return found


def token_windows(key: KeyInfo) -> tuple[str, ...]:
    return tuple(window for window, _, _, tpm in limits_of(key) if tpm)


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
        self.windows = LocalWindows()
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
        self, *, key: KeyInfo, amount_nanos: int, request_id: str, tokens: int = 0
    ) -> Reservation:
        rate = self.windows.admit(limits_of(key), tokens, time.time())
        windows = token_windows(key)
        try:
            return await self._reserve_credit(key, amount_nanos, rate, windows)
        except GatewayError:
            self.windows.correct(windows, rate.second, -rate.tokens)  # a request, no tokens
            raise

    async def count_request(self, key: KeyInfo) -> None:
        self.windows.count(limits_of(key), time.time())

    async def _reserve_credit(self, key: KeyInfo, amount_nanos: int, rate, windows):
        organization_id = key.organization_id
        balance = await self._ledger(
            organization_id, organization_balance_nanos_by_id, organization_id
        )
        balance -= self.held.get(organization_id, 0)
        if balance <= 0 or balance < amount_nanos:
            raise insufficient_credits()
        month = holds.spend_key(key.key_id)
        spend_limit = key.monthly_spend_limit_nanos
        if spend_limit:
            spent = await self._ledger(month, key_month_usage_nanos, key.key_id)
            if spent + self.held.get(month, 0) + amount_nanos > spend_limit:
                raise spend_limit_reached(spend_limit)
            self._hold(month, amount_nanos)
        self._hold(organization_id, amount_nanos)
        return Reservation(
            organization_id,
            amount_nanos,
            key.key_id,
            spend=month if spend_limit else "",
            rate=rate,
            token_windows=windows,
        )

    async def settle(
        self, reservation: Reservation, cost_nanos: int, event: bytes | None, tokens_used: int = 0
    ) -> None:
        self.windows.correct(
            reservation.token_windows,
            reservation.rate.second,
            reservation.token_correction(tokens_used),
        )
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

    def settle_now(
        self, reservation: Reservation, cost_nanos: int, event: bytes | None, tokens_used: int = 0
    ) -> None:
        """Embedded mode keeps balances in memory, which the stopping process takes with it;
        the ledger cannot be written from the event loop's thread."""
        logger.warning("process stopping: usage of a call cut short not booked (embedded mode)")


class CreditServiceUnavailable(GatewayError):
    pass


def credit_service_unavailable() -> GatewayError:
    """Fail closed: without Redis nobody's credit can be checked, so nothing is forwarded."""
    return CreditServiceUnavailable(
        503,
        "The credit service is temporarily unavailable; nothing was charged. Retry shortly.",
        type=API_ERROR,
        headers={"retry-after": "1"},
    )


def settle_arguments(
    reservation: Reservation, cost_nanos: int, event: bytes | None, tokens_used: int
) -> tuple[list[str], list]:
    """The settle script's keys (holds, balance, the key's month counter: the hold's last
    field, '' when uncounted; the usage queue; the windows holding the call's token
    estimate) and arguments."""
    spend = reservation.hold.rsplit("|", 1)[1]
    windows = list(reservation.token_windows)
    keys = [holds.HOLDS, balance_key(reservation.organization_id), spend, pipeline.QUEUE]
    args = [reservation.hold, cost_nanos, event or b""]
    correction = reservation.token_correction(tokens_used)
    if correction:
        keys += windows
        args += [reservation.rate.second, correction]
    return keys, args


def reserve_arguments(
    key: KeyInfo,
    amount_nanos: int,
    request_id: str,
    tokens: int,
    now: float | None = None,
    *,
    requests: int = 1,
) -> tuple[list[str], list]:
    spend_limit = key.monthly_spend_limit_nanos
    spend = holds.spend_key(key.key_id) if spend_limit else ""  # (unread without a limit)
    organization_id = key.organization_id
    keys = [
        key_window(key.key_id),
        org_window(organization_id),
        balance_key(organization_id),
        holds.HOLDS,
        spend,
    ]
    deadline = time.time() + settings.GATEWAY_HOLD_SECONDS
    args = [
        key.rpm_limit or 0,
        key.tpm_limit or 0,
        key.org_rpm_limit or 0,
        key.org_tpm_limit or 0,
        tokens,
        amount_nanos,
        request_id,
        organization_id,
        f"{deadline:.3f}",
        spend_limit or 0,
        requests,
    ]
    if now is not None:
        args.append(repr(now))
    return keys, args


class RedisQuota:
    async def reserve(
        self, *, key: KeyInfo, amount_nanos: int, request_id: str, tokens: int = 0
    ) -> Reservation:
        organization_id = key.organization_id
        admitted = leases.book.admit(key, amount_nanos)
        if admitted is not None:
            lease, rate = admitted
            return Reservation(
                organization_id, amount_nanos, key.key_id, lease.member, rate=rate, lease=lease
            )
        spend_limit = key.monthly_spend_limit_nanos
        keys, args = reserve_arguments(key, amount_nanos, request_id, tokens)
        spend = keys[4]
        client = gateway_redis.fast()
        for _ in range(3):
            try:
                # Written at once rather than with the loop turn's other commands: Redis
                # runs it while this process reads the next request of a burst.
                result = await client.send_script(RESERVE_SCRIPT, keys, args).reply()
            except RedisUnavailable:
                raise credit_service_unavailable() from None
            status = result[0]
            if status == 1:
                rate = RateInfo(*result[3:9], tokens=tokens)
                leases.book.consider(key, amount_nanos, result[1], rate)
                return Reservation(
                    organization_id,
                    amount_nanos,
                    key.key_id,
                    result[2].decode(),
                    rate=rate,
                    token_windows=token_windows(key),
                )
            if status == -1:
                _, wait_ms, subject, unit, limit = result
                raise rate_limited(
                    subject="key" if subject == 1 else "organization",
                    unit="requests" if unit == 1 else "tokens",
                    limit=limit,
                    retry_after_ms=wait_ms,
                    requested=1 if unit == 1 else tokens,
                )
            if status == -3:
                raise insufficient_credits()
            if status == -5:
                raise spend_limit_reached(spend_limit)
            loader = gateway_redis.client()
            try:
                if status == -2:
                    balance = await run_sync(organization_balance_nanos_by_id, organization_id)
                    await loader.set(balance_key(organization_id), balance, nx=True)
                else:
                    spent = await run_sync(key_month_usage_nanos, key.key_id)
                    await loader.set(spend, spent, nx=True, ex=SPEND_CACHE_SECONDS)
            except RedisError:
                raise credit_service_unavailable() from None
        raise insufficient_credits()

    async def count_request(self, key: KeyInfo) -> None:
        keys = [key_window(key.key_id), org_window(key.organization_id)]
        args = [key.rpm_limit or 0, 0, key.org_rpm_limit or 0, 0]
        await gateway_redis.fast().run_script(COUNT_SCRIPT, keys, args)

    async def settle(
        self, reservation: Reservation, cost_nanos: int, event: bytes | None, tokens_used: int = 0
    ) -> None:
        """Release the hold, return the unused part, correct the token estimate, queue the
        usage event: one round trip."""
        await self.send_settlement(reservation, cost_nanos, event, tokens_used).reply()

    def send_settlement(
        self, reservation: Reservation, cost_nanos: int, event: bytes | None, tokens_used: int = 0
    ) -> ScriptCall:
        """The same settlement, written to Redis before this returns when connected: the
        caller may answer its client at once and await `.reply()` afterwards."""
        if reservation.lease is not None:
            self._release_lease(reservation, cost_nanos)
            return leases.send_settlement(reservation.lease, cost_nanos, event)
        keys, args = settle_arguments(reservation, cost_nanos, event, tokens_used)
        return gateway_redis.fast().send_script(holds.SETTLE_SCRIPT, keys, args)

    def settle_now(
        self, reservation: Reservation, cost_nanos: int, event: bytes | None, tokens_used: int = 0
    ) -> None:
        """The same settlement as a blocking call, for a process whose loop is stopping."""
        import redis as sync_redis

        if reservation.lease is not None:
            self._release_lease(reservation, cost_nanos)
            leases.settle_now(reservation.lease, cost_nanos, event)
            return
        keys, args = settle_arguments(reservation, cost_nanos, event, tokens_used)
        with sync_redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2) as client:
            client.eval(holds.SETTLE_SCRIPT, len(keys), *keys, *args)

    @staticmethod
    def _release_lease(reservation: Reservation, cost_nanos: int) -> None:
        """The call's part of its lease, back to the lease once (settling may be retried)."""
        if not reservation.lease_released:
            reservation.lease_released = True
            leases.book.settled(reservation.lease, reservation.amount_nanos, cost_nanos)


_memory = MemoryQuota()
_redis = RedisQuota()


def quota() -> MemoryQuota | RedisQuota:
    return _redis if gateway_redis.client() is not None else _memory


def quota_for(reservation: Reservation) -> MemoryQuota | RedisQuota:
    """The quota that made a reservation settles it (only Redis's have a hold)."""
    return _redis if reservation.hold else _memory


async def reserve(*, key: KeyInfo, amount_nanos: int, request_id: str, tokens: int) -> Reservation:
    """Limits and credit through Redis (in-process when embedded). Redis unreachable: 503,
    nothing forwarded; or, if the operator chose GATEWAY_REDIS_FAILURE=local, this process
    checks limits and credit itself (from the ledger) and books usage directly."""
    try:
        return await quota().reserve(
            key=key, amount_nanos=amount_nanos, request_id=request_id, tokens=tokens
        )
    except CreditServiceUnavailable:
        if settings.GATEWAY_REDIS_FAILURE != "local":
            raise
    logger.warning("%s: Redis unreachable; limits and credit checked in this process", request_id)
    return await _memory.reserve(
        key=key, amount_nanos=amount_nanos, request_id=request_id, tokens=tokens
    )


async def count_refused_request(key: KeyInfo | None) -> None:
    """A call refused before the limits were checked (400, 404, 413) still counts against
    the key's and organization's requests per minute: every authenticated request does.
    Best effort: Redis unreachable leaves it uncounted."""
    if key is None or not (key.rpm_limit or key.org_rpm_limit):
        return
    with suppress(RedisUnavailable):
        await quota().count_request(key)


async def book_directly(reservation: Reservation, event: bytes | None) -> bool:
    """GATEWAY_REDIS_FAILURE=local, a Redis reservation that cannot be settled: book the
    usage into the ledger now (its request id makes a later settle's booking a no-op) and
    leave the hold for the reaper to return. False when the database cannot take it."""
    if settings.GATEWAY_REDIS_FAILURE != "local" or not reservation.hold or not event:
        return False
    try:
        await run_sync(pipeline.book_now, [orjson.loads(event)])
    except Exception:
        logger.exception("usage of %s could not be booked directly", reservation.hold)
        return False
    return True
