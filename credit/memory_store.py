"""The money state in this process's memory: the embedded default's store (one process,
no Redis), and the fallback of a gateway process whose Redis is unreachable when the
operator chose GATEWAY_REDIS_FAILURE=local.

The same rules as RedisStore, written in Python (credit/store.py lists them; the tests
run both on the same generated schedules). Its methods take a lock: the event loop
reserves and settles while the usage drain reads and acknowledges from a thread.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from credit import keys
from credit.records import (
    BalanceNotLoaded,
    Charge,
    CreditState,
    Hold,
    InsufficientCredit,
    LedgerFigures,
    Payer,
    QueuedUsage,
    Reserved,
    ReserveOutcome,
    SpendLimitReached,
    SpendNotLoaded,
    UsageBacklog,
)
from credit.store import dead_letter_item, lease_windows, limits_of, token_windows
from credit.windows import LocalWindows

SETTLED_KEPT = 100_000  # settlements remembered (Redis: for keep_seconds())


def in_ms(deadline: float) -> float:
    """A deadline as the Redis store keeps it (to the millisecond), so that both stores
    take a hold for dead at the same instant."""
    return float(f"{deadline:.3f}")


@dataclass(slots=True)
class _Credit:
    available: int
    held: int
    unbooked: int
    credits: int
    credits_seq: int


@dataclass(slots=True)
class _Hold:
    organization_id: int
    amount: int
    spent: int
    spend_key: str
    deadline: float


@dataclass(slots=True)
class _Entry:
    id: str
    organization_id: int
    charge: int
    counted: int
    event: bytes
    consumer: str = ""  # '' until read
    delivered_at: float = 0.0


class _Done:
    """A settlement that completed when it was made."""

    __slots__ = ("_charge",)

    def __init__(self, charge: int) -> None:
        self._charge = charge

    @property
    def written(self) -> bool:
        return True

    async def leave(self) -> bool:
        return True

    async def reply(self) -> int:
        return self._charge


class MemoryStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.credit: dict[int, _Credit] = {}
        self.holds: dict[str, _Hold] = {}
        self.spend: dict[str, int] = {}
        self.windows = LocalWindows()
        self.queue: dict[str, _Entry] = {}  # insertion-ordered, like a stream
        self.dead: list[bytes] = []
        self._ids = itertools.count(1)
        # (hold, call) -> what it was charged: a settlement made again changes nothing.
        self.settled: OrderedDict[tuple[str, str], int] = OrderedDict()

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
        now = time.time() if now is None else now
        limits = limits_of(payer)
        organization_id = payer.organization_id
        with self._lock:
            limited = self.windows.check(limits, tokens, now, requests)
            if limited is not None:
                return limited
            credit = self.credit.get(organization_id)
            if credit is None:
                return BalanceNotLoaded(organization_id)
            if requests > 1 and credit.available < amount:
                return InsufficientCredit(credit.available)
            limit = payer.monthly_spend_limit_nanos
            month = keys.month_of(now)
            spend_key = (
                keys.key_spend(organization_id, payer.key_id, month) if limit is not None else ""
            )
            spent = self.spend.get(spend_key) if limit is not None else 0
            if spent is None:
                return SpendNotLoaded(organization_id, payer.key_id, month)
            rate = self.windows.count(limits, now, requests)
            if amount > 0 and (credit.available <= 0 or credit.available < amount):
                return InsufficientCredit(credit.available)
            if limit is not None:
                if spent + amount > limit:
                    return SpendLimitReached(spent, limit)
                self.spend[spend_key] = spent + amount
            self.windows.count_tokens(limits, rate, tokens)
            name = keys.hold(organization_id, hold_id)
            self.holds[name] = _Hold(organization_id, amount, 0, spend_key, in_ms(deadline))
            credit.held += amount
            credit.available -= amount
            hold = Hold(
                name, organization_id, payer.key_id, amount, spend_key, token_windows(payer)
            )
            return Reserved(hold, credit.available, rate)

    def send_settlement(self, hold: Hold, charge: Charge) -> _Done:
        return _Done(self.settle_blocking(hold, charge))

    def settle_blocking(self, hold: Hold, charge: Charge) -> int:
        with self._lock:
            done = self.settled.get((hold.name, charge.call_id))
            if done is not None:
                return done
            correction = charge.token_correction
            if correction is not None and correction[1]:
                second, tokens = correction
                self.windows.correct(hold.token_windows, second, tokens)
            charged = min(charge.cost, charge.cap)
            credit = self.credit.get(hold.organization_id)
            record = self.holds.get(hold.name)
            if record is not None:
                record.spent += charged
                if credit is not None:
                    credit.held -= charged
                if charge.close:
                    self._give_back(record)
                    del self.holds[hold.name]
            else:
                if credit is not None:
                    charged = max(min(charged, credit.available), 0)
                    credit.available -= charged
                self._add_spend(hold.spend_key, charged)
            counted = 0
            if credit is not None and charged > 0:
                credit.unbooked += charged
                counted = charged
            if charge.event:
                self._queue(hold.organization_id, charged, counted, charge.event)
            self.settled[(hold.name, charge.call_id)] = charged
            if len(self.settled) > SETTLED_KEPT:
                self.settled.popitem(last=False)
            return charged

    def _give_back(self, record: _Hold) -> None:
        """What a hold did not spend, back to its organization (holds.lua's give_back)."""
        rest = record.amount - record.spent
        credit = self.credit.get(record.organization_id)
        if credit is not None:
            credit.available += rest
            credit.held -= rest
        self._add_spend(record.spend_key, -rest)

    def _add_spend(self, spend_key: str, amount: int) -> None:
        if spend_key and spend_key in self.spend:
            self.spend[spend_key] += amount

    def _queue(self, organization_id: int, charge: int, counted: int, event: bytes) -> None:
        entry_id = f"{int(time.time() * 1000)}-{next(self._ids)}"
        self.queue[entry_id] = _Entry(entry_id, organization_id, charge, counted, event)

    async def release(self, hold: Hold, *, unused_requests: int, second: int) -> bool:
        with self._lock:
            record = self.holds.pop(hold.name, None)
            if record is not None:
                self._give_back(record)
            if unused_requests:
                self.windows.correct(lease_windows(hold), second, 0, -unused_requests)
            return record is not None

    async def count_refused(self, payer: Payer, now: float | None = None) -> None:
        with self._lock:
            self.windows.count_refused(limits_of(payer), time.time() if now is None else now)

    async def record(self, organization_id: int, event: bytes) -> None:
        with self._lock:
            self._queue(organization_id, 0, 0, event)

    async def renew(self, holds: Sequence[Hold], deadline: float) -> None:
        with self._lock:
            for hold in holds:
                record = self.holds.get(hold.name)
                if record is not None:
                    record.deadline = in_ms(deadline)

    async def load_balance(self, organization_id: int, figures: LedgerFigures) -> None:
        with self._lock:
            if organization_id not in self.credit:
                self.credit[organization_id] = _Credit(
                    figures.credits - figures.usage, 0, 0, figures.credits, figures.credits_seq
                )

    async def load_spend(self, organization_id: int, key_id: int, month: str, spent: int) -> None:
        with self._lock:
            self.spend.setdefault(keys.key_spend(organization_id, key_id, month), spent)

    # --- workers and the ledger's writer ----------------------------------------------
    def sync_credits(self, organization_id: int, credits: int, seq: int) -> int:
        with self._lock:
            credit = self.credit.get(organization_id)
            if credit is None:
                return -1
            if seq <= credit.credits_seq:
                return 0
            credit.available += credits - credit.credits
            credit.credits, credit.credits_seq = credits, seq
            return 1

    def reap(self, now: float | None = None, batch: int = 1000) -> int:
        now = time.time() if now is None else now
        with self._lock:
            expired = [name for name, hold in self.holds.items() if hold.deadline <= now]
            for name in expired:
                self._give_back(self.holds.pop(name))
            return len(expired)

    def read_usage(self, consumer: str, count: int, claim_idle_ms: int) -> list[QueuedUsage]:
        now = time.time()
        with self._lock:
            mine = [entry for entry in self.queue.values() if entry.consumer == consumer]
            taken: list[_Entry] = mine[:count]
            for entry in self.queue.values():
                if len(taken) >= count:
                    break
                stale = entry.consumer not in ("", consumer) and (
                    (now - entry.delivered_at) * 1000 >= claim_idle_ms
                )
                if stale:
                    taken.append(entry)
            for entry in self.queue.values():
                if len(taken) >= count:
                    break
                if not entry.consumer:
                    taken.append(entry)
            for entry in taken:
                entry.consumer, entry.delivered_at = consumer, now
            return [_queued(entry) for entry in taken]

    def ack_usage(self, entries: Sequence[QueuedUsage]) -> int:
        acked = 0
        with self._lock:
            for queued in entries:
                entry = self.queue.pop(queued.id, None)
                if entry is None:
                    continue
                acked += 1
                credit = self.credit.get(entry.organization_id)
                if credit is not None:
                    credit.unbooked -= entry.counted
            return acked

    def dead_letter(self, entries: Sequence[QueuedUsage]) -> None:
        with self._lock:
            self.dead += [dead_letter_item(entry) for entry in entries]

    def usage_backlog(self) -> UsageBacklog:
        with self._lock:
            pending = sum(1 for entry in self.queue.values() if entry.consumer)
            first = next(iter(self.queue.values()), None)
            oldest = int(first.id.split("-")[0]) / 1000 if first else None
            return UsageBacklog(len(self.queue) - pending, pending, oldest, len(self.dead))

    def credit_state(self, organization_id: int) -> CreditState | None:
        with self._lock:
            credit = self.credit.get(organization_id)
            if credit is None:
                return None
            return CreditState(
                credit.available, credit.held, credit.unbooked, credit.credits, credit.credits_seq
            )

    def organizations(self) -> list[int]:
        with self._lock:
            return sorted(self.credit)

    def charge_ledger_only(self, organization_id: int, expected_total: int, amount: int) -> int:
        with self._lock:
            credit = self.credit.get(organization_id)
            if credit is None:
                return -1
            if credit.available + credit.held + credit.unbooked != expected_total:
                return 0
            credit.available -= amount
            return 1


def _queued(entry: _Entry) -> QueuedUsage:
    try:
        event = orjson.loads(entry.event)
    except orjson.JSONDecodeError:
        event = None
    return QueuedUsage(
        entry.id,
        entry.organization_id,
        entry.charge,
        entry.counted,
        entry.event,
        event if isinstance(event, dict) else None,
    )
