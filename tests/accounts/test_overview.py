"""The dashboard overview: the current organization's balance, this month's spend and
request count from the ledger, and snippets with this host's base URL."""

from billing.services import credits_grant
from tests.ledger_check import book_test_usage


def test_overview_shows_balance_spend_and_requests_of_the_current_organization(
    client, owner, organization
):
    credits_grant(organization=organization, amount_nanos=5 * 10**9, reference="grant:o")
    for index in range(3):
        book_test_usage(organization, f"o{index}", 250_000_000)
    client.force_login(owner)
    page = client.get("/").content.decode()
    assert "$4.25" in page  # balance
    assert "$0.75" in page  # spent this month
    assert ">3<" in page  # requests this month
    assert "http://testserver/v1" in page  # snippets carry this host's base URL
