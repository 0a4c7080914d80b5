"""The money Redis without its data: emptied (a lost disk, a new server) or rolled back to
an older copy (a restore from a backup). The ledger in PostgreSQL is the record: balances
come back from it, usage already booked is never booked twice, and reconciliation charges
what an older copy had not yet charged. What docs/operations.md's runbook promises.

Calls go through the served gateway with the openai SDK; the test Redis is emptied or
restored between them."""

from __future__ import annotations

import time

import pytest
from django.conf import settings

from billing.reconcile import reconcile_organization
from billing.selectors import ledger_figures
from credit.stores import current as credit_store
from tests.apigateway.conftest import Tenant, assert_settled
from tests.ledger_check import available_nanos, held_nanos
from usage import pipeline
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)


def ask(tenant: Tenant) -> None:
    answer = tenant.client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.usage is not None and answer.usage.total_tokens > 0


def nothing_held(tenant: Tenant) -> None:
    """Every hold given back (a lease's too, GATEWAY_LEASE_SECONDS after its last call)."""
    deadline = time.monotonic() + settings.GATEWAY_LEASE_SECONDS + 5
    while held_nanos(tenant.organization.pk):
        assert time.monotonic() < deadline, "credit still held"
        time.sleep(0.05)


def ledger_balance(tenant: Tenant) -> int:
    figures = ledger_figures(tenant.organization.pk)
    return figures.credits - figures.usage


def copy_of(client) -> list[tuple[bytes, bytes, int]]:
    """Every key of the money database as DUMP gives it, with its time to live: what a
    backup of that moment restores."""
    return [(name, client.dump(name), max(client.pttl(name), 0)) for name in client.scan_iter()]


def restore(client, copy: list[tuple[bytes, bytes, int]]) -> None:
    client.flushdb()
    for name, value, ttl in copy:
        client.restore(name, ttl, value, replace=True)


def test_an_emptied_redis_takes_every_balance_again_from_the_ledger(tenant, money_redis):
    ask(tenant)
    ask(tenant)
    assert_settled(tenant.organization.pk)
    before = ledger_balance(tenant)
    assert before < 10 * 10**9  # the calls cost something

    money_redis.flushdb()  # the money state is gone: balances, holds, windows, queue
    time.sleep(settings.GATEWAY_LEASE_SECONDS + 0.1)  # no lease left in the gateway's memory
    assert available_nanos(tenant.organization.pk) is None

    ask(tenant)
    assert_settled(tenant.organization.pk)  # the store agrees with the ledger again
    after = ledger_balance(tenant)
    assert 0 < before - after < before  # the third call was charged, from the old balance
    assert available_nanos(tenant.organization.pk) == after
    assert UsageRecord.objects.filter(organization=tenant.organization).count() == 3


def test_redis_restored_from_an_older_copy_books_nothing_twice_and_charges_what_it_missed(
    tenant, money_redis
):
    organization_id = tenant.organization.pk
    ask(tenant)  # call A: charged in Redis, its usage event queued, not yet booked
    nothing_held(tenant)
    older = copy_of(money_redis)
    older_available = available_nanos(organization_id)

    ask(tenant)  # calls B and C happen after the copy
    ask(tenant)
    assert_settled(organization_id)  # A, B and C booked in the ledger
    booked = ledger_balance(tenant)
    assert booked < older_available

    restore(money_redis, older)  # Redis rolled back: B and C uncharged, A queued again
    assert available_nanos(organization_id) == older_available

    store = credit_store()
    assert reconcile_organization(store, organization_id) == "charged"  # B and C's cost
    assert pipeline.drain() == 0  # A's event again: already booked, written nothing
    assert reconcile_organization(store, organization_id) == "equal"
    assert available_nanos(organization_id) == booked == ledger_balance(tenant)
    assert UsageRecord.objects.filter(organization_id=organization_id).count() == 3

    ask(tenant)  # and calls go on, charged from the reconciled balance
    assert_settled(organization_id)
    assert ledger_balance(tenant) < booked
