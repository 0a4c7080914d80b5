"""Money state under the key names of versions before the shards (credit/keys.py), moved to
the sharded names on a single Redis: balances, holds in flight, spend counters, windows
and queued usage. Idempotent: what is already moved is not found again.

Run with every process of the old version stopped (`manage.py migrate` runs it, and
`manage.py migrate_credit_keys` alone): an old gateway still running would keep reserving
against the old balances. Queued usage is also moved by every drain pass (usage queued by
an old process is booked all the same). A Redis Cluster never held the old layout: there
is nothing to move there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

import redis

from credit import keys, scripts

logger = logging.getLogger(__name__)
BATCH = 1000
OLD_HOLD = keys.PREFIX + "credit:hold:"

# key ids -> their organizations (keys deleted since are left out)
KeyOrganizations = Callable[[Iterable[int]], dict[int, int]]


@dataclass(slots=True)
class Moved:
    organizations: int = 0
    holds: int = 0
    spend_counters: int = 0
    windows: int = 0
    usage: int = 0
    conflicts: int = 0  # old keys whose new name existed already: the new one is kept

    @property
    def anything(self) -> bool:
        return any((self.organizations, self.holds, self.spend_counters, self.windows, self.usage))


def _run(
    client: redis.Redis, script: scripts.Script, script_keys: list[str], args: list[Any]
) -> int:
    return int(client.eval(script.source, len(script_keys), *script_keys, *args))


def move_usage(client: redis.Redis, batch: int = BATCH) -> int:
    """Usage queued in the old list or the old stream, into the shards' streams."""
    if not client.exists(keys.LEGACY_USAGE_LIST, keys.LEGACY_USAGE_STREAM):
        return 0
    streams = [keys.usage_stream(shard) for shard in keys.shards()]
    moved = 0
    for name, kind in ((keys.LEGACY_USAGE_LIST, "list"), (keys.LEGACY_USAGE_STREAM, "stream")):
        while client.exists(name):
            count = _run(client, scripts.MOVE_LEGACY_USAGE, [name, *streams], [batch, kind])
            moved += count
            if not count:
                break
    return moved


def migrate(client: redis.Redis, key_organizations: KeyOrganizations) -> Moved:
    moved = Moved()
    for name in _scan(client, keys.LEGACY_ORGANIZATION_CREDIT):
        organization_id = keys.organization_of(name)
        moved.organizations += _rename(
            client, name, keys.organization_credit(organization_id), moved
        )
    moved.holds = _move_holds(client)
    spend = [(name, *_spend_parts(name)) for name in _scan(client, keys.LEGACY_SPEND)]
    owners = key_organizations({key_id for _, key_id, _ in spend})
    for name, key_id, month in spend:
        if key_id in owners:
            new = keys.key_spend(owners[key_id], key_id, month)
            moved.spend_counters += _rename(client, name, new, moved)
        else:
            client.delete(name)  # its key is gone: nothing reads it again
    windows = [(name, _last_id(name)) for name in _scan(client, keys.LEGACY_KEY_WINDOW)]
    owners = key_organizations({key_id for _, key_id in windows})
    for name, key_id in windows:
        if key_id in owners:
            new = keys.key_window(owners[key_id], key_id)
            moved.windows += _rename(client, name, new, moved)
    for name in _scan(client, keys.LEGACY_ORGANIZATION_WINDOW):
        new = keys.organization_window(_last_id(name))
        moved.windows += _rename(client, name, new, moved)
    moved.usage = move_usage(client)
    if moved.anything:
        logger.warning("credit keys moved to the sharded layout: %s", moved)
    return moved


def _last_id(name: str) -> int:
    return int(name.rsplit(":", 1)[1])


def _rename(client: redis.Redis, old: str, new: str, moved: Moved) -> int:
    """1 moved, 0 if the new name was taken (a new-version process wrote it: kept)."""
    if client.renamenx(old, new):
        return 1
    moved.conflicts += 1
    logger.error("%s not moved: %s exists (reconciliation corrects the balance)", old, new)
    client.delete(old)
    return 0


def _move_holds(client: redis.Redis) -> int:
    """Each open hold: its record renamed and pointed at its organization's new keys, and
    indexed in its shard's holds with the same deadline, in one transaction."""
    moved = 0
    # (redis-py types a synchronous client's replies as Any | Awaitable; these are lists)
    holds = cast(
        list[tuple[bytes, float]], client.zrange(keys.LEGACY_HOLDS, 0, -1, withscores=True)
    )
    for name, deadline in holds:
        old = name.decode()
        organization, spend = cast(list[bytes | None], client.hmget(old, "organization", "spend"))
        if organization is None:
            client.zrem(keys.LEGACY_HOLDS, old)  # no record: nothing to give back
            continue
        organization_id = int(organization)
        new = keys.hold(organization_id, old.removeprefix(OLD_HOLD))
        new_spend = ""
        if spend:
            key_id, month = _spend_parts(spend.decode())
            new_spend = keys.key_spend(organization_id, key_id, month)
        pipe = client.pipeline(transaction=True)
        pipe.rename(old, new)
        pipe.hset(
            new,
            mapping={"credit": keys.organization_credit(organization_id), "spend": new_spend},
        )
        pipe.zadd(keys.holds(keys.shard_of(organization_id)), {new: deadline})
        pipe.zrem(keys.LEGACY_HOLDS, old)
        pipe.execute()
        moved += 1
    return moved


def _spend_parts(name: str) -> tuple[int, str]:
    """(key id, month) of an old spend counter's name, credit:spend:<key id>:<month>."""
    _, key_id, month = name.rsplit(":", 2)
    return int(key_id), month


def _scan(client: redis.Redis, pattern: str) -> list[str]:
    return [name.decode() for name in client.scan_iter(match=pattern, count=1000)]
