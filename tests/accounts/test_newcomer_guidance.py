"""No dead end: the overview tells a customer with no balance what to do on this server,
and says when no provider is configured; Billing without Stripe says how to get credits;
the 402's advice points at what exists."""

from __future__ import annotations

import re

import pytest

from accounts.services import organization_create
from apigateway.quota import insufficient_credits
from billing.services import credits_grant

OPENAI = {"openai": {"api_key": "sk-operator", "base_url": "https://api.openai.com/v1"}}
DEMO = {"demo": {"api_key": "", "base_url": "demo://local", "adapter": "openai"}}


def text_of(html: str, testid: str) -> str:
    found = re.search(rf'<(\w+)[^>]*data-testid="{testid}"[^>]*>(.*?)</\1>', html, re.DOTALL)
    assert found, f"no {testid}"
    return " ".join(re.sub(r"<[^>]+>", " ", found[2]).split())


@pytest.mark.django_db
def test_no_provider_no_stripe_demo_on(dashboard, organization, owner, settings):
    settings.PROVIDERS, settings.GATEWAY_DEMO_MODEL, settings.STRIPE_SECRET_KEY = DEMO, True, ""
    html = dashboard.get("/").content.decode()
    assert "Only the free demo model nexeon-demo answers" in text_of(html, "no-provider")
    assert "OPENAI_API_KEY" in text_of(html, "no-provider")
    advice = text_of(html, "no-balance")
    assert "Your balance is $0.00" in advice
    assert "Ask the operator of this server for credits" in advice
    assert f"make credits EMAIL={owner.email} USD=10 ORG={organization.slug}" in advice
    assert "the free demo model nexeon-demo answers without credits" in advice
    assert 'model="nexeon-demo"' in html  # the snippets use a model that answers here
    section = re.search(r'data-testid="no-balance".*?</section>', html, re.S)[0]
    assert 'href="/billing/"' not in section  # no purchases here: not sent to buy


@pytest.mark.django_db
def test_no_provider_and_no_demo_says_calls_are_refused(dashboard, organization, settings):
    settings.PROVIDERS, settings.GATEWAY_DEMO_MODEL = {}, False
    html = dashboard.get("/").content.decode()
    assert "Every call is refused (503) until one is" in text_of(html, "no-provider")
    assert "demo" not in text_of(html, "no-balance")


@pytest.mark.django_db
def test_with_stripe_and_a_provider_it_points_at_billing(dashboard, organization, settings):
    settings.PROVIDERS, settings.GATEWAY_DEMO_MODEL = OPENAI, False
    settings.STRIPE_SECRET_KEY = "sk_test_x"
    html = dashboard.get("/").content.decode()
    assert 'data-testid="no-provider"' not in html
    assert "Buy credits on the Billing page" in text_of(html, "no-balance")
    assert 'href="/billing/"' in html
    assert 'model="gpt-4o-mini"' in html


@pytest.mark.django_db
def test_a_personal_organization_needs_no_org_argument_and_credit_hides_the_advice(
    dashboard, owner, settings
):
    settings.PROVIDERS, settings.STRIPE_SECRET_KEY = OPENAI, ""
    personal = organization_create(name="Mine", owner=owner, is_personal=True)
    dashboard.post("/organizations/switch", {"organization": personal.pk})
    html = dashboard.get("/").content.decode()
    advice = text_of(html, "no-balance")
    assert f"make credits EMAIL={owner.email} USD=10" in advice and "ORG=" not in advice
    credits_grant(organization=personal, amount_nanos=10**9, reference="grant:t")
    assert 'data-testid="no-balance"' not in dashboard.get("/").content.decode()


@pytest.mark.django_db
def test_billing_without_stripe_says_how_to_get_credits(dashboard, organization, settings):
    settings.STRIPE_SECRET_KEY, settings.GATEWAY_DEMO_MODEL = "", True
    html = dashboard.get("/billing/").content.decode()
    shown = text_of(html, "purchases-not-configured")
    assert "credits come from its operator" in shown
    assert "make credits EMAIL=" in shown and "nexeon-demo" in shown


@pytest.mark.parametrize(
    ("stripe", "demo_on", "advice", "absent"),
    [
        ("sk_test_x", False, "Buy credits on the dashboard's Billing page.", "demo"),
        ("", False, "Ask this server's operator for credits", "Buy"),
        ("", True, "The free demo model 'nexeon-demo' needs none.", "Buy"),
    ],
)
def test_the_402_advice_points_at_what_exists(settings, stripe, demo_on, advice, absent):
    settings.STRIPE_SECRET_KEY, settings.GATEWAY_DEMO_MODEL = stripe, demo_on
    message = insufficient_credits(5, 0).message
    assert advice in message and absent not in message
    assert message.endswith("and try again.")
