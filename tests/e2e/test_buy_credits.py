"""Buying $25 of credits in a real Chromium: the billing page, the fake Stripe's hosted
checkout page, its signed webhook to the running app, the success page, the balance; then a
dispute of that payment, which takes the credits back and flags the organization, and the
dispute won, which returns them."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import User
from accounts.services import organization_create
from billing.models import Purchase, PurchaseStatus
from billing.money import cents_to_nanos
from tests.billing.conftest import assert_books_balance
from tests.e2e.browser import ARTIFACTS, chromium_page, log_in
from tests.fakes.server import serving
from tests.fakes.stripe import FakeStripe
from tests.support import manage_env, serving_nexeon, test_database_url


@pytest.fixture
def stripe_and_app(transactional_db, redis_client):
    """(the fake Stripe, the app's base URL): the app calls the fake, which sends it its
    webhooks."""
    fake = FakeStripe()
    with serving(fake) as stripe_base:
        environment = manage_env(
            DATABASE_URL=test_database_url(),
            DEBUG="1",
            ACCOUNT_EMAIL_VERIFICATION="none",
            STRIPE_SECRET_KEY=fake.api_key,
            STRIPE_WEBHOOK_SECRET=fake.webhook_secret,
            STRIPE_API_BASE=stripe_base,
        )
        with serving_nexeon(environment) as (base, _):
            fake.webhook_url = f"{base}/billing/stripe/webhook/"
            yield fake, base


def test_buy_25_dollars_of_credits_through_checkout(stripe_and_app):
    fake, base = stripe_and_app
    owner = User.objects.create_user(email="buyer@example.com", password="a-long-passphrase-42")
    organization = organization_create(name="Buyer Inc", owner=owner)
    with chromium_page(1280, 720) as page:
        log_in(page, base, "buyer@example.com", "a-long-passphrase-42")
        page.goto(f"{base}/billing/")
        expect(page.get_by_test_id("balance")).to_have_text("$0.00")
        page.screenshot(path=ARTIFACTS / "buy-1-billing.png")

        page.get_by_test_id("preset-25").click()
        expect(page).to_have_url(re.compile(r"/checkout/cs_test_\w+$"))
        expect(page.get_by_test_id("product")).to_have_text("NeXeonAI credits")
        page.screenshot(path=ARTIFACTS / "buy-2-checkout.png")

        page.get_by_role("button", name="Pay $25.00").click()
        expect(page).to_have_url(re.compile(r"/billing/success/\?session_id=cs_test_"))
        expect(page.get_by_test_id("purchase-status")).to_have_text("paid, credits added")
        page.screenshot(path=ARTIFACTS / "buy-3-success.png")

        page.goto(f"{base}/billing/")
        expect(page.get_by_test_id("balance")).to_have_text("$25.00")
        expect(page.get_by_role("link", name="Receipt")).to_have_count(1)
        page.screenshot(path=ARTIFACTS / "buy-4-balance.png")

        # The card holder disputes the payment: the credits go, the account is flagged
        # and buys nothing more until the dispute is won.
        session_id = fake.delivered[0][0]["data"]["object"]["id"]
        dispute = fake.dispute(session_id)
        assert fake.send_event("charge.dispute.created", dispute) == 200
        page.goto(f"{base}/billing/")
        expect(page.get_by_test_id("balance")).to_have_text("$0.00")
        expect(page.get_by_test_id("dispute-flag")).to_contain_text(
            "a payment of $25.00 with their bank"
        )
        expect(page.get_by_test_id("preset-25")).to_have_count(0)
        page.screenshot(path=ARTIFACTS / "buy-5-disputed.png", full_page=True)

        won = fake.close_dispute(dispute["id"], "won")
        assert fake.send_event("charge.dispute.closed", won) == 200
        page.goto(f"{base}/billing/")
        expect(page.get_by_test_id("balance")).to_have_text("$25.00")
        expect(page.get_by_test_id("dispute-flag")).to_have_count(0)
        expect(page.get_by_test_id("preset-25")).to_be_visible()
        expect(page.get_by_text("Dispute won: credits returned ($25.00)")).to_be_visible()
    kinds = [(delivered["type"], status) for delivered, status in fake.delivered]
    assert kinds == [
        ("checkout.session.completed", 200),
        ("charge.dispute.created", 200),
        ("charge.dispute.closed", 200),
    ]
    purchase = Purchase.objects.get()
    assert (purchase.status, purchase.amount_cents) == (PurchaseStatus.PAID, 2500)
    assert_books_balance(organization, cents_to_nanos(2500))
