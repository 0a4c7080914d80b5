from billing.models import EntryKind
from billing.services import credits_grant, ledger_book


def test_overview_shows_balance_spend_and_requests_of_the_current_organization(
    client, owner, organization
):
    credits_grant(organization=organization, amount_nanos=5 * 10**9, reference="grant:o")
    for index in range(3):
        ledger_book(
            organization=organization,
            kind=EntryKind.USAGE,
            amount_nanos=-250_000_000,
            reference=f"usage:o{index}",
        )
    client.force_login(owner)
    page = client.get("/").content.decode()
    assert "$4.25" in page  # balance
    assert "$0.75" in page  # spent this month
    assert ">3<" in page  # requests this month
    assert "http://testserver/v1" in page  # snippets carry this host's base URL
