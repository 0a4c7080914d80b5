"""The gateway's side of the credit core (credit/): a call's reservation and settlement,
the core's refusals as HTTP errors (402, 429, 503), balances and spend counters loaded
from the ledger when the store has none, and usage booked at once where the store is this
process's memory.

Redis unreachable: 503, nothing forwarded, nothing charged (credit fails closed); or, if
the operator chose GATEWAY_REDIS_FAILURE=local, this process checks limits and credit in
its own memory store (loaded from the ledger) and books usage straight into the ledger.
"""

from __future__ import annotations

import logging
import time
from contextlib import suppress
from dataclasses import dataclass

import redis
from django.conf import settings

from apigateway.auth import KeyInfo
from apigateway.dbsync import run_sync
from apigateway.demo import MODEL_ID as DEMO_MODEL
from apigateway.errors import API_ERROR, INSUFFICIENT_QUOTA, GatewayError
from apigateway.ratelimit import refused
from billing.money import format_usd, usd_plain
from billing.selectors import key_month_usage_nanos, ledger_figures
from credit import leases, renewal, stores
from credit.leases import Lease
from credit.memory_store import MemoryStore
from credit.records import (
    BalanceNotLoaded,
    Charge,
    CreditUnavailable,
    Hold,
    InsufficientCredit,
    RateLimited,
    Reserved,
    SpendLimitReached,
    SpendNotLoaded,
)
from credit.resp import RedisReplyError
from credit.store import CreditStore, Settlement
from credit.windows import RateInfo
from usage import pipeline

logger = logging.getLogger(__name__)
CREDIT_REFRESH_SECONDS = 2.0  # a memory store re-reads credits booked by other processes


@dataclass(slots=True)
class Reservation:
    """What one call reserved: `amount` of `hold` (a lease's hold is shared by its calls)."""

    store: CreditStore
    hold: Hold
    amount: int
    rate: RateInfo
    lease: Lease | None = None
    lease_released: bool = False
    in_memory: bool = False  # the store is this process's (its usage is booked at once)

    def token_correction(self, tokens_used: int) -> tuple[int, int] | None:
        if not self.hold.token_windows:
            return None
        return self.rate.second, tokens_used - self.rate.tokens


def insufficient_credits(needed: int | None = None, available: int | None = None) -> GatewayError:
    """402: the balance cannot cover the most this call can cost (its input at worst, and
    its max_tokens, or the model's maximum output when it sets none)."""
    if needed is None or available is None:
        figures = ""
    else:
        figures = (
            f" It may cost up to ${usd_plain(needed)} and the balance available is "
            f"${usd_plain(max(available, 0))}."
        )
    return GatewayError(
        402,
        f"Insufficient credits for this request.{figures} {how_to_add_credits()} Or lower "
        "max_tokens (without it, a call reserves the model's maximum output), and try again.",
        type=INSUFFICIENT_QUOTA,
        code="insufficient_quota",
    )


def how_to_add_credits() -> str:
    """Advice that points at what this server has: Stripe purchases, or its operator; and
    the free demo model when it is on."""
    if settings.STRIPE_SECRET_KEY:
        advice = "Buy credits on the dashboard's Billing page."
    else:
        advice = "Ask this server's operator for credits (the dashboard's Billing page says how)."
    if settings.GATEWAY_DEMO_MODEL:
        advice += f" The free demo model '{DEMO_MODEL}' needs none."
    return advice


def spend_limit_reached(limit_nanos: int) -> GatewayError:
    return GatewayError(
        402,
        f"This API key has reached its monthly spend limit of {format_usd(limit_nanos)} (or "
        "this request could exceed it). Raise the key's limit on the dashboard's API keys "
        "page, use another key, or lower max_tokens.",
        type=INSUFFICIENT_QUOTA,
        code="spend_limit_reached",
    )


class CreditServiceUnavailable(GatewayError):
    pass


# Whatever Redis answers or fails with, on any path a call takes (the hot path's client,
# redis-py's): never the caller's fault nor a bug of the call, so a 503 to retry.
REDIS_ERRORS = (CreditUnavailable, RedisReplyError, redis.RedisError)


def credit_service_unavailable() -> GatewayError:
    """Fail closed: without Redis nobody's credit can be checked, so nothing is forwarded."""
    return CreditServiceUnavailable(
        503,
        "The credit service is temporarily unavailable; nothing was charged. Retry shortly.",
        type=API_ERROR,
        headers={"retry-after": "1"},
    )


async def reserve(*, key: KeyInfo, amount_nanos: int, request_id: str, tokens: int) -> Reservation:
    """Limits and credit in one step (in the store this process uses)."""
    store = stores.current()
    in_memory = isinstance(store, MemoryStore)
    if not in_memory:
        admitted = leases.book.admit(key, amount_nanos)
        if admitted is not None:
            lease, rate = admitted
            return Reservation(store, lease.hold, amount_nanos, rate, lease)
    try:
        reserved = await _reserve_in(store, key, amount_nanos, request_id, tokens)
    except CreditUnavailable:
        if settings.GATEWAY_REDIS_FAILURE != "local":
            raise credit_service_unavailable() from None
        logger.warning(
            "%s: Redis unreachable; limits and credit checked in this process", request_id
        )
        store, in_memory = stores.fallback(), True
        reserved = await _reserve_in(store, key, amount_nanos, request_id, tokens)
    if not in_memory:
        renewal.opened(reserved.hold)
        leases.book.consider(key, amount_nanos, reserved.available, reserved.rate)
    return Reservation(store, reserved.hold, amount_nanos, reserved.rate, in_memory=in_memory)


async def _reserve_in(
    store: CreditStore, key: KeyInfo, amount: int, request_id: str, tokens: int
) -> Reserved:
    if isinstance(store, MemoryStore):
        await _refresh_credits(store, key.organization_id)
    for _ in range(3):
        outcome = await store.reserve(
            key, hold_id=request_id, amount=amount, tokens=tokens, deadline=renewal.deadline()
        )
        if isinstance(outcome, Reserved):
            return outcome
        if isinstance(outcome, RateLimited):
            raise refused(outcome)
        if isinstance(outcome, InsufficientCredit):
            raise insufficient_credits(amount, outcome.available)
        if isinstance(outcome, SpendLimitReached):
            raise spend_limit_reached(outcome.limit)
        if isinstance(outcome, BalanceNotLoaded):
            figures = await run_sync(ledger_figures, outcome.organization_id)
            await store.load_balance(outcome.organization_id, figures)
        elif isinstance(outcome, SpendNotLoaded):
            spent = await run_sync(key_month_usage_nanos, outcome.key_id, outcome.month)
            await store.load_spend(outcome.organization_id, outcome.key_id, outcome.month, spent)
    raise insufficient_credits()


_refreshed: dict[tuple[int, int], float] = {}


async def _refresh_credits(store: MemoryStore, organization_id: int) -> None:
    """A memory store hears of credits booked in this process at once (billing.services);
    those booked by another process (a management command, the fallback's neighbours) it
    reads from the ledger every CREDIT_REFRESH_SECONDS."""
    now = time.monotonic()
    key = (id(store), organization_id)
    if now - _refreshed.get(key, float("-inf")) < CREDIT_REFRESH_SECONDS:
        return
    _refreshed[key] = now
    figures = await run_sync(ledger_figures, organization_id)
    store.sync_credits(organization_id, figures.credits, figures.credits_seq)


def charge_of(
    reservation: Reservation, call_id: str, cost_nanos: int, event: bytes, tokens_used: int
) -> Charge:
    """The call's settlement: against its own hold (given back at once), or as one call of
    its lease (the lease is given back when its calls are done)."""
    leased = reservation.lease is not None
    return Charge(
        call_id=call_id,
        cap=reservation.amount,
        cost=cost_nanos,
        event=event,
        close=not leased,
        token_correction=None if leased else reservation.token_correction(tokens_used),
    )


def send_settlement(
    reservation: Reservation, *, call_id: str, cost_nanos: int, event: bytes, tokens_used: int
) -> Settlement:
    """Charge the call and queue its usage event; written to Redis before this returns
    when connected (see RedisStore.send_settlement)."""
    charge = charge_of(reservation, call_id, cost_nanos, event, tokens_used)
    settlement = reservation.store.send_settlement(reservation.hold, charge)
    _release_lease_share(reservation, cost_nanos)
    return settlement


def _release_lease_share(reservation: Reservation, cost_nanos: int) -> None:
    """A leased call's share goes back to its lease once (a settlement may be sent again)."""
    if reservation.lease is not None and not reservation.lease_released:
        reservation.lease_released = True
        leases.book.settled(reservation.lease, reservation.amount, cost_nanos)


def settled(reservation: Reservation) -> None:
    """After the store acknowledged the settlement: the hold needs no more renewing (the
    caller books a memory store's usage at once: book_memory_usage)."""
    if reservation.lease is None:
        renewal.closed(reservation.hold)


async def book_memory_usage(store: CreditStore) -> None:
    """A memory store's usage goes to the ledger now: nobody else will drain it."""
    try:
        await run_sync(pipeline.drain, store)
    except Exception:
        logger.exception("usage in this process's memory not booked yet; retried next call")


def settle_blocking(
    reservation: Reservation, *, call_id: str, cost_nanos: int, event: bytes, tokens_used: int
) -> None:
    """The same settlement as a blocking call, for a process whose loop is stopping."""
    _release_lease_share(reservation, cost_nanos)
    charge = charge_of(reservation, call_id, cost_nanos, event, tokens_used)
    reservation.store.settle_blocking(reservation.hold, charge)
    if reservation.in_memory:
        logger.warning("process stopping: usage of a call cut short not booked (embedded mode)")


async def count_refused_request(key: KeyInfo | None) -> None:
    """A call refused before the limits were checked (400, 404, 408, 413, 503) still counts
    against the key's and organization's requests per minute: every authenticated request
    does. Best effort: Redis unreachable leaves it uncounted."""
    if key is None or not (key.rpm_limit or key.org_rpm_limit):
        return
    with suppress(*REDIS_ERRORS):
        await stores.current().count_refused(key)


async def record_unsettled(organization_id: int, event: bytes) -> None:
    """A call refused before it reserved credit: its event is queued on its own (in a
    memory store, booked at once). Redis unreachable: straight into the database."""
    store = stores.current()
    try:
        await store.record(organization_id, event)
    except REDIS_ERRORS:
        store = stores.fallback()
        await store.record(organization_id, event)
    if isinstance(store, MemoryStore):
        await book_memory_usage(store)


async def book_directly(
    reservation: Reservation, call_id: str, cost_nanos: int, event: bytes
) -> bool:
    """GATEWAY_REDIS_FAILURE=local, a Redis reservation that cannot be settled: book the
    usage into the ledger now, through this process's memory store (its request id makes a
    later Redis settlement's booking a no-op) and leave the hold to the reaper. False when
    the database cannot take it."""
    if settings.GATEWAY_REDIS_FAILURE != "local" or reservation.in_memory or not event:
        return False
    store = stores.fallback()
    hold = reservation.hold
    orphan = Hold(f"orphan:{call_id}", hold.organization_id, hold.key_id, 0)
    store.settle_blocking(orphan, Charge(call_id, reservation.amount, cost_nanos, event))
    try:
        await run_sync(pipeline.drain, store)
    except Exception:
        logger.exception("usage of %s could not be booked directly", call_id)
        return False
    return True
