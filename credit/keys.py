"""Every Redis key the project writes in its own Redis database (REDIS_URL): the money
state and the gateway's shared caches. Nothing else names a key; the Lua scripts get
their keys from here through KEYS or from a hold's own record, never by building them.

The Django cache and the Celery broker use other databases (settings.CACHE_REDIS_URL,
settings.CELERY_BROKER_URL), so that clearing the cache or the broker cannot touch money.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

PREFIX = "nexeon:"

# --- money ------------------------------------------------------------------------------
HOLDS = PREFIX + "credit:holds"  # sorted set: hold id -> deadline (unix seconds)
USAGE_STREAM = PREFIX + "usage:stream"  # one entry per call: org, charge, event
USAGE_GROUP = "drain"  # the usage pipeline's consumer group on USAGE_STREAM
USAGE_DEAD = PREFIX + "usage:dead"  # entries that can never be booked, kept for the operator
LEGACY_USAGE_LIST = PREFIX + "usage:events"  # before the stream: moved into it by the drain


def organization_credit(organization_id: int) -> str:
    """Hash: available, held, unbooked, credits, credits_seq (see redis_store)."""
    return f"{PREFIX}credit:org:{organization_id}"


def hold(hold_id: str) -> str:
    """Hash: what one hold reserved, what its calls spent, and the keys it counts in."""
    return f"{PREFIX}credit:hold:{hold_id}"


def month_of(when: float | None = None) -> str:
    """The calendar month (UTC) a spend counter counts, as YYYYMM."""
    moment = datetime.fromtimestamp(time.time() if when is None else when, tz=UTC)
    return f"{moment:%Y%m}"


def key_spend(key_id: int, month: str) -> str:
    """A key's spend this month: the ledger's, plus what is held and not yet booked."""
    return f"{PREFIX}credit:spend:{key_id}:{month}"


def key_window(key_id: int) -> str:
    """A key's request and token window (credit.windows)."""
    return f"{PREFIX}rl:key:{key_id}"


def organization_window(organization_id: int) -> str:
    return f"{PREFIX}rl:org:{organization_id}"


# --- the gateway's shared caches --------------------------------------------------------
CATALOG_VERSION = PREFIX + "catalog:version"
METRICS = PREFIX + "metrics"


def api_key(digest: str) -> str:
    """A key's facts as the gateway caches them, or its revocation tombstone."""
    return f"{PREFIX}apikey:{digest}"


def auth_failures(address: str, minute: int) -> str:
    """Failed authentications from one client address in one minute (unix time // 60)."""
    return f"{PREFIX}authfail:{address}:{minute}"


def live_usage(organization_id: int) -> str:
    """The pub/sub channel of an organization's live usage feed."""
    return f"{PREFIX}live:{organization_id}"


ORGANIZATION_CREDIT_PATTERN = f"{PREFIX}credit:org:*"


def organization_of(credit_key: str) -> int:
    """The organization id in an organization_credit() key."""
    return int(credit_key.rsplit(":", 1)[1])


def spend_expiry(month: str) -> int:
    """When a spend counter may go: the start of the month after the next (unix time),
    well after its month and every call settling in it."""
    year, number = int(month[:4]), int(month[4:])
    year, number = (year + 1, number - 10) if number > 10 else (year, number + 2)
    return int(datetime(year, number, 1, tzinfo=UTC).timestamp())


def readiness(process: str) -> str:
    """String, expiring in seconds: a process's readiness probe writes it (nexeon/health.py)
    to see that the money database takes writes."""
    return f"{PREFIX}ready:{process}"
