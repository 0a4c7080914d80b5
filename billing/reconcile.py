"""Keeping the fast balances in Redis equal to the ledger (Celery beat, every minute).

The Redis balance of an organization should equal its ledger sum, minus what its calls in
flight hold, minus usage queued but not yet written. Comparing the two is only meaningful
when nothing is in motion, so an organization is checked (and corrected) only while it is
quiet: no hold of its, an empty usage queue, and the same ledger sum before and after the
check. The correction is a compare-and-set in Lua that re-checks all of that, so a call or
a credit that lands meanwhile is never overwritten.
"""

from __future__ import annotations

import logging

import redis

from billing.balance_cache import balance_key
from billing.holds import HOLDS
from billing.selectors import organization_balance_nanos_by_id
from usage import metrics
from usage.pipeline import QUEUE

logger = logging.getLogger(__name__)

# KEYS: balance, holds, usage queue. ARGV: organization id, expected balance (the ledger),
# the balance read before (compare-and-set), write (1/0).
# Returns {status, balance}: 0 equal, 1 corrected, -1 busy (not quiet), -2 not cached.
CHECK_SCRIPT = """
local balance = redis.call('GET', KEYS[1])
if not balance then return {-2, 0} end
if redis.call('LLEN', KEYS[3]) > 0 then return {-1, tonumber(balance)} end
local prefix = '|' .. ARGV[1] .. '|'
for _, hold in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if string.find(hold, prefix, 1, true) then return {-1, tonumber(balance)} end
end
if balance == ARGV[2] then return {0, tonumber(balance)} end
if ARGV[4] == '1' and balance == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[2])
  return {1, tonumber(balance)}
end
return {-1, tonumber(balance)}
"""


def reconcile_organization(client: redis.Redis, organization_id: int) -> str:
    """'equal', 'corrected', 'busy' or 'not cached'."""
    keys = [balance_key(organization_id), HOLDS, QUEUE]
    ledger = organization_balance_nanos_by_id(organization_id)
    status, seen = client.eval(CHECK_SCRIPT, 3, *keys, organization_id, ledger, "", 0)
    if status in (0, -2):
        return "equal" if status == 0 else "not cached"
    if organization_balance_nanos_by_id(organization_id) != ledger:
        return "busy"  # a credit or a usage batch landed meanwhile
    status, seen = client.eval(CHECK_SCRIPT, 3, *keys, organization_id, ledger, seen, 1)
    if status == 1:
        logger.warning(
            "balance of organization %s corrected from %s to the ledger's %s",
            organization_id,
            seen,
            ledger,
        )
        metrics.increment("nexeon_balance_corrections_total", client=client)
        return "corrected"
    return "equal" if status == 0 else "busy"


def reconcile_all(client: redis.Redis) -> dict[str, int]:
    outcome: dict[str, int] = {}
    for key in client.scan_iter(match="nexeon:balance:*", count=1000):
        organization_id = int(key.decode().rsplit(":", 1)[1])
        result = reconcile_organization(client, organization_id)
        outcome[result] = outcome.get(result, 0) + 1
    return outcome
