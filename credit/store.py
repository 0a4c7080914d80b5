"""The one interface to the money state, and the rules both stores share.

`RedisStore` (credit/redis_store.py) keeps the state in Redis for every process of a
deployment; `MemoryStore` (credit/memory_store.py) keeps it in this process for the
embedded default. Both follow the same rules, checked against each other on generated
schedules (tests/credit/test_store_equivalence.py):

* reserve: the key's and organization's windows have room (else RateLimited, nothing
  counted); the balance is loaded (else BalanceNotLoaded) and, with a monthly spend limit,
  the key's spend counter (else SpendNotLoaded); the requests are counted; the balance
  covers the amount (else InsufficientCredit) and the spend limit allows it (else
  SpendLimitReached); then the token estimate is counted and a hold takes the amount.
  A lease (requests > 1) short of credit counts nothing.
* settle: a call is charged at most what it reserved; the charge leaves its hold (or,
  the hold reaped meanwhile, the available balance, never below zero); with close, the
  unspent rest returns to the balance; the usage event is queued with the charge.
* reap: holds past their deadline return what they did not spend.
* available + held + unbooked only moves when credits are synced from the ledger or
  queued usage is acknowledged as booked: so it equals the ledger's balance plus the
  usage booked but not yet acknowledged (billing/reconcile.py checks it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import orjson

from credit import keys
from credit.records import (
    Charge,
    CreditState,
    Hold,
    LedgerFigures,
    Payer,
    QueuedUsage,
    ReserveOutcome,
    UsageBacklog,
)
from credit.windows import Limits


class Settlement(Protocol):
    """A settlement on its way: `leave()` waits until it has left this process (for Redis:
    written to its socket), `reply()` for the store's answer, the amount charged."""

    @property
    def written(self) -> bool: ...

    async def leave(self) -> bool: ...

    async def reply(self) -> int: ...


class CreditStore(Protocol):
    # --- the hot path (the gateway's event loop) ---
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
    ) -> ReserveOutcome: ...

    def send_settlement(self, hold: Hold, charge: Charge) -> Settlement: ...

    async def release(self, hold: Hold, *, unused_requests: int, second: int) -> bool: ...

    async def count_refused(self, payer: Payer, now: float | None = None) -> None:
        """Count a request refused before its limits were checked in its RPM windows."""

    async def record(self, organization_id: int, event: bytes) -> None:
        """Queue the usage event of a call that reserved nothing (charged nothing)."""

    async def renew(self, holds: Sequence[Hold], deadline: float) -> None: ...

    async def load_balance(self, organization_id: int, figures: LedgerFigures) -> None: ...

    async def load_spend(
        self, organization_id: int, key_id: int, month: str, spent: int
    ) -> None: ...

    # --- a process that is stopping (no event loop to wait on) ---
    def settle_blocking(self, hold: Hold, charge: Charge) -> int: ...

    # --- the workers (reaper, usage drain, reconciliation) and the ledger's writer ---
    def sync_credits(self, organization_id: int, credits: int, seq: int) -> int: ...

    def reap(self, now: float | None = None, batch: int = 1000) -> int: ...

    def read_usage(self, consumer: str, count: int, claim_idle_ms: int) -> list[QueuedUsage]: ...

    def ack_usage(self, entries: Sequence[QueuedUsage]) -> int: ...

    def dead_letter(self, entries: Sequence[QueuedUsage]) -> None: ...

    def usage_backlog(self) -> UsageBacklog: ...

    def credit_state(self, organization_id: int) -> CreditState | None: ...

    def organizations(self) -> list[int]: ...

    def charge_ledger_only(self, organization_id: int, expected_total: int, amount: int) -> int: ...


def limits_of(payer: Payer) -> Limits:
    """(window, subject, rpm, tpm) of the limits that apply to this payer's calls."""
    found: Limits = []
    if payer.rpm_limit or payer.tpm_limit:
        window = keys.key_window(payer.organization_id, payer.key_id)
        found.append((window, "key", payer.rpm_limit, payer.tpm_limit))
    if payer.org_rpm_limit or payer.org_tpm_limit:
        found.append(
            (
                keys.organization_window(payer.organization_id),
                "organization",
                payer.org_rpm_limit,
                payer.org_tpm_limit,
            )
        )
    return found


def token_windows(payer: Payer) -> tuple[str, ...]:
    """The windows that count this payer's token estimates (to correct them at settle)."""
    if not (payer.tpm_limit or payer.org_tpm_limit):
        return ()  # (the usual key: no list built on every call)
    return tuple(window for window, _, _, tpm in limits_of(payer) if tpm)


def lease_windows(hold: Hold) -> tuple[str, ...]:
    """The windows a lease counted its requests in: its key's and organization's (leases
    are only taken for keys without token limits, so these are request windows)."""
    organization_id = hold.organization_id
    return keys.key_window(organization_id, hold.key_id), keys.organization_window(organization_id)


def dead_letter_item(entry: QueuedUsage) -> bytes:
    """How a usage entry that can never be booked is kept for the operator."""
    return orjson.dumps(
        {
            "id": entry.id,
            "organization_id": entry.organization_id,
            "charge_nanos": entry.charge,
            "event": entry.raw.decode(errors="replace"),
        }
    )
