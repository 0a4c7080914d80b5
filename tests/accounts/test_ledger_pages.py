from accounts.services import organization_create
from billing.models import EntryKind
from billing.services import credits_grant, ledger_book


def test_usage_and_billing_pages_show_only_this_organizations_entries(
    client, owner, organization, outsider
):
    credits_grant(
        organization=organization,
        amount_nanos=10**9,
        reference="grant:p",
        description="Welcome credit",
    )
    ledger_book(
        organization=organization,
        kind=EntryKind.USAGE,
        amount_nanos=-35_000,
        reference="usage:p1",
        description="gpt-4o via key prod",
    )
    client.force_login(owner)
    usage = client.get("/usage/").content.decode()
    assert "gpt-4o via key prod" in usage and "Welcome credit" not in usage
    billing = client.get("/billing/").content.decode()
    assert "Welcome credit" in billing and "gpt-4o via key prod" not in billing
    organization_create(name="Other", owner=outsider)
    client.force_login(outsider)
    assert "gpt-4o via key prod" not in client.get("/usage/").content.decode()
    assert "Welcome credit" not in client.get("/billing/").content.decode()
