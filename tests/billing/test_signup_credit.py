"""SIGNUP_CREDIT_USD: each new user's own organization starts with that credit, booked once
as a ledger grant, whatever retries or concurrent sign-ups do."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client

from accounts.models import Organization, User
from accounts.services import organization_create, personal_organization_get_or_create
from billing import services
from billing.selectors import organization_balance_nanos
from tests.billing.conftest import grants


@pytest.mark.django_db
def test_a_new_personal_organization_gets_the_starting_credit_once(settings):
    settings.SIGNUP_CREDIT_USD = Decimal("1.50")
    user = User.objects.create_user(email="new@example.com", password="x-correct-horse")
    organization = personal_organization_get_or_create(user=user)
    assert personal_organization_get_or_create(user=user) == organization  # found again
    services.signup_credit_grant(organization=organization)  # a retry books nothing
    [grant] = grants(organization)
    assert grant.amount_nanos == 1_500_000_000
    assert grant.reference == f"signup:{organization.pk}"
    assert grant.description == "Starting credit"
    assert organization_balance_nanos(organization=organization) == 1_500_000_000


@pytest.mark.django_db
def test_none_by_default_and_none_for_further_organizations(settings, owner):
    user = owner
    assert settings.SIGNUP_CREDIT_USD == 0  # production's default (DEBUG off)
    assert grants(personal_organization_get_or_create(user=user)) == []
    settings.SIGNUP_CREDIT_USD = Decimal(5)
    # Organizations a user creates from the dashboard are not new customers: no credit
    # (else creating organizations would mint it).
    assert grants(organization_create(name="Side project", owner=user)) == []


@pytest.mark.django_db
def test_signing_up_in_the_dashboard_grants_it(settings):
    settings.SIGNUP_CREDIT_USD = Decimal(2)
    settings.ACCOUNT_EMAIL_VERIFICATION = "none"
    answer = Client().post(
        "/accounts/signup/",
        {
            "email": "ada@example.com",
            "password1": "a-long-passphrase-42",
            "password2": "a-long-passphrase-42",
        },
    )
    assert answer.status_code == 302
    organization = Organization.objects.get(memberships__user__email="ada@example.com")
    assert organization_balance_nanos(organization=organization) == 2_000_000_000


@pytest.mark.django_db(transaction=True)
def test_concurrent_grants_book_it_once(settings):
    settings.SIGNUP_CREDIT_USD = Decimal(1)
    owner = User.objects.create_user(email="race@example.com", password="x-correct-horse")
    organization = organization_create(name="Race", owner=owner, is_personal=True)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def grant() -> None:
        try:
            start.wait()
            services.signup_credit_grant(organization=organization)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=grant) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(grants(organization)) == 1
    assert organization_balance_nanos(organization=organization) == 1_000_000_000
