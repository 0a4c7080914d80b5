"""Failed authentications per client address: a key that is well formed but unknown costs
a database query, so an address that keeps presenting such keys is refused (429) for the
rest of the minute before its next one does.

Counted in Redis (one window per address and minute, shared by every replica) or, without
Redis, in this process. Only failures count, and the check runs only for a key that no
cache knows, so callers with good keys never pay for it.
"""

from __future__ import annotations

import math
import time
from contextlib import suppress

from django.conf import settings

from apigateway.errors import RATE_LIMITED, GatewayError
from credit import connections, keys
from credit.resp import RedisReplyError, RedisUnavailable

WINDOW_SECONDS = 60
_local: dict[str, tuple[int, int]] = {}  # address -> (minute, failures), without Redis
_LOCAL_MAX = 100_000


def _minute() -> int:
    return int(time.time()) // WINDOW_SECONDS


def too_many(retry_after: int) -> GatewayError:
    return GatewayError(
        429,
        "Too many requests with unknown API keys from your address; check the key and "
        f"retry in {retry_after}s.",
        type=RATE_LIMITED,
        code="rate_limit_exceeded",
        headers={"retry-after": str(retry_after)},
    )


def _retry_after() -> int:
    return max(1, math.ceil(WINDOW_SECONDS - time.time() % WINDOW_SECONDS))


async def failures(address: str) -> int:
    minute = _minute()
    if not connections.configured():
        seen_minute, count = _local.get(address, (minute, 0))
        return count if seen_minute == minute else 0
    with suppress(RedisUnavailable, RedisReplyError):
        raw = await connections.fast().call("GET", keys.auth_failures(address, minute))
        return int(raw or 0)
    return 0


async def check(address: str) -> None:
    """429 if this address's unknown keys have failed too often this minute."""
    limit = settings.GATEWAY_AUTH_FAILURES_PER_MINUTE
    if limit and address and await failures(address) >= limit:
        raise too_many(_retry_after())


async def count(address: str) -> None:
    if not address:
        return
    minute = _minute()
    if not connections.configured():
        seen_minute, seen = _local.get(address, (minute, 0))
        if len(_local) >= _LOCAL_MAX:
            _local.clear()
        _local[address] = (minute, (seen if seen_minute == minute else 0) + 1)
        return
    name = keys.auth_failures(address, minute)
    with suppress(RedisUnavailable, RedisReplyError):
        await connections.fast().call("INCR", name)
        await connections.fast().call("EXPIRE", name, WINDOW_SECONDS * 2)
