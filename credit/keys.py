"""Every Redis key the project writes in its own Redis database (REDIS_URL): the money
state and the gateway's shared caches. Nothing else names a key; the Lua scripts get
their keys from here through KEYS or from a hold's own record, never by building them.

The money state is split into CREDIT_SHARDS shards by organization (its id modulo the
count): every money key of an organization — its balance, its holds, its keys' spend
counters and windows — and its shard's holds index and usage stream carry the shard's
hash tag (`nexeon:{<tag>}:...`), so they share one Redis Cluster slot and every script
touches one slot. On a single Redis the tags change nothing. Each shard's tag is chosen
so that the shards' slots are spread evenly over the 16384 slots: a cluster whose masters
serve equal slot ranges (what `redis-cli --cluster create` and managed clusters do) gets
an even share of the shards on each master.

The Django cache and the Celery broker use other databases (settings.CACHE_REDIS_URL,
settings.CELERY_BROKER_URL), so that clearing the cache or the broker cannot touch money.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from django.conf import settings
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

PREFIX = "nexeon:"

# --- money ------------------------------------------------------------------------------
USAGE_GROUP = "drain"  # the usage pipeline's consumer group on each shard's usage stream
USAGE_DEAD = PREFIX + "usage:dead"  # entries that can never be booked, kept for the operator


_TAGS: tuple[str, ...] = ()  # each shard's name start, `nexeon:{<tag>}:` (made once)


def _tags() -> tuple[str, ...]:
    """Each shard's hash tag: `s<shard>`, or `s<shard>.<n>` with the first n whose slot
    lies in the shard's share of the slot space."""
    global _TAGS
    if not _TAGS:
        count = int(settings.CREDIT_SHARDS)
        found = []
        for shard in range(count):
            low = shard * REDIS_CLUSTER_HASH_SLOTS // count
            high = (shard + 1) * REDIS_CLUSTER_HASH_SLOTS // count
            tag, n = f"s{shard}", 0
            while not low <= key_slot(tag.encode()) < high:
                tag, n = f"s{shard}.{n}", n + 1
            found.append(f"{PREFIX}{{{tag}}}:")
        _TAGS = tuple(found)
    return _TAGS


def shards() -> range:
    return range(len(_tags()))


def shard_of(organization_id: int) -> int:
    return organization_id % len(_TAGS or _tags())


def _org(organization_id: int) -> str:
    """The name start of an organization's money keys: its shard's hash tag."""
    tags = _TAGS or _tags()
    return tags[organization_id % len(tags)]


def holds(shard: int) -> str:
    """Sorted set: the shard's open holds, hold name -> deadline (unix seconds)."""
    return _tags()[shard] + "credit:holds"


def usage_stream(shard: int) -> str:
    """Stream: one entry per call of the shard's organizations: org, charge, event."""
    return _tags()[shard] + "usage:stream"


def organization_credit(organization_id: int) -> str:
    """Hash: available, held, unbooked, credits, credits_seq (see redis_store)."""
    tags = _TAGS or _tags()  # (inline: every call names it)
    return f"{tags[organization_id % len(tags)]}credit:org:{organization_id}"


def hold(organization_id: int, hold_id: str) -> str:
    """Hash: what one hold reserved, what its calls spent, and the keys it counts in."""
    return f"{_org(organization_id)}credit:hold:{hold_id}"


def month_of(when: float | None = None) -> str:
    """The calendar month (UTC) a spend counter counts, as YYYYMM."""
    moment = datetime.fromtimestamp(time.time() if when is None else when, tz=UTC)
    return f"{moment:%Y%m}"


def key_spend(organization_id: int, key_id: int, month: str) -> str:
    """A key's spend this month: the ledger's, plus what is held and not yet booked."""
    return f"{_org(organization_id)}credit:spend:{key_id}:{month}"


def key_window(organization_id: int, key_id: int) -> str:
    """A key's request and token window (credit.windows)."""
    return f"{_org(organization_id)}rl:key:{key_id}"


def organization_window(organization_id: int) -> str:
    return f"{_org(organization_id)}rl:org:{organization_id}"


# --- the layout before shards (a single Redis), moved by credit.legacy ------------------
LEGACY_HOLDS = PREFIX + "credit:holds"
LEGACY_USAGE_STREAM = PREFIX + "usage:stream"
LEGACY_USAGE_LIST = PREFIX + "usage:events"  # before the stream
LEGACY_ORGANIZATION_CREDIT = PREFIX + "credit:org:*"
LEGACY_SPEND = PREFIX + "credit:spend:*"  # credit:spend:<key id>:<month>
LEGACY_KEY_WINDOW = PREFIX + "rl:key:*"
LEGACY_ORGANIZATION_WINDOW = PREFIX + "rl:org:*"


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


ORGANIZATION_CREDIT_PATTERN = PREFIX + "{*}:credit:org:*"


def organization_of(credit_key: str) -> int:
    """The organization id in an organization_credit() key."""
    return int(credit_key.rsplit(":", 1)[1])


def spend_expiry(month: str) -> int:
    """When a spend counter may go: the start of the month after the next (unix time),
    well after its month and every call settling in it."""
    year, number = int(month[:4]), int(month[4:])
    year, number = (year + 1, number - 10) if number > 10 else (year, number + 2)
    return int(datetime(year, number, 1, tzinfo=UTC).timestamp())


def readiness(process: str, shard: int | None = None) -> str:
    """String, expiring in seconds: a process's readiness probe writes it (nexeon/health.py)
    to see that the money database takes writes; on a cluster one per shard, so that every
    master holding money is asked."""
    start = PREFIX if shard is None else _tags()[shard]
    return f"{start}ready:{process}"
