"""The fast balance the gateway reserves from (Redis), kept in step with the ledger.

A credit booked in the ledger is added to the cached balance if one is cached; if none
is, the gateway loads the ledger sum on its next request. Usage is not added here: the
gateway already took it from the cache when it settled the call.
"""

from __future__ import annotations

import redis
from django.conf import settings

ADD_IF_CACHED = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBY', KEYS[1], ARGV[1]) end
return nil
"""


def balance_key(organization_id: int) -> str:
    return f"nexeon:balance:{organization_id}"


def cached_balance_add(organization_id: int, amount_nanos: int) -> None:
    if not settings.REDIS_URL:
        return  # embedded mode: the in-process balance reloads (apigateway.quota)
    with redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5) as client:
        client.eval(ADD_IF_CACHED, 1, balance_key(organization_id), amount_nanos)
