"""What the credit core takes and gives: typed records, no behaviour.

The gateway maps the refusals to HTTP (402, 429); `CreditUnavailable` is the store's own
failure (Redis unreachable), which the gateway answers with 503. The records made on every
call (Hold, Reserved, Charge) are not frozen: a frozen dataclass costs four times as much
to make (0.65 against 0.16 µs here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from credit.windows import RateInfo, RateLimited

__all__ = [
    "BalanceNotLoaded",
    "Charge",
    "CreditState",
    "CreditUnavailable",
    "Hold",
    "InsufficientCredit",
    "LedgerFigures",
    "Payer",
    "QueuedUsage",
    "RateInfo",
    "RateLimited",
    "Reserved",
    "SpendLimitReached",
    "SpendNotLoaded",
    "UsageBacklog",
]


class CreditUnavailable(ConnectionError):
    """The store cannot be reached or did not answer in time: nothing was reserved."""


class Payer(Protocol):
    """Who a call is charged to and limited as: an API key of an organization (the
    gateway's KeyInfo has these attributes)."""

    @property
    def key_id(self) -> int: ...
    @property
    def organization_id(self) -> int: ...
    @property
    def rpm_limit(self) -> int | None: ...
    @property
    def tpm_limit(self) -> int | None: ...
    @property
    def org_rpm_limit(self) -> int | None: ...
    @property
    def org_tpm_limit(self) -> int | None: ...
    @property
    def monthly_spend_limit_nanos(self) -> int | None: ...


@dataclass(slots=True)
class Hold:
    """Credit set aside for a call, or for a lease of several calls, until it settles.

    `name` identifies it in its store (in Redis, the key of its record); the record there
    holds the rest (what was spent, the keys it counts in), so a reaper needs nothing else.
    """

    name: str
    organization_id: int
    key_id: int
    amount: int  # nano-dollars reserved
    spend_key: str = ""  # the key's monthly spend counter it is counted in ('' for none)
    token_windows: tuple[str, ...] = ()  # the windows that hold its token estimate


@dataclass(slots=True)
class Charge:
    """One call's settlement against its hold."""

    call_id: str  # a settlement sent again with the same id charges nothing more
    cap: int  # what the call reserved: it is never charged more
    cost: int  # what it cost, priced from the provider's counts
    event: bytes  # its usage event (JSON), queued with what it was charged; b"" for none
    close: bool = True  # give back what the hold did not spend (False: a lease's call)
    token_correction: tuple[int, int] | None = None  # (second counted in, tokens to add)


@dataclass(slots=True)
class Reserved:
    hold: Hold
    available: int  # the organization's balance left after it
    rate: RateInfo


@dataclass(frozen=True, slots=True)
class InsufficientCredit:
    available: int


@dataclass(frozen=True, slots=True)
class SpendLimitReached:
    spent: int
    limit: int


@dataclass(frozen=True, slots=True)
class BalanceNotLoaded:
    """The store has no balance for the organization yet: load it from the ledger."""

    organization_id: int


@dataclass(frozen=True, slots=True)
class SpendNotLoaded:
    """The store has no spend counter for the key this month: load it from the ledger."""

    organization_id: int
    key_id: int
    month: str


ReserveOutcome = (
    Reserved
    | RateLimited
    | InsufficientCredit
    | SpendLimitReached
    | BalanceNotLoaded
    | SpendNotLoaded
)


@dataclass(frozen=True, slots=True)
class LedgerFigures:
    """An organization's totals as the ledger has booked them."""

    credits: int  # purchases, grants, refunds, adjustments: nano-dollars
    credits_seq: int  # bumped by every credit entry: a newer figure wins
    usage: int  # nano-dollars of usage booked


@dataclass(frozen=True, slots=True)
class CreditState:
    """An organization's credit in the store. available + held + unbooked is what the
    ledger will say once the queued usage is booked."""

    available: int  # what calls may still reserve
    held: int  # reserved by calls in flight and not yet spent
    unbooked: int  # charged, with its usage event queued but not yet booked
    credits: int
    credits_seq: int

    @property
    def total(self) -> int:
        return self.available + self.held + self.unbooked


@dataclass(frozen=True, slots=True)
class QueuedUsage:
    """One call's usage, queued by its settlement, as the drain reads it."""

    id: str
    organization_id: int | None
    charge: int  # nano-dollars charged (at most what the call reserved)
    counted: int  # the part of it counted as unbooked (0 for events of older versions)
    raw: bytes  # the event as the gateway wrote it (JSON)
    event: dict[str, Any] | None  # parsed, or None if it cannot be
    shard: int = 0  # the credit shard whose queue holds it (credit.keys)


@dataclass(frozen=True, slots=True)
class UsageBacklog:
    waiting: int  # queued, not yet read by a drainer
    pending: int  # read, not yet acknowledged
    oldest_at: float | None  # unix time of the oldest queued entry
    dead: int  # entries that could not be booked
