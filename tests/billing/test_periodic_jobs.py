"""Beat's housekeeping: reconciliation of the credit store with the ledger, low-balance
mails, key expiry."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

import orjson
import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from accounts.models import ApiKey, Membership, Role, User
from accounts.services import api_key_create
from accounts.tasks import expire_keys
from billing import reconcile, services
from billing.alerts import low_balance_alerts
from billing.models import BalanceAlert
from billing.reconcile import reconcile_all, reconcile_organization
from billing.selectors import ledger_figures
from billing.services import UsageCharge, book_usage, credits_grant
from credit import connections, keys
from credit.records import Charge
from credit.stores import current as credit_store
from nexeon import counters
from usage import pipeline

NOW = timezone.now


def charge(organization, request_id: str, amount: int) -> None:
    """Usage booked in the ledger alone (as GATEWAY_REDIS_FAILURE=local books it)."""
    with transaction.atomic():
        book_usage([UsageCharge(request_id, organization.pk, None, amount, NOW())])


class Payer:
    def __init__(self, organization) -> None:
        self.key_id, self.organization_id = 1, organization.pk
        self.rpm_limit = self.tpm_limit = self.org_rpm_limit = self.org_tpm_limit = None
        self.monthly_spend_limit_nanos = None


def loaded(organization):
    store = credit_store()
    asyncio.run(store.load_balance(organization.pk, ledger_figures(organization.pk)))
    return store


def call(store, organization, request_id: str, amount: int, cost: int, *, settle: bool = True):
    """A call through the store: reserved, and (settle) charged with its usage queued."""
    reserved = asyncio.run(
        store.reserve(
            Payer(organization),
            hold_id=request_id,
            amount=amount,
            tokens=0,
            deadline=time.time() + 60,
        )
    )
    if settle:
        event = orjson.dumps({"request_id": request_id, "organization_id": organization.pk})
        store.settle_blocking(reserved.hold, Charge(request_id, amount, cost, event))
    return reserved


def discrepancies(kind: str) -> int:
    name = counters.field("nexeon_balance_discrepancies_total", kind=kind)
    return int(connections.sync().hget(keys.METRICS, name) or 0)


@pytest.mark.django_db(transaction=True)
def test_lost_usage_is_reported_and_never_refunded(organization, redis_client, caplog):
    credits_grant(organization=organization, amount_nanos=5000, reference="grant:r")
    store = loaded(organization)
    call(store, organization, "req_lost", 1000, 300)
    # The entry disappears without being booked (as a lock race between drainers could do).
    store.ack_usage(store.read_usage("thief", 10, 60_000))
    assert store.credit_state(organization.pk).available == 4700
    with caplog.at_level(logging.ERROR):
        assert reconcile_organization(store, organization.pk) == "usage missing"
    assert "300 nano-dollars of usage the ledger never booked" in caplog.text
    assert store.credit_state(organization.pk).available == 4700  # not refunded
    assert discrepancies("usage_not_booked") == 1


@pytest.mark.django_db(transaction=True)
def test_usage_booked_without_the_store_is_charged_to_it(organization, redis_client):
    credits_grant(organization=organization, amount_nanos=5000, reference="grant:r")
    store = loaded(organization)
    charge(organization, "req_direct", 1200)  # booked while Redis was unreachable
    assert reconcile_organization(store, organization.pk) == "charged"
    assert store.credit_state(organization.pk).available == 3800
    assert reconcile_organization(store, organization.pk) == "equal"
    assert discrepancies("usage_not_charged") == 1


@pytest.mark.django_db(transaction=True)
def test_credits_the_store_missed_are_synced(organization, redis_client, monkeypatch):
    credits_grant(organization=organization, amount_nanos=5000, reference="grant:r")
    store = loaded(organization)
    monkeypatch.setattr(services, "sync_credits", lambda organization_id: None)  # Redis away
    credits_grant(organization=organization, amount_nanos=700, reference="grant:s")
    assert store.credit_state(organization.pk).available == 5000
    assert reconcile_organization(store, organization.pk) == "credits synced"
    assert store.credit_state(organization.pk).available == 5700
    assert reconcile_organization(store, organization.pk) == "equal"


@pytest.mark.django_db(transaction=True)
def test_calls_in_flight_and_queued_usage_are_not_discrepancies(
    organization, redis_client, settings
):
    credits_grant(organization=organization, amount_nanos=5000, reference="grant:r")
    store = loaded(organization)
    call(store, organization, "req_flying", 1000, 0, settle=False)  # held
    call(store, organization, "req_queued", 1000, 400)  # charged, its usage not yet booked
    assert reconcile_all(store) == {"equal": 1}
    # Booked but not yet acknowledged (a drainer killed between its commit and its ack).
    entries = store.read_usage("killed", 10, 60_000)
    pipeline.book(pipeline._triage(entries)[0])
    assert reconcile_all(store) == {"equal": 1}
    settings.USAGE_CLAIM_SECONDS = 0.001  # the killed drainer's batch is stale
    assert pipeline.drain() == 0  # claimed by another drainer: nothing written twice
    state = store.credit_state(organization.pk)
    assert (state.held, state.unbooked, state.available) == (1000, 0, 3600)
    assert ledger_figures(organization.pk).usage == 400
    assert reconcile_all(store) == {"equal": 1}


@pytest.mark.django_db(transaction=True)
def test_a_ledger_moving_while_it_is_read_is_looked_at_again_later(
    organization, redis_client, monkeypatch
):
    credits_grant(organization=organization, amount_nanos=5000, reference="grant:r")
    store = loaded(organization)
    figures = ledger_figures(organization.pk)
    moved = type(figures)(figures.credits, figures.credits_seq, figures.usage + 10)
    readings = iter([figures, moved])
    monkeypatch.setattr(reconcile, "ledger_figures", lambda organization_id: next(readings))
    assert reconcile_organization(store, organization.pk) == "busy"
    assert store.credit_state(organization.pk).available == 5000


@pytest.mark.django_db
def test_low_balance_mails_owners_and_admins_once_per_drop(organization, owner, settings):
    settings.LOW_BALANCE_USD = 5
    admin = User.objects.create_user(email="admin@example.com")
    member = User.objects.create_user(email="member@example.com")
    Membership.objects.create(organization=organization, user=admin, role=Role.ADMIN)
    Membership.objects.create(organization=organization, user=member, role=Role.MEMBER)
    credits_grant(organization=organization, amount_nanos=10 * 10**9, reference="grant:a")
    assert low_balance_alerts() == 0
    charge(organization, "u1", 8 * 10**9)
    assert low_balance_alerts() == 1
    assert len(mail.outbox) == 1
    assert sorted(mail.outbox[0].to) == ["admin@example.com", "owner@example.com"]
    assert "$2.00" in mail.outbox[0].subject
    assert low_balance_alerts() == 0 and len(mail.outbox) == 1  # told once
    credits_grant(organization=organization, amount_nanos=10 * 10**9, reference="grant:b")
    assert low_balance_alerts() == 0 and not BalanceAlert.objects.exists()  # re-armed
    charge(organization, "u2", 9 * 10**9)
    assert low_balance_alerts() == 1 and len(mail.outbox) == 2


@pytest.mark.django_db
def test_expired_keys_are_revoked_and_others_are_not(organization, owner):
    expired = api_key_create(organization=organization, name="old", created_by=owner).api_key
    current = api_key_create(organization=organization, name="new", created_by=owner).api_key
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    ApiKey.objects.filter(pk=current.pk).update(expires_at=timezone.now() + timedelta(days=1))
    assert expire_keys() == 1
    assert ApiKey.objects.get(pk=expired.pk).revoked_at is not None
    assert ApiKey.objects.get(pk=current.pk).revoked_at is None
    assert expire_keys() == 0
