"""Without Stripe the operator grants credits: from the admin (an action on organizations)
and with `manage.py grant_credits` (`make credits`), each a ledger grant naming who gave it."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import User
from accounts.services import personal_organization_get_or_create
from billing.selectors import organization_balance_nanos
from tests.billing.conftest import grants

CHANGELIST = "/admin/accounts/organization/"


@pytest.fixture
def staff(db) -> Client:
    admin = User.objects.create_superuser(email="ops@example.com", password="x-correct-horse")
    client = Client()
    client.force_login(admin)
    return client


def test_the_admin_action_asks_the_amount_then_books_a_grant_naming_the_admin(staff, organization):
    chosen = {"action": "grant_credits", "_selected_action": [organization.pk]}
    form = staff.post(CHANGELIST, chosen)
    assert form.status_code == 200
    html = form.content.decode()
    assert "Grant credits" in html and organization.name in html and 'name="amount"' in html

    done = staff.post(CHANGELIST, {**chosen, "apply": "1", "amount": "12.50", "note": "pilot"})
    assert done.status_code == 302
    [grant] = grants(organization)
    assert grant.amount_nanos == 12_500_000_000
    assert grant.description == "Granted by ops@example.com in the admin: pilot"
    assert grant.reference.startswith("grant:admin:")
    assert organization_balance_nanos(organization=organization) == 12_500_000_000
    followed = staff.get(done["Location"]).content.decode()
    assert "Granted $12.50 to 1 organization" in followed


@pytest.mark.parametrize("amount", ["0", "-5", "abc", "0.001", "100001"])
def test_a_bad_amount_is_a_form_error_and_books_nothing(staff, organization, amount):
    chosen = {"action": "grant_credits", "_selected_action": [organization.pk]}
    answer = staff.post(CHANGELIST, {**chosen, "apply": "1", "amount": amount})
    assert answer.status_code == 200
    assert 'class="errorlist' in answer.content.decode()
    assert grants(organization) == []


def test_the_command_grants_to_the_users_own_organization(db, capsys):
    user = User.objects.create_user(email="dev@example.com", password="x-correct-horse")
    organization = personal_organization_get_or_create(user=user)
    call_command("grant_credits", "dev@example.com", "--usd", "10")
    [grant] = grants(organization)
    assert grant.amount_nanos == 10 * 10**9
    assert grant.description.startswith("Granted with manage.py grant_credits")
    assert "balance $10.00" in capsys.readouterr().out


def test_the_command_with_a_reference_grants_once(db):
    user = User.objects.create_user(email="dev@example.com", password="x-correct-horse")
    organization = personal_organization_get_or_create(user=user)
    for _ in range(2):
        call_command("grant_credits", "dev@example.com", "--usd", "3", "--reference", "pilot-1")
    assert organization_balance_nanos(organization=organization) == 3 * 10**9


@pytest.mark.parametrize(
    ("email", "usd", "message"),
    [
        ("nobody@example.com", "10", "No user nobody@example.com"),
        ("dev@example.com", "0", "more than 0"),
        ("dev@example.com", "ten", "an amount such as 10"),
    ],
)
def test_the_command_explains_what_is_wrong(db, email, usd, message):
    User.objects.create_user(email="dev@example.com", password="x-correct-horse")
    with pytest.raises(CommandError, match=message):
        call_command("grant_credits", email, "--usd", usd)
