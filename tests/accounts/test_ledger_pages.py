"""The usage and billing pages each list their own entries (usage records on one, ledger
credits on the other) and only the current organization's, through Django's test client
on the test database."""

from accounts.services import organization_create
from billing.services import credits_grant
from tests.ledger_check import book_test_usage
from usage.models import UsageRecord


def test_usage_and_billing_pages_show_only_this_organizations_entries(
    client, owner, organization, outsider
):
    credits_grant(
        organization=organization,
        amount_nanos=10**9,
        reference="grant:p",
        description="Welcome credit",
    )
    book_test_usage(organization, "p1", 35_000, "gpt-4o via key prod")
    UsageRecord.objects.create(
        request_id="req_p1",
        organization=organization,
        endpoint="chat",
        model="gpt-4o",
        status=200,
        cost_nanos=35_000,
        created_at=organization.created_at,
    )
    client.force_login(owner)
    # The usage page lists calls (usage records), not ledger entries.
    usage = client.get("/usage/").content.decode()
    assert 'data-request-id="req_p1"' in usage and "Welcome credit" not in usage
    billing = client.get("/billing/").content.decode()
    assert "Welcome credit" in billing and "gpt-4o via key prod" not in billing
    organization_create(name="Other", owner=outsider)
    client.force_login(outsider)
    assert "req_p1" not in client.get("/usage/").content.decode()
    assert "Welcome credit" not in client.get("/billing/").content.decode()
