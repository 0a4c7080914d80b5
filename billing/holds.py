"""Credit held for calls in flight, in Redis, so that a process that dies mid-call cannot
keep credit away from its organization for ever.

The gateway's reservation takes the call's maximum cost from the fast balance and records
a hold (a sorted-set member scored by its deadline). Settling removes the hold and returns
what was not spent. A hold whose process died is past its deadline: the reaper (Celery
beat) returns it whole. If a slow call settles after its hold was reaped, settling charges
the cost instead of refunding the difference, so every path ends at balance - cost.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import redis

HOLDS = "nexeon:holds"


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

# KEYS: holds. ARGV: now, batch. Returns how many holds were returned. (The balance keys are
# derived from the members: fine on one Redis; a Cluster would need a hash tag per org.)
# A missing balance is left missing: it reloads from the ledger on its next use.
REAP_SCRIPT = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(expired) do
  local org, amount, spend = string.match(member, '^[^|]*|([^|]*)|([^|]*)|(.*)$')
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
        count = int(client.eval(REAP_SCRIPT, 1, HOLDS, time.time() if now is None else now, batch))
        returned += count
        if count < batch:
            return returned


def held_nanos(client: redis.Redis, organization_id: int) -> int:
    """Credit currently held for this organization's calls in flight."""
    total = 0
    for member in client.zrange(HOLDS, 0, -1):
        _, org, amount, _ = member.decode().split("|", 3)
        if int(org) == organization_id:
            total += int(amount)
    return total
