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
