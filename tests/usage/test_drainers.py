"""Several drainers at once, a stalled database, a drainer that dies: every queued call is
booked exactly once, its charge leaves the store's `unbooked` once, and the metrics count
only the rows written."""

from __future__ import annotations

import threading
import time

import orjson
import psycopg
import pytest
from django.db import connection, connections

from billing.models import LedgerEntry
from billing.selectors import ledger_figures
from billing.services import credits_grant
from credit import keys
from credit.records import Charge
from credit.stores import current as credit_store
from tests.credit.test_rules import Payer, run
from usage import pipeline
from usage.models import UsageRecord


def settle_calls(organization, count: int, cost: int = 1_000) -> list[str]:
    """`count` calls reserved and settled through the store (their usage queued)."""
    store = credit_store()
    payer = Payer(key_id=0, organization_id=organization.pk)
    request_ids = [f"req_{n}" for n in range(count)]

    figures = ledger_figures(organization.pk)

    async def reserve_all() -> list:
        await store.load_balance(organization.pk, figures)
        deadline = time.time() + 60
        return [
            await store.reserve(payer, hold_id=rid, amount=2_000, tokens=0, deadline=deadline)
            for rid in request_ids
        ]

    for request_id, reserved in zip(request_ids, run(reserve_all()), strict=True):
        event = orjson.dumps(
            {
                "request_id": request_id,
                "organization_id": organization.pk,
                "model": "gpt-4o",
                "status": 200,
                "at": time.time(),
            }
        )
        store.settle_blocking(reserved.hold, Charge(request_id, 2_000, cost, event))
    return request_ids


def stall_the_database(seconds: float) -> threading.Thread:
    """Another session locks the usage table: every drainer's insert waits (a stalled
    database, as seen from the drain)."""
    database = connection.settings_dict
    locked = threading.Event()

    def hold() -> None:
        with psycopg.connect(
            host=database["HOST"] or "127.0.0.1",
            port=database["PORT"] or 5432,
            user=database["USER"],
            dbname=database["NAME"],
        ) as db:
            db.execute("LOCK TABLE usage_usagerecord IN ACCESS EXCLUSIVE MODE")
            locked.set()
            time.sleep(seconds)

    thread = threading.Thread(target=hold)
    thread.start()
    locked.wait(10)
    return thread


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("money_redis", ["redis", "cluster"], indirect=True)
def test_two_drainers_and_a_stalled_database_book_every_call_once(
    organization, money_redis, settings
):
    """A drain lock (SET NX EX, deleted unconditionally, LTRIM by count) lets two drainers
    read the same batch when the database stalls longer than the lock, and each trims it:
    with a 1 s lock and a 2.5 s database, 1,000 events are lost. A stuck batch is claimed
    by the other drainer instead, and booked once."""
    settings.USAGE_CLAIM_SECONDS = 1  # the other drainer takes over a stuck batch after 1 s
    credits_grant(organization=organization, amount_nanos=10**10, reference="grant:d")
    request_ids = settle_calls(organization, 3_100)
    stalled = stall_the_database(2.5)
    written: list[int] = []

    def drainer(name: str) -> None:
        try:
            written.append(pipeline.drain(consumer=name))
        finally:
            connections.close_all()  # (this thread's database connection)

    drainers = [threading.Thread(target=drainer, args=(name,)) for name in ("a", "b")]
    for drainer in drainers:
        drainer.start()
        time.sleep(1.2)  # b starts once a's first batch is stuck and claimable
    for drainer in [*drainers, stalled]:
        drainer.join(60)
    pipeline.drain(consumer="drainer-c")  # whatever is left
    assert UsageRecord.objects.count() == len(request_ids) == sum(written)
    assert LedgerEntry.objects.filter(kind="usage").count() == len(request_ids)
    assert ledger_figures(organization.pk).usage == 1_000 * len(request_ids)
    state = credit_store().credit_state(organization.pk)
    assert (state.held, state.unbooked) == (0, 0)
    assert state.available == 10**10 - 1_000 * len(request_ids)
    backlog = credit_store().usage_backlog()
    assert (backlog.waiting, backlog.pending) == (0, 0)
    assert requests_counted(money_redis) == len(request_ids)  # rows written, each once


def requests_counted(redis_client) -> int:
    """nexeon_requests_total over all its label sets, as the metrics hash holds it."""
    total = 0
    for name, value in redis_client.hgetall(keys.METRICS).items():
        if orjson.loads(name)[0] == "nexeon_requests_total":
            total += int(value)
    return total
