"""The ledger's writer (billing.services): grants add to the balance, a reference books once
and never with other terms, usage is a negative entry, balances are read from the running
totals rather than summed, and an entry added in the admin goes through the same writer.
On the test database (and the test Redis where the gateway's balance is loaded)."""

import pytest

from accounts.services import organization_create
from billing import services
from billing.models import LedgerEntry
from billing.selectors import organization_balance_nanos
from tests.ledger_check import book_test_usage


def test_a_grant_adds_to_the_balance(organization):
    services.credits_grant(organization=organization, amount_nanos=5, reference="grant:a")
    services.credits_grant(organization=organization, amount_nanos=7, reference="grant:b")
    assert organization_balance_nanos(organization=organization) == 12


def test_the_same_reference_books_only_once(organization):
    first, created = services.credits_grant(
        organization=organization, amount_nanos=5, reference="grant:once"
    )
    again, created_again = services.credits_grant(
        organization=organization, amount_nanos=5, reference="grant:once"
    )
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert LedgerEntry.objects.filter(reference="grant:once").count() == 1
    assert organization_balance_nanos(organization=organization) == 5


def test_a_reference_reused_with_other_terms_is_an_error(organization, outsider):
    other = organization_create(name="Other", owner=outsider)
    services.credits_grant(organization=organization, amount_nanos=5, reference="grant:x")
    with pytest.raises(ValueError):
        services.credits_grant(organization=other, amount_nanos=5, reference="grant:x")
    assert organization_balance_nanos(organization=other) == 0


def test_spending_is_a_negative_entry_and_grants_must_be_positive(organization):
    services.credits_grant(organization=organization, amount_nanos=10, reference="grant:y")
    book_test_usage(organization, "1", 4)
    assert organization_balance_nanos(organization=organization) == 6
    with pytest.raises(ValueError):
        services.credits_grant(organization=organization, amount_nanos=0, reference="grant:z")


@pytest.mark.django_db(transaction=True)
def test_balances_and_key_spend_are_read_without_summing_the_ledger(
    organization, owner, redis_client
):
    """/v1/credits, /v1/key and reconciliation read one running-totals row: summing the
    organization's whole ledger on every call costs 70 ms at 500k rows."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.services import api_key_create
    from billing import reconcile, selectors
    from credit.stores import current as credit_store

    key = api_key_create(organization=organization, name="k", created_by=owner).api_key
    services.credits_grant(organization=organization, amount_nanos=10**9, reference="grant:big")
    for n in range(50):
        book_test_usage(organization, f"r{n}", 1_000 + n, key_id=key.pk)
    with CaptureQueriesContext(connection) as queries:
        credits, usage = selectors.organization_credit_totals(organization.pk)
        spent = selectors.key_usage_nanos(key.pk)
        month = selectors.key_month_usage_nanos(key.pk)
        reconcile.reconcile_organization(credit_store(), organization.pk)
    assert (credits, usage, spent, month) == (10**9, 51_225, 51_225, 51_225)
    assert not [q for q in queries.captured_queries if "billing_ledgerentry" in q["sql"]]


@pytest.mark.django_db(transaction=True)
def test_an_entry_added_in_the_admin_is_booked_by_the_ledgers_writer(
    admin_client, organization, redis_client
):
    """The admin books through billing.services: the running totals move with the entry,
    and the gateway's loaded balance hears of it at once."""
    import asyncio

    from billing.selectors import ledger_figures
    from credit.stores import current as credit_store
    from tests.ledger_check import available_nanos

    asyncio.run(credit_store().load_balance(organization.pk, ledger_figures(organization.pk)))
    added = admin_client.post(
        "/admin/billing/ledgerentry/add/",
        {
            "organization": organization.pk,
            "kind": "grant",
            "amount_nanos": "2500000000",
            "reference": "grant:support-ticket-42",
            "description": "goodwill",
        },
    )
    assert added.status_code == 302, added.content[:2000]
    assert LedgerEntry.objects.get(reference="grant:support-ticket-42").amount_nanos == 25 * 10**8
    assert organization_balance_nanos(organization=organization) == 25 * 10**8
    assert available_nanos(organization.pk) == 25 * 10**8
    usage = admin_client.post(
        "/admin/billing/ledgerentry/add/",
        {"organization": organization.pk, "kind": "usage", "amount_nanos": "-5", "reference": "u"},
    )
    assert usage.status_code == 200  # the form refuses usage: only the gateway books it
    assert not LedgerEntry.objects.filter(reference="u").exists()
