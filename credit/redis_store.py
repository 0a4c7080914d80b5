"""The money state in Redis, shared by every process of a deployment.

Per organization, a hash (keys.organization_credit): `available` (what calls may still
reserve), `held` (reserved by calls in flight and not yet spent), `unbooked` (charged, its
usage event queued but not yet booked in the ledger), and `credits` / `credits_seq`
(the ledger's credit total as last synced). Per hold, a hash (keys.hold): the
organization, the key, the amount, what its calls spent, and the names of the credit and
spend keys it counts in; per shard, the sorted set keys.holds orders its holds by deadline
for the reaper. Per call, one entry in its shard's stream keys.usage_stream, consumed by
the usage drain through the stream's consumer group keys.USAGE_GROUP and deleted once
booked. Every rule runs in one Lua script (credit/lua/) on the keys of one organization's
shard (one Redis Cluster slot), so concurrent calls on any number of processes see one
order.

The hot path's methods are async on the pipelined client (credit.resp, or credit.cluster
over a Redis Cluster); the workers' are blocking, on redis-py.
"""

from __future__ import annotations

import os
import socket
import time
from collections import defaultdict
from collections.abc import Sequence
from functools import cache
from typing import Any, cast

import orjson
import redis
from django.conf import settings

from credit import connections, keys, legacy, scripts
from credit.cluster import ClusterScriptCall
from credit.records import (
    BalanceNotLoaded,
    Charge,
    CreditState,
    CreditUnavailable,
    Hold,
    InsufficientCredit,
    LedgerFigures,
    Payer,
    QueuedUsage,
    RateInfo,
    RateLimited,
    Reserved,
    ReserveOutcome,
    SpendLimitReached,
    SpendNotLoaded,
    UsageBacklog,
)
from credit.resp import Arg, ScriptCall
from credit.scripts import Script
from credit.store import dead_letter_item, lease_windows, token_windows

SUBJECTS = {1: "key", 2: "organization"}

# A stream's entries as XREADGROUP and XAUTOCLAIM answer them (per stream for XREADGROUP).
_Entries = list[tuple[bytes, dict[bytes, bytes]]]
_Read = list[tuple[bytes, _Entries]]


@cache  # (every settlement sends it; the setting is read once)
def keep_seconds() -> int:
    """How long a settled or reaped hold's record is kept: longer than a settlement that
    lost its reply is sent again (GATEWAY_SETTLE_RETRY_SECONDS)."""
    return int(settings.GATEWAY_SETTLE_RETRY_SECONDS) + 60


UNITS = {1: "requests", 2: "tokens"}


def reserve_arguments(
    payer: Payer,
    *,
    name: str,
    amount: int,
    tokens: int,
    deadline: float,
    requests: int,
    now: float | None,
) -> tuple[list[str], list[Any]]:
    limit = payer.monthly_spend_limit_nanos
    organization_id = payer.organization_id
    script_keys = [
        keys.key_window(organization_id, payer.key_id),
        keys.organization_window(organization_id),
        keys.organization_credit(organization_id),
        keys.holds(keys.shard_of(organization_id)),
        name,
        # Without a limit, unread: the hold again (an empty name is another cluster slot).
        name
        if limit is None
        else keys.key_spend(organization_id, payer.key_id, keys.month_of(now)),
    ]
    args = [
        payer.rpm_limit or 0,
        payer.tpm_limit or 0,
        payer.org_rpm_limit or 0,
        payer.org_tpm_limit or 0,
        tokens,
        amount,
        organization_id,
        f"{deadline:.3f}",
        "" if limit is None else limit,
        requests,
        payer.key_id,
        "" if now is None else repr(now),
    ]
    return script_keys, args


def reserve_outcome(
    result: list[Any],
    payer: Payer,
    name: str,
    amount: int,
    tokens: int,
    spend: str,
    now: float | None,
) -> ReserveOutcome:
    status = result[0]
    if status == 1:
        hold = Hold(
            name,
            payer.organization_id,
            payer.key_id,
            amount,
            spend,
            token_windows(payer),
        )
        return Reserved(hold, result[1], RateInfo(*result[2:8], tokens=tokens))  # type: ignore[misc]
    if status == -1:
        _, wait_ms, subject, unit, limit = result
        return RateLimited(
            wait_ms, SUBJECTS[subject], UNITS[unit], limit, 1 if unit == 1 else tokens
        )
    if status == -3:
        return InsufficientCredit(result[1])
    if status == -5:
        return SpendLimitReached(result[1], payer.monthly_spend_limit_nanos or 0)
    if status == -2:
        return BalanceNotLoaded(payer.organization_id)
    return SpendNotLoaded(payer.organization_id, payer.key_id, keys.month_of(now))


def settle_arguments(hold: Hold, charge: Charge) -> tuple[list[str], list[Any]]:
    shard = keys.shard_of(hold.organization_id)
    script_keys = [
        keys.holds(shard),
        hold.name,
        keys.organization_credit(hold.organization_id),
        hold.spend_key or hold.name,  # (the hold itself: counted in no spend counter)
        keys.usage_stream(shard),
    ]
    args: list[Any] = [
        charge.cost,
        charge.cap,
        1 if charge.close else 0,
        hold.organization_id,
        charge.event,
        charge.call_id,
        keep_seconds(),
    ]
    correction = charge.token_correction
    if correction is not None and correction[1] and hold.token_windows:
        script_keys += hold.token_windows
        args += list(correction)
    return script_keys, args


class RedisStore:
    def __init__(self) -> None:
        self._groups_ready: set[int] = set()  # shards whose stream has the drain's group
        self._next_shard = 0

    # --- the hot path ---------------------------------------------------------------
    async def reserve(
        self,
        payer: Payer,
        *,
        hold_id: str,
        amount: int,
        tokens: int,
        deadline: float,
        requests: int = 1,
        now: float | None = None,
    ) -> ReserveOutcome:
        name = keys.hold(payer.organization_id, hold_id)
        script_keys, args = reserve_arguments(
            payer,
            name=name,
            amount=amount,
            tokens=tokens,
            deadline=deadline,
            requests=requests,
            now=now,
        )
        # Written at once rather than with the loop turn's other commands: Redis runs it
        # while this process reads the next request of a burst.
        result = await connections.fast().send_script(scripts.RESERVE, script_keys, args).reply()
        spend = script_keys[5] if payer.monthly_spend_limit_nanos is not None else ""
        return reserve_outcome(result, payer, name, amount, tokens, spend, now)

    def send_settlement(self, hold: Hold, charge: Charge) -> ScriptCall | ClusterScriptCall:
        """Written to Redis before this returns when connected: the caller may answer its
        client at once and await `.reply()` (the amount charged) afterwards."""
        script_keys, args = settle_arguments(hold, charge)
        return connections.fast().send_script(scripts.SETTLE, script_keys, args)

    async def release(self, hold: Hold, *, unused_requests: int, second: int) -> bool:
        organization_id = hold.organization_id
        script_keys = [
            keys.holds(keys.shard_of(organization_id)),
            hold.name,
            keys.organization_credit(organization_id),
        ]
        if unused_requests:
            script_keys += lease_windows(hold)
        args = [unused_requests, second, keep_seconds()]
        return bool(await connections.fast().run_script(scripts.RELEASE, script_keys, args))

    async def count_refused(self, payer: Payer, now: float | None = None) -> None:
        script_keys = [
            keys.key_window(payer.organization_id, payer.key_id),
            keys.organization_window(payer.organization_id),
        ]
        args: list[Arg] = [
            payer.rpm_limit or 0,
            0,
            payer.org_rpm_limit or 0,
            0,
            "" if now is None else repr(now),
        ]
        await connections.fast().run_script(scripts.COUNT, script_keys, args)

    async def record(self, organization_id: int, event: bytes) -> None:
        stream = keys.usage_stream(keys.shard_of(organization_id))
        await connections.fast().call(
            "XADD", stream, "*", "o", organization_id, "c", 0, "u", 0, "e", event
        )

    async def renew(self, holds: Sequence[Hold], deadline: float) -> None:
        """One script per shard the holds are in (each touches one slot)."""
        by_shard: dict[int, list[str]] = defaultdict(list)
        for hold in holds:
            by_shard[keys.shard_of(hold.organization_id)].append(hold.name)
        client = connections.fast()
        calls = [
            client.send_script(scripts.RENEW, [*names, keys.holds(shard)], [f"{deadline:.3f}"])
            for shard, names in by_shard.items()
        ]
        for call in calls:
            await call.reply()

    async def load_balance(self, organization_id: int, figures: LedgerFigures) -> None:
        args = [figures.credits, figures.credits_seq, figures.usage]
        credit = keys.organization_credit(organization_id)
        await connections.fast().run_script(scripts.LOAD, [credit], args)

    async def load_spend(self, organization_id: int, key_id: int, month: str, spent: int) -> None:
        spend = keys.key_spend(organization_id, key_id, month)
        await connections.fast().call("SET", spend, spent, "NX", "EXAT", keys.spend_expiry(month))

    # --- a stopping process ---------------------------------------------------------
    def settle_blocking(self, hold: Hold, charge: Charge) -> int:
        script_keys, args = settle_arguments(hold, charge)
        return int(self._run(scripts.SETTLE, script_keys, args))

    # --- workers and the ledger's writer ----------------------------------------------
    def _run(self, script: Script, script_keys: list[str], args: list[Any]) -> Any:
        client = connections.sync()
        try:
            try:
                return client.evalsha(script.sha, len(script_keys), *script_keys, *args)
            except redis.exceptions.NoScriptError:
                return client.eval(script.source, len(script_keys), *script_keys, *args)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise CreditUnavailable(str(exc)) from exc

    def sync_credits(self, organization_id: int, credits: int, seq: int) -> int:
        credit = keys.organization_credit(organization_id)
        return int(self._run(scripts.SYNC_CREDITS, [credit], [credits, seq]))

    def reap(self, now: float | None = None, batch: int = 1000) -> int:
        returned = 0
        for shard in keys.shards():
            while True:
                when = time.time() if now is None else now
                args = [repr(when), batch, keep_seconds()]
                count = int(self._run(scripts.REAP, [keys.holds(shard)], args))
                returned += count
                if count < batch:
                    break
        return returned

    def _ensure_group(self, client: redis.Redis, shard: int) -> None:
        try:
            client.xgroup_create(keys.usage_stream(shard), keys.USAGE_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups_ready.add(shard)

    def read_usage(self, consumer: str, count: int, claim_idle_ms: int) -> list[QueuedUsage]:
        """Up to `count` entries, shard by shard (each call starts one shard further, so
        none waits behind a busy one). Of each shard: the entries this consumer read before
        and did not acknowledge (its last batch failed, or it is a restarted process of the
        same name), then those another drainer left unacknowledged for `claim_idle_ms` (it
        died or is stuck), then entries never read."""
        client = connections.sync()
        if not connections.is_cluster(settings.REDIS_URL):
            legacy.move_usage(client, count)  # queued by a version before the shards
        entries: list[QueuedUsage] = []
        shards = keys.shards()
        first = self._next_shard % len(shards)
        self._next_shard = first + 1
        for shard in [*shards[first:], *shards[:first]]:
            if len(entries) >= count:
                break
            if shard not in self._groups_ready:
                self._ensure_group(client, shard)
            wanted = count - len(entries)
            try:
                read = self._claim_and_read(client, shard, consumer, wanted, claim_idle_ms)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self._ensure_group(client, shard)  # Redis lost its data (no AOF)
                read = self._claim_and_read(client, shard, consumer, wanted, claim_idle_ms)
            entries += [queued_usage(entry_id, fields, shard) for entry_id, fields in read]
        return entries

    def _claim_and_read(
        self, client: redis.Redis, shard: int, consumer: str, count: int, claim_idle_ms: int
    ) -> list[tuple[bytes, dict[bytes, bytes]]]:
        stream = keys.usage_stream(shard)
        entries: list[tuple[bytes, dict[bytes, bytes]]] = []
        # (redis-py types a synchronous client's replies as Any | Awaitable: they are _Read)
        pending = client.xreadgroup(keys.USAGE_GROUP, consumer, {stream: "0"}, count=count)
        for _, read in cast(_Read, pending) or []:
            entries += [(entry_id, fields) for entry_id, fields in read if fields]
        if len(entries) < count:
            claimed: _Entries = client.xautoclaim(
                stream,
                keys.USAGE_GROUP,
                consumer,
                claim_idle_ms,
                "0-0",
                count=count - len(entries),
            )[1]
            entries += [(entry_id, fields) for entry_id, fields in claimed if fields]
        if len(entries) < count:
            fresh = client.xreadgroup(
                keys.USAGE_GROUP, consumer, {stream: ">"}, count=count - len(entries)
            )
            for _, read in cast(_Read, fresh) or []:
                entries += read
        return entries

    def ack_usage(self, entries: Sequence[QueuedUsage]) -> int:
        """One script per shard the entries came from."""
        by_shard: dict[int, list[QueuedUsage]] = defaultdict(list)
        for entry in entries:
            by_shard[entry.shard].append(entry)
        acked = 0
        for shard, queued in by_shard.items():
            stream = keys.usage_stream(shard)
            script_keys = [stream]
            args: list[Any] = [keys.USAGE_GROUP]
            for entry in queued:
                organization = entry.organization_id
                if organization is not None and keys.shard_of(organization) == shard:
                    script_keys.append(keys.organization_credit(organization))
                else:
                    script_keys.append(stream)
                args += [entry.id, entry.counted]
            acked += int(self._run(scripts.ACK, script_keys, args))
        return acked

    def dead_letter(self, entries: Sequence[QueuedUsage]) -> None:
        if entries:
            connections.sync().rpush(keys.USAGE_DEAD, *(dead_letter_item(e) for e in entries))

    def usage_backlog(self) -> UsageBacklog:
        client = connections.sync()
        length = pending = 0
        oldest: float | None = None
        for shard in keys.shards():
            stream = keys.usage_stream(shard)
            pipe = client.pipeline(transaction=False)
            pipe.xlen(stream)
            pipe.xrange(stream, count=1)
            pipe.xpending(stream, keys.USAGE_GROUP)
            shard_length, first, shard_pending = pipe.execute(raise_on_error=False)
            length += shard_length
            if not isinstance(shard_pending, Exception):  # no group yet: nothing was read
                pending += int(shard_pending["pending"])
            if first:
                at = entry_time(first[0][0])
                oldest = at if oldest is None else min(oldest, at)
        dead = int(client.llen(keys.USAGE_DEAD))
        return UsageBacklog(max(length - pending, 0), pending, oldest, dead)

    def credit_state(self, organization_id: int) -> CreditState | None:
        values = connections.sync().hmget(
            keys.organization_credit(organization_id),
            "available",
            "held",
            "unbooked",
            "credits",
            "credits_seq",
        )
        if values[0] is None:
            return None
        return CreditState(*(int(value or 0) for value in values))

    def organizations(self) -> list[int]:
        found = connections.sync().scan_iter(match=keys.ORGANIZATION_CREDIT_PATTERN, count=1000)
        return sorted(keys.organization_of(name.decode()) for name in found)

    def charge_ledger_only(self, organization_id: int, expected_total: int, amount: int) -> int:
        credit = keys.organization_credit(organization_id)
        return int(self._run(scripts.CHARGE_LEDGER_ONLY, [credit], [expected_total, amount]))


def queued_usage(entry_id: bytes, fields: dict[bytes, bytes], shard: int = 0) -> QueuedUsage:
    raw = fields.get(b"e", b"")
    organization = fields.get(b"o", b"")
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        event = None
    return QueuedUsage(
        id=entry_id.decode(),
        organization_id=int(organization) if organization.isdigit() else None,
        charge=_whole(fields.get(b"c")),
        counted=_whole(fields.get(b"c")) if fields.get(b"u") == b"1" else 0,
        raw=raw,
        event=event if isinstance(event, dict) else None,
        shard=shard,
    )


def _whole(value: bytes | None) -> int:
    try:
        return max(int(value or 0), 0)
    except ValueError:
        return 0


def entry_time(entry_id: bytes | str) -> float:
    """When a stream entry was added: its id's milliseconds."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0]) / 1000


def consumer_name() -> str:
    """This process's name in the usage drain's consumer group."""
    return f"{socket.gethostname()}:{os.getpid()}"
