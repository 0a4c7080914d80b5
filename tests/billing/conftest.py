"""Stripe tests: the real SDK against the fake Stripe on loopback; events signed as Stripe
signs them and posted to the real webhook view."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.db.models import Sum
from django.test import Client

from accounts.models import Organization
from billing import purchases
from billing.models import EntryKind, LedgerEntry, Purchase
from billing.selectors import ledger_figures, organization_balance_nanos
from credit.stores import current as credit_store
from tests.fakes.server import serving
from tests.fakes.stripe import FakeStripe, event, signed
from tests.ledger_check import available_nanos

WEBHOOK = "/billing/stripe/webhook/"


@pytest.fixture
def fake_stripe(settings) -> Iterator[FakeStripe]:
    fake = FakeStripe()
    with serving(fake) as base_url:
        settings.STRIPE_SECRET_KEY = fake.api_key
        settings.STRIPE_WEBHOOK_SECRET = fake.webhook_secret
        settings.STRIPE_API_BASE = base_url
        yield fake


@pytest.fixture
def cached_balance(organization: Organization, redis_client: redis.Redis) -> redis.Redis:
    """The gateway's balance is loaded (as after a first API call), so grants and refunds
    must move it too."""
    asyncio.run(credit_store().load_balance(organization.pk, ledger_figures(organization.pk)))
    return redis_client


@pytest.fixture
def deliver(client: Client, django_capture_on_commit_callbacks) -> Callable[..., Any]:
    """POST one event to the webhook as Stripe would; on-commit work (the Redis balance)
    runs as it would after a real commit."""

    def post(kind: str, obj: dict[str, Any], *, event_id: str | None = None, **sign_options):
        body, signature = signed(event(kind, obj, event_id=event_id), **sign_options)
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                WEBHOOK, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
            )

    return post


def assert_books_balance(organization: Organization, expected_nanos: int) -> None:
    """The ledger, the balance selector and (when cached) the gateway's balance agree."""
    ledger = LedgerEntry.objects.filter(organization=organization).aggregate(s=Sum("amount_nanos"))
    assert int(ledger["s"] or 0) == expected_nanos
    assert organization_balance_nanos(organization=organization) == expected_nanos
    cached = available_nanos(organization.pk)
    if cached is not None:
        assert cached == expected_nanos


def grants(organization: Organization) -> list[LedgerEntry]:
    """The organization's ledger grants: credit given, not bought."""
    return list(LedgerEntry.objects.filter(organization=organization, kind=EntryKind.GRANT))


def start(organization, owner, cents: int = 2500) -> str:
    """A purchase begun as the billing page begins it; returns its session id."""
    purchases.checkout_start(
        organization=organization,
        user=owner,
        amount_cents=cents,
        success_url="http://testserver/billing/success/?session_id={CHECKOUT_SESSION_ID}",
        cancel_url="http://testserver/billing/cancelled/",
    )
    return Purchase.objects.latest("pk").stripe_checkout_session_id  # type: ignore[return-value]
