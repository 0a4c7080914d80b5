"""Admission leases: a gateway process takes a slice of an API key's credit and
requests-per-minute in one Redis round trip, then admits that key's next calls from the
slice in memory, so they reach the provider without waiting on Redis first (that round
trip, measured at a 50 ms upstream, was about a quarter of the gateway's added latency).

A lease is an ordinary hold of `credit` nano-dollars, with `requests` counted in the key's
and organization's request windows when it is granted. Each call it admits is still
settled on its own, before its answer, with its usage event: its charge (at most what the
call reserved) counts against the lease's hold. After GATEWAY_LEASE_SECONDS it admits
nothing more; once its calls have settled it is given back: the credit not spent, the
requests not used. A process that dies leaves the hold to the reaper, which returns what
was not spent.

Leases are only taken where they cannot change an answer: for a key without token or
monthly spend limits, and only when a lease of at most 1/BALANCE_SHARE of the balance left
and 1/WINDOW_SHARE of the requests left this minute still covers MIN_CALLS such calls. A
call the lease cannot cover takes the ordinary one-call reservation, which also decides 402
and 429, exactly as without leases.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from credit import connections, renewal
from credit.records import CreditUnavailable, Hold, Payer, Reserved
from credit.stores import redis_store
from credit.windows import RateInfo
from nexeon.loops import running_loop, spawn

logger = logging.getLogger(__name__)

MAX_CALLS = 32  # a lease covers at most this many calls like the one that asked for it
MIN_CALLS = 4  # ... and at least this many, or none is taken
BALANCE_SHARE = 16  # a lease takes at most 1/16 of the balance left
WINDOW_SHARE = 16  # ... and at most 1/16 of the requests left this minute


@dataclass(slots=True, eq=False)
class Lease:
    hold: Hold
    credit: int  # nano-dollars it can still admit
    requests: int  # requests it can still admit (-1: no request limit applies)
    rate: RateInfo  # the limits as the grant saw them
    until: float  # loop time after which it admits nothing
    in_flight: int = 0
    retired: bool = False


def eligible(payer: Payer) -> bool:
    """Token estimates and spend limits are settled per call: such keys take no lease."""
    return not (
        payer.tpm_limit or payer.org_tpm_limit or payer.monthly_spend_limit_nanos is not None
    )


@dataclass(slots=True)
class LeaseBook:
    """This process's leases, one per API key at most."""

    current: dict[int, Lease] = field(default_factory=dict)
    asking: set[int] = field(default_factory=set)  # keys with a grant on its way
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def admit(self, payer: Payer, amount: int) -> tuple[Lease, RateInfo] | None:
        """Take one call of `amount` from the key's lease, if it has room (no await)."""
        lease = self.current.get(payer.key_id)
        if lease is None:
            return None
        if (
            lease.credit < amount
            or lease.requests == 0
            or running_loop().time() >= lease.until
            or not eligible(payer)
        ):
            self.retire(lease)  # this call reserves on its own, which may ask for a new one
            return None
        if not connections.fast().connected:
            # Its settlement could not be written: reserve on its own (and fail closed).
            return None
        lease.credit -= amount
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

    def consider(self, payer: Payer, amount: int, balance_left: int, rate: RateInfo) -> None:
        """After a one-call reservation of `amount`: ask for a lease in the background if
        the key may have one and the balance and the windows have room for it."""
        seconds = settings.GATEWAY_LEASE_SECONDS
        if (
            seconds <= 0
            or payer.key_id in self.current
            or payer.key_id in self.asking
            or not eligible(payer)
        ):
            return
        credit = min(balance_left // BALANCE_SHARE, max(amount, 1) * MAX_CALLS)
        if credit < max(amount, 1) * MIN_CALLS:
            return
        requests = -1
        if rate.request_limit:
            requests = min(MAX_CALLS, rate.requests_remaining // WINDOW_SHARE)
            if requests < MIN_CALLS:
                return
        self.asking.add(payer.key_id)
        self._spawn(self._grant(payer, credit, requests, seconds))

    async def _grant(self, payer: Payer, credit: int, requests: int, seconds: float) -> None:
        try:
            result = await redis_store().reserve(
                payer,
                hold_id=f"lease-{secrets.token_hex(8)}",
                amount=credit,
                tokens=0,
                deadline=time.time() + settings.GATEWAY_HOLD_SECONDS,
                requests=max(requests, 1),
            )
        except CreditUnavailable:
            return
        except Exception:  # a background task: nobody else would hear of it
            logger.exception("lease for key %s not granted", payer.key_id)
            return
        finally:
            self.asking.discard(payer.key_id)
        if not isinstance(result, Reserved):
            return  # over a limit or short of credit meanwhile: calls reserve one by one
        renewal.opened(result.hold)
        loop = running_loop()
        lease = Lease(result.hold, credit, requests, result.rate, loop.time() + seconds)
        self.current[payer.key_id] = lease  # (none there: one grant per key at a time)
        loop.call_later(seconds, self.retire, lease)

    def retire(self, lease: Lease) -> None:
        """Admit nothing more; give it back once its calls have settled."""
        if self.current.get(lease.hold.key_id) is lease:
            del self.current[lease.hold.key_id]
        if not lease.retired:
            lease.retired = True
            if lease.in_flight == 0:
                self._spawn(self.give_back(lease))

    def settled(self, lease: Lease, amount: int, cost: int) -> None:
        """One of its calls has sent its settlement (which charged at most `amount`)."""
        lease.in_flight -= 1
        lease.credit += amount - min(cost, amount)
        if lease.retired and lease.in_flight == 0:
            self._spawn(self.give_back(lease))

    async def give_back(self, lease: Lease) -> None:
        try:
            await redis_store().release(
                lease.hold, unused_requests=max(lease.requests, 0), second=lease.rate.second
            )
        except CreditUnavailable:
            # The hold stays, and the reaper returns what was not spent at its deadline.
            logger.warning("lease %s not given back: Redis unreachable", lease.hold.name)
        except Exception:
            logger.exception("lease %s not given back (the reaper will)", lease.hold.name)
        finally:
            renewal.closed(lease.hold)

    async def give_back_all(self) -> None:
        """At shutdown, after the calls in flight have settled."""
        for lease in list(self.current.values()):
            self.retire(lease)
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=5)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = spawn(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


book = LeaseBook()
