"""Admission leases: a worker takes a slice of an API key's credit and requests-per-minute in
one Redis round trip, then admits that key's next calls from the slice in memory, so they
reach the provider without waiting on Redis first (that round trip was about a quarter of
the gateway's added latency: docs/benchmarks/cold-path-experiments.md).

A lease is an ordinary hold (billing.holds) of `credit` nano-dollars with `requests` counted
in the key's and organization's request windows when it is granted. Each call it admits is
still settled on its own, before its answer, with its usage event (LEASE_SETTLE_SCRIPT: the
cost counts against the lease). After GATEWAY_LEASE_SECONDS it admits nothing more; once
its calls have settled it is given back: the credit not spent, the requests not used. A
worker that dies leaves the hold to the reaper, which returns the credit not spent.

Leases are only taken where they cannot change an answer: for a key without token or
monthly spend limits, when the balance covers at least MIN_CALLS such calls and the request
windows have room for 16 times the lease. A call the lease cannot cover takes the ordinary
one-call reservation, which also decides 402 and 429, exactly as without leases.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field

from django.conf import settings

from apigateway import redis as gateway_redis
from apigateway.auth import KeyInfo
from apigateway.loops import running_loop, spawn
from apigateway.ratelimit import RateInfo
from apigateway.resp import RedisUnavailable, ScriptCall
from billing import holds
from billing.balance_cache import balance_key
from usage import pipeline

logger = logging.getLogger(__name__)

MAX_CALLS = 32  # a lease covers at most this many calls like the one that asked for it
MIN_CALLS = 4  # ... and at least this many, or none is taken
BALANCE_SHARE = 16  # a lease takes at most 1/16 of the balance left
WINDOW_SHARE = 16  # ... and at most 1/16 of the requests left this minute


@dataclass(slots=True, eq=False)
class Lease:
    member: str  # its hold in billing.holds.HOLDS
    key_id: int
    organization_id: int
    credit: int  # nano-dollars it can still admit
    requests: int  # requests it can still admit (-1: no request limit applies)
    windows: tuple[str, ...]  # the request windows that counted its requests
    rate: RateInfo  # the limits as the grant saw them
    until: float  # loop time after which it admits nothing
    in_flight: int = 0
    retired: bool = False


def eligible(key: KeyInfo) -> bool:
    """Token estimates and spend limits are settled per call: such keys take no lease."""
    return not (key.tpm_limit or key.org_tpm_limit or key.monthly_spend_limit_nanos)


@dataclass(slots=True)
class LeaseBook:
    """This process's leases, one per API key at most."""

    current: dict[int, Lease] = field(default_factory=dict)
    asking: set[int] = field(default_factory=set)  # keys with a grant on its way
    tasks: set[asyncio.Task] = field(default_factory=set)

    def admit(self, key: KeyInfo, amount_nanos: int) -> tuple[Lease, RateInfo] | None:
        """Take one call of `amount_nanos` from the key's lease, if it has room (no await)."""
        lease = self.current.get(key.key_id)
        if lease is None:
            return None
        if (
            lease.credit < amount_nanos
            or lease.requests == 0
            or running_loop().time() >= lease.until
            or not eligible(key)
        ):
            self.retire(lease)  # this call reserves on its own, which may ask for a new one
            return None
        if not gateway_redis.fast().connected:
            # Its settlement could not be written: reserve on its own (and fail closed).
            return None
        lease.credit -= amount_nanos
        if lease.requests > 0:
            lease.requests -= 1
        lease.in_flight += 1
        rate = lease.rate
        return lease, RateInfo(
            rate.request_limit,
            rate.requests_remaining + max(lease.requests, 0),
            rate.token_limit,
            rate.tokens_remaining,
            rate.reset_ms,
            rate.second,
        )

    def consider(self, key: KeyInfo, amount_nanos: int, balance_left: int, rate: RateInfo):
        """After a one-call reservation of `amount_nanos`: ask for a lease in the background
        if the key may have one and the balance and the windows have room for it."""
        seconds = settings.GATEWAY_LEASE_SECONDS
        if (
            seconds <= 0
            or key.key_id in self.current
            or key.key_id in self.asking
            or not eligible(key)
        ):
            return
        credit = min(balance_left // BALANCE_SHARE, max(amount_nanos, 1) * MAX_CALLS)
        if credit < max(amount_nanos, 1) * MIN_CALLS:
            return
        requests = -1
        if rate.request_limit:
            requests = min(MAX_CALLS, rate.requests_remaining // WINDOW_SHARE)
            if requests < MIN_CALLS:
                return
        self.asking.add(key.key_id)
        self._spawn(self._grant(key, credit, requests, seconds))

    async def _grant(self, key: KeyInfo, credit: int, requests: int, seconds: float) -> None:
        from apigateway.quota import RESERVE_SCRIPT, limits_of, reserve_arguments  # (a cycle)

        lease_id = f"lease_{secrets.token_hex(8)}"
        try:
            keys, args = reserve_arguments(key, credit, lease_id, 0, requests=max(requests, 1))
            result = await gateway_redis.fast().send_script(RESERVE_SCRIPT, keys, args).reply()
        except RedisUnavailable:
            return
        except Exception:  # a background task: nobody else would hear of it
            logger.exception("lease for key %s not granted", key.key_id)
            return
        finally:
            self.asking.discard(key.key_id)
        if result[0] != 1:
            return  # over a limit or short of credit meanwhile: calls reserve one by one
        loop = running_loop()
        lease = Lease(
            member=result[2].decode(),
            key_id=key.key_id,
            organization_id=key.organization_id,
            credit=credit,
            requests=requests,
            windows=tuple(window for window, _, rpm, _ in limits_of(key) if rpm),
            rate=RateInfo(*result[3:9]),
            until=loop.time() + seconds,
        )
        self.current[key.key_id] = lease  # (none there: one grant per key at a time)
        loop.call_later(seconds, self.retire, lease)

    def retire(self, lease: Lease) -> None:
        """Admit nothing more; give it back once its calls have settled."""
        if self.current.get(lease.key_id) is lease:
            del self.current[lease.key_id]
        if not lease.retired:
            lease.retired = True
            if lease.in_flight == 0:
                self._spawn(self.give_back(lease))

    def settled(self, lease: Lease, amount_nanos: int, cost_nanos: int) -> None:
        """One of its calls has sent its settlement (which counts the cost in Redis)."""
        lease.in_flight -= 1
        lease.credit += amount_nanos - cost_nanos
        if lease.retired and lease.in_flight == 0:
            self._spawn(self.give_back(lease))

    async def give_back(self, lease: Lease) -> None:
        keys = [holds.HOLDS, balance_key(lease.organization_id), holds.LEASE_SPENT]
        keys += lease.windows
        args = [lease.member, max(lease.requests, 0), lease.rate.second]
        try:
            await gateway_redis.fast().run_script(holds.LEASE_RETURN_SCRIPT, keys, args)
        except RedisUnavailable:
            # The hold stays, and the reaper returns what was not spent at its deadline.
            logger.warning("lease %s not given back: Redis unreachable", lease.member)
        except Exception:
            logger.exception("lease %s not given back (the reaper will)", lease.member)

    async def give_back_all(self) -> None:
        """At shutdown, after the calls in flight have settled."""
        for lease in list(self.current.values()):
            self.retire(lease)
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=5)

    def _spawn(self, coroutine) -> None:
        task = spawn(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


book = LeaseBook()


def settle_arguments(lease: Lease, cost_nanos: int, event: bytes | None) -> tuple[list, list]:
    """LEASE_SETTLE_SCRIPT's keys and arguments for one call admitted from `lease`."""
    keys = [holds.HOLDS, balance_key(lease.organization_id), holds.LEASE_SPENT, pipeline.QUEUE]
    return keys, [lease.member, cost_nanos, event or b""]


def send_settlement(lease: Lease, cost_nanos: int, event: bytes | None) -> ScriptCall:
    keys, args = settle_arguments(lease, cost_nanos, event)
    return gateway_redis.fast().send_script(holds.LEASE_SETTLE_SCRIPT, keys, args)


def settle_now(lease: Lease, cost_nanos: int, event: bytes | None) -> None:
    """The same settlement as a blocking call, for a process whose loop is stopping."""
    import redis as sync_redis

    keys, args = settle_arguments(lease, cost_nanos, event)
    with sync_redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2) as client:
        client.eval(holds.LEASE_SETTLE_SCRIPT, len(keys), *keys, *args)
