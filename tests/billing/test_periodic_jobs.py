"""Beat's housekeeping: balance reconciliation, low-balance mails, key expiry."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
import redis
from django.conf import settings
from django.core import mail
from django.utils import timezone

from accounts.models import ApiKey, Membership, Role, User
from accounts.services import api_key_create
from accounts.tasks import expire_keys
from billing import holds
from billing.alerts import low_balance_alerts
from billing.balance_cache import balance_key
from billing.models import BalanceAlert, EntryKind
from billing.reconcile import reconcile_all, reconcile_organization
from billing.services import credits_grant, ledger_book
from usage import pipeline
from usage.metric_families import HASH, field


@pytest.fixture
def client_redis(redis_client):
    return redis.Redis.from_url(settings.REDIS_URL)


@pytest.mark.django_db(transaction=True)
def test_a_drifted_balance_is_set_to_the_ledger_when_quiet(organization, client_redis):
    credits_grant(organization=organization, amount_nanos=5000, reference="grant:r")
    client_redis.set(balance_key(organization.pk), 4321)  # drifted (e.g. a lost settle)
    assert reconcile_organization(client_redis, organization.pk) == "corrected"
    assert int(client_redis.get(balance_key(organization.pk))) == 5000
    assert reconcile_organization(client_redis, organization.pk) == "equal"
    assert int(client_redis.hget(HASH, field("nexeon_balance_corrections_total"))) == 1


@pytest.mark.django_db(transaction=True)
def test_an_organization_in_motion_is_left_alone(organization, client_redis):
    credits_grant(organization=organization, amount_nanos=5000, reference="grant:r")
    client_redis.set(balance_key(organization.pk), 4000)
    member = holds.hold_member("req_x", organization.pk, 1000, None)
    client_redis.zadd(holds.HOLDS, {member: 9e9})  # a call in flight holds 1000
    assert reconcile_organization(client_redis, organization.pk) == "busy"
    client_redis.zrem(holds.HOLDS, member)
    client_redis.rpush(pipeline.QUEUE, orjson.dumps({"request_id": "r"}))  # usage not written
    assert reconcile_organization(client_redis, organization.pk) == "busy"
    assert int(client_redis.get(balance_key(organization.pk))) == 4000
    client_redis.delete(pipeline.QUEUE)
    assert reconcile_all(client_redis) == {"corrected": 1}


@pytest.mark.django_db
def test_low_balance_mails_owners_and_admins_once_per_drop(organization, owner, settings):
    settings.LOW_BALANCE_USD = 5
    admin = User.objects.create_user(email="admin@example.com")
    member = User.objects.create_user(email="member@example.com")
    Membership.objects.create(organization=organization, user=admin, role=Role.ADMIN)
    Membership.objects.create(organization=organization, user=member, role=Role.MEMBER)
    credits_grant(organization=organization, amount_nanos=10 * 10**9, reference="grant:a")
    assert low_balance_alerts() == 0
    ledger_book(
        organization=organization, kind=EntryKind.USAGE, amount_nanos=-8 * 10**9, reference="u1"
    )
    assert low_balance_alerts() == 1
    assert len(mail.outbox) == 1
    assert sorted(mail.outbox[0].to) == ["admin@example.com", "owner@example.com"]
    assert "$2.00" in mail.outbox[0].subject
    assert low_balance_alerts() == 0 and len(mail.outbox) == 1  # told once
    credits_grant(organization=organization, amount_nanos=10 * 10**9, reference="grant:b")
    assert low_balance_alerts() == 0 and not BalanceAlert.objects.exists()  # re-armed
    ledger_book(
        organization=organization, kind=EntryKind.USAGE, amount_nanos=-9 * 10**9, reference="u2"
    )
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
