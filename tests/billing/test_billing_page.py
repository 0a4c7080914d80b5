"""The billing page: buy credits through the real SDK and the fake Stripe; roles; bounds."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from accounts.services import organization_create
from billing.models import Purchase, PurchaseStatus
from billing.services import credits_grant
from tests.fakes.stripe import decode_form
from tests.support import manage_env, run_manage


def created_sessions(fake) -> list[dict]:
    return [
        decode_form(parse_qsl(r.body.decode()))
        for r in fake.requests
        if r.method == "POST" and r.path == "/v1/checkout/sessions"
    ]


def test_owner_sees_presets_custom_amount_and_balance(client, owner, organization, fake_stripe):
    credits_grant(organization=organization, amount_nanos=7 * 10**9, reference="grant:page")
    client.force_login(owner)
    page = client.get("/billing/").content.decode()
    assert 'data-testid="balance">$7.00<' in page
    for amount in (10, 25, 50, 100):
        assert f'data-testid="preset-{amount}"' in page
    assert 'name="custom_amount"' in page and "$5 to $1000" in page
    assert "csrfmiddlewaretoken" in page


def test_a_preset_starts_a_checkout_session_and_redirects_to_it(
    client, owner, organization, fake_stripe
):
    client.force_login(owner)
    response = client.post("/billing/", {"preset": "25"})
    purchase = Purchase.objects.get()
    assert response.status_code == 303
    assert (
        response["Location"]
        == f"{fake_stripe.base_url}/checkout/{purchase.stripe_checkout_session_id}"
    )
    (sent,) = created_sessions(fake_stripe)
    assert sent["mode"] == "payment"
    assert sent["line_items"] == [
        {
            "quantity": "1",
            "price_data": {
                "currency": "usd",
                "unit_amount": "2500",
                "product_data": {"name": "NeXeonAI credits"},
            },
        }
    ]
    assert sent["client_reference_id"] == str(organization.pk)
    assert sent["customer_email"] == owner.email
    assert sent["metadata"] == {
        "organization_id": str(organization.pk),
        "purchase_id": str(purchase.pk),
    }
    assert (
        sent["success_url"] == "http://testserver/billing/success/?session_id={CHECKOUT_SESSION_ID}"
    )
    assert sent["cancel_url"] == "http://testserver/billing/cancelled/"
    assert (purchase.amount_cents, purchase.status, purchase.created_by) == (
        2500,
        PurchaseStatus.PENDING,
        owner,
    )
    assert (
        fake_stripe.requests[-1]
        .headers["idempotency-key"]
        .startswith(f"nexeon-purchase-{purchase.pk}-")
    )


def test_a_custom_amount_in_dollars_and_cents(client, owner, fake_stripe):
    client.force_login(owner)
    assert client.post("/billing/", {"custom_amount": "12.34"}).status_code == 303
    assert Purchase.objects.get().amount_cents == 1234
    assert created_sessions(fake_stripe)[0]["line_items"][0]["price_data"]["unit_amount"] == "1234"


@pytest.mark.parametrize("amount", ["4.99", "1000.01", "-5", "0", "12.345", "abc", ""])
def test_amounts_outside_the_range_are_a_form_error(client, owner, fake_stripe, amount):
    client.force_login(owner)
    response = client.post("/billing/", {"custom_amount": amount})
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    if amount in ("4.99", "1000.01", "-5", "0"):
        assert "A purchase is between $5 and $1000." in response.content.decode()
    assert not Purchase.objects.exists() and not fake_stripe.requests


def test_the_bounds_come_from_settings(client, owner, fake_stripe, settings):
    settings.BILLING_MIN_PURCHASE_USD, settings.BILLING_MAX_PURCHASE_USD = 20, 60
    client.force_login(owner)
    page = client.get("/billing/").content.decode()
    assert 'data-testid="preset-25"' in page and 'data-testid="preset-50"' in page
    assert 'data-testid="preset-10"' not in page and 'data-testid="preset-100"' not in page
    assert "between $20 and $60" in client.post("/billing/", {"preset": "100"}).content.decode()
    assert (
        "between $20 and $60" in client.post("/billing/", {"custom_amount": "61"}).content.decode()
    )
    assert client.post("/billing/", {"custom_amount": "60"}).status_code == 303


def test_a_member_reads_but_cannot_buy(client, member, organization, fake_stripe):
    client.force_login(member)
    page = client.get("/billing/").content.decode()
    assert "Only owners and admins buy credits." in page and "preset-25" not in page
    assert client.post("/billing/", {"preset": "25"}).status_code == 403
    assert not Purchase.objects.exists() and not fake_stripe.requests


def test_without_stripe_the_page_says_purchases_are_not_configured(client, owner, settings):
    settings.STRIPE_SECRET_KEY = ""
    client.force_login(owner)
    page = client.get("/billing/").content.decode()
    assert "Purchases are not configured" in page and "preset-25" not in page
    response = client.post("/billing/", {"preset": "25"}, follow=True)
    assert "Purchases are not configured" in response.content.decode()
    assert not Purchase.objects.exists()


def test_stripe_down_leaves_nothing_behind(client, owner, fake_stripe):
    fake_stripe.fail_next(500, {"error": {"type": "api_error", "message": "down"}}, times=3)
    client.force_login(owner)
    response = client.post("/billing/", {"preset": "10"}, follow=True)
    assert "nothing was charged" in response.content.decode()
    assert not Purchase.objects.exists()


def test_the_return_pages_show_the_purchase_status_to_its_organization_only(
    client, owner, organization, outsider, fake_stripe
):
    client.force_login(owner)
    client.post("/billing/", {"preset": "50"})
    session_id = Purchase.objects.get().stripe_checkout_session_id
    page = client.get(f"/billing/success/?session_id={session_id}").content.decode()
    assert "credits appear once Stripe confirms" in page
    assert "$50.00" in page and "waiting for Stripe" in page
    Purchase.objects.update(status=PurchaseStatus.PAID)
    page = client.get(f"/billing/success/?session_id={session_id}").content.decode()
    assert "paid, credits added" in page
    assert "Nothing was charged" in client.get("/billing/cancelled/").content.decode()
    organization_create(name="Elsewhere", owner=outsider)
    client.force_login(outsider)
    assert client.get(f"/billing/success/?session_id={session_id}").status_code == 404
    assert "Acme" not in client.get("/billing/").content.decode()


def test_pages_need_a_login(client):
    for path in ("/billing/", "/billing/success/", "/billing/cancelled/", "/billing/history.csv"):
        assert client.get(path).status_code == 302


def test_a_preset_wins_over_a_half_typed_custom_amount(client, owner, fake_stripe):
    client.force_login(owner)
    assert client.post("/billing/", {"preset": "10", "custom_amount": "abc"}).status_code == 303
    assert Purchase.objects.get().amount_cents == 1000


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"BILLING_MIN_PURCHASE_USD": "5.5"}, "BILLING_MIN_PURCHASE_USD is set but is not a valid"),
        (
            {"BILLING_MAX_PURCHASE_USD": "lots"},
            "BILLING_MAX_PURCHASE_USD is set but is not a valid",
        ),
        ({"BILLING_MIN_PURCHASE_USD": "50", "BILLING_MAX_PURCHASE_USD": "20"}, "at most the max"),
        ({"BILLING_MIN_PURCHASE_USD": "0"}, "at least 1"),
    ],
)
def test_purchase_bounds_are_read_strictly(variables, message):
    result = run_manage("check", env=manage_env(DEBUG="1", **variables))
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and message in result.stderr
