"""Credit held for calls in flight, in Redis, so that a process that dies mid-call cannot
keep credit away from its organization for ever.

The gateway's reservation takes the call's maximum cost from the fast balance and records
a hold (a sorted-set member scored by its deadline). Settling removes the hold and returns
what was not spent. A hold whose process died is past its deadline: the reaper (Celery
beat) returns it whole. If a slow call settles after its hold was reaped, settling charges
the cost instead of refunding the difference, so every path ends at balance - cost.

A gateway worker may also hold a *lease* (apigateway/leases.py): one hold for several calls
of a key. What those calls cost is added up in LEASE_SPENT as each settles, so returning the
lease, or reaping it, gives back the hold minus what was spent.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import redis

HOLDS = "nexeon:holds"
LEASE_SPENT = "nexeon:lease-spent"  # hold member -> nano-dollars its calls spent


def spend_key(key_id: int, when: float | None = None) -> str:
    """This key's spend this calendar month (UTC), a cache of the ledger plus open holds."""
    month = datetime.fromtimestamp(time.time() if when is None else when, tz=UTC)
    return f"nexeon:keyspend:{key_id}:{month:%Y%m}"


def hold_member(request_id: str, organization_id: int, amount_nanos: int, spend: str | None) -> str:
    return f"{request_id}|{organization_id}|{amount_nanos}|{spend or ''}"


# KEYS: holds, balance, spend ('' if none), usage queue, then any rate-limit windows that
# hold the call's token estimate (apigateway/ratelimit.py). ARGV: member, cost, event ('' if
# none), then (with windows) the second the call was counted in and the tokens to add to
# it (the real count minus the estimate), applied only while that second still counts.
SETTLE_SCRIPT = """
for i = 5, #KEYS do
  if redis.call('HEXISTS', KEYS[i], 'r' .. ARGV[4]) == 1 then  -- the second still counts
    redis.call('HINCRBY', KEYS[i], 't' .. ARGV[4], ARGV[5])
    redis.call('HINCRBY', KEYS[i], 'T', ARGV[5])
  end
end
local held = redis.call('ZREM', KEYS[1], ARGV[1])
local reserved = tonumber(string.match(ARGV[1], '^[^|]*|[^|]*|([^|]*)'))
local cost = tonumber(ARGV[2])
local delta = -cost
if held == 1 then delta = reserved - cost end
if delta ~= 0 then
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('INCRBY', KEYS[2], delta) end
  if KEYS[3] ~= '' and redis.call('EXISTS', KEYS[3]) == 1 then
    redis.call('INCRBY', KEYS[3], -delta)
  end
end
if ARGV[3] ~= '' then redis.call('RPUSH', KEYS[4], ARGV[3]) end
return held
"""

# KEYS: holds, lease spending. ARGV: now, batch. Returns how many holds were returned. (The
# balance keys are derived from the members: fine on one Redis; a Cluster would need a hash
# tag per org.) A missing balance is left missing: it reloads from the ledger on its next use.
REAP_SCRIPT = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(expired) do
  local org, amount, spend = string.match(member, '^[^|]*|([^|]*)|([^|]*)|(.*)$')
  amount = tonumber(amount) - tonumber(redis.call('HGET', KEYS[2], member) or '0')
  redis.call('HDEL', KEYS[2], member)
  local balance = 'nexeon:balance:' .. org
  if redis.call('EXISTS', balance) == 1 then redis.call('INCRBY', balance, amount) end
  if spend ~= '' and redis.call('EXISTS', spend) == 1 then
    redis.call('DECRBY', spend, amount)
  end
  redis.call('ZREM', KEYS[1], member)
end
return #expired
"""


def reap_expired(client: redis.Redis, *, now: float | None = None, batch: int = 1000) -> int:
    """Return every hold past its deadline to its organization; returns how many."""
    returned = 0
    while True:
        when = time.time() if now is None else now
        count = int(client.eval(REAP_SCRIPT, 2, HOLDS, LEASE_SPENT, when, batch))
        returned += count
        if count < batch:
            return returned


def held_nanos(client: redis.Redis, organization_id: int) -> int:
    """Credit currently held for this organization's calls in flight (a lease: what its
    calls have not spent)."""
    total = 0
    for member in client.zrange(HOLDS, 0, -1):
        _, org, amount, _ = member.decode().split("|", 3)
        if int(org) == organization_id:
            total += int(amount) - int(client.hget(LEASE_SPENT, member) or 0)
    return total


# One call admitted from a lease has ended. KEYS: holds, balance, lease spending, usage
# queue. ARGV: the lease's member, cost, event ('' if none). Its cost counts against the
# lease; if the lease was reaped meanwhile, it is charged to the balance instead.
LEASE_SETTLE_SCRIPT = """
local cost = tonumber(ARGV[2])
if cost ~= 0 then
  if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
    redis.call('HINCRBY', KEYS[3], ARGV[1], cost)
  elseif redis.call('EXISTS', KEYS[2]) == 1 then
    redis.call('DECRBY', KEYS[2], cost)
  end
end
if ARGV[3] ~= '' then redis.call('RPUSH', KEYS[4], ARGV[3]) end
return 1
"""

# A lease is given back (its calls have all settled). KEYS: holds, balance, lease spending,
# then the rate-limit windows that counted its requests. ARGV: member, requests it did not
# use, the second they were counted in. Returns 1, or 0 if it had been reaped already.
LEASE_RETURN_SCRIPT = """
local spent = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
redis.call('HDEL', KEYS[3], ARGV[1])
local held = redis.call('ZREM', KEYS[1], ARGV[1])
if held == 1 and redis.call('EXISTS', KEYS[2]) == 1 then
  local amount = tonumber(string.match(ARGV[1], '^[^|]*|[^|]*|([^|]*)'))
  redis.call('INCRBY', KEYS[2], amount - spent)
end
local unused = tonumber(ARGV[2])
if unused > 0 then
  for i = 4, #KEYS do
    if redis.call('HEXISTS', KEYS[i], 'r' .. ARGV[3]) == 1 then  -- the second still counts
      redis.call('HINCRBY', KEYS[i], 'r' .. ARGV[3], -unused)
      redis.call('HINCRBY', KEYS[i], 'R', -unused)
    end
  end
end
return held
"""
