"""The ledger invariant the billing tests end on: the fast balance is the ledger's sum."""

from __future__ import annotations

import time

import redis
from django.conf import settings

from billing import holds
from billing.balance_cache import balance_key
from billing.selectors import organization_balance_nanos_by_id
from usage import pipeline


def assert_balance_reconciles(organization_id: int) -> int:
    """Book queued usage, then check nothing is held and Redis agrees with the ledger."""
    pipeline.drain()
    client = redis.Redis.from_url(settings.REDIS_URL)
    with client:
        # A lease is given back a moment after its last call (GATEWAY_LEASE_SECONDS).
        deadline = time.monotonic() + settings.GATEWAY_LEASE_SECONDS + 2
        while holds.held_nanos(client, organization_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        pipeline.drain()
        assert holds.held_nanos(client, organization_id) == 0, "credit still held"
        ledger = organization_balance_nanos_by_id(organization_id)
        cached = client.get(balance_key(organization_id))
    if cached is not None:
        assert int(cached) == ledger, f"Redis balance {int(cached)} != ledger {ledger}"
    return ledger
