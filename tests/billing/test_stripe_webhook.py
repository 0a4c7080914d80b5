"""Stripe's webhook: verified, recorded once, and the ledger exactly right whatever the order
or repetition of the events. Every test ends with the ledger, the balance selector and the
gateway's cached balance agreeing."""

from __future__ import annotations

import logging
import time

import pytest
from django.db import OperationalError

from billing import stripe_events
from billing.models import EntryKind, LedgerEntry, Purchase, PurchaseStatus, StripeEvent
from billing.money import cents_to_nanos
from tests.billing.conftest import WEBHOOK, assert_books_balance, start
from tests.fakes.stripe import event, sign, signed

pytestmark = pytest.mark.usefixtures("cached_balance")
USD = cents_to_nanos(100)


def refunds(organization) -> list[int]:
    return list(
        LedgerEntry.objects.filter(organization=organization, kind=EntryKind.REFUND)
        .order_by("pk")
        .values_list("amount_nanos", flat=True)
    )


# --- verification ---------------------------------------------------------------------------


def test_a_bad_or_missing_signature_is_400_in_json(client, fake_stripe, organization, owner):
    session = fake_stripe.pay(start(organization, owner))
    body, _ = signed(event("checkout.session.completed", session))
    for header in (sign(body.decode(), secret="whsec_wrong"), "", "t=abc,v1=zz", "garbage"):
        extra = {"HTTP_STRIPE_SIGNATURE": header} if header else {}
        response = client.post(WEBHOOK, body, content_type="application/json", **extra)
        assert response.status_code == 400
        assert response["content-type"] == "application/json"
        assert "Stripe-Signature" in response.json()["error"]["message"]
    tampered = body.replace(b'"amount_total":2500', b'"amount_total":250000')
    response = client.post(
        WEBHOOK,
        tampered,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(body.decode()),
    )
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()
    assert_books_balance(organization, 0)


def test_a_stale_timestamp_is_400(deliver, fake_stripe, organization, owner):
    session = fake_stripe.pay(start(organization, owner))
    response = deliver("checkout.session.completed", session, timestamp=int(time.time()) - 301)
    assert response.status_code == 400
    assert_books_balance(organization, 0)


def test_without_a_webhook_secret_nothing_is_processed(
    deliver, fake_stripe, organization, owner, settings
):
    session = fake_stripe.pay(start(organization, owner))
    settings.STRIPE_WEBHOOK_SECRET = ""
    response = deliver("checkout.session.completed", session)
    assert response.status_code == 503
    assert "not configured" in response.json()["error"]["message"]
    assert not StripeEvent.objects.exists()
    assert_books_balance(organization, 0)


def test_signed_but_not_json_or_not_an_event_is_400(client, fake_stripe):
    for body in ("{not json", '{"id": "evt_1"}', "[]"):
        response = client.post(
            WEBHOOK, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign(body)
        )
        assert response.status_code == 400
        assert response.json()["error"]["message"]
    assert client.get(WEBHOOK).status_code == 405


def test_event_types_it_does_not_handle_are_acknowledged(deliver, fake_stripe):
    response = deliver("customer.created", {"id": "cus_1", "object": "customer"})
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    assert StripeEvent.objects.get().processed


# --- purchases --------------------------------------------------------------------------------


def test_a_paid_session_credits_once_however_often_it_is_told(
    deliver, fake_stripe, organization, owner
):
    session_id = start(organization, owner)
    session = fake_stripe.pay(session_id)
    first = deliver("checkout.session.completed", session, event_id="evt_paid_1")
    assert first.status_code == 200 and first.json()["outcome"] == "granted"
    assert_books_balance(organization, 25 * USD)
    # The same event redelivered, then other events about the same session.
    assert deliver("checkout.session.completed", session, event_id="evt_paid_1").json() == {
        "received": True,
        "outcome": "duplicate event",
    }
    assert deliver("checkout.session.completed", session).json()["outcome"] == "already granted"
    again = deliver("checkout.session.async_payment_succeeded", session)
    assert again.json()["outcome"] == "already granted"
    assert_books_balance(organization, 25 * USD)
    entry = LedgerEntry.objects.get(organization=organization)
    assert (entry.kind, entry.reference) == (EntryKind.PURCHASE, f"stripe:checkout:{session_id}")
    purchase = Purchase.objects.get()
    assert purchase.status == PurchaseStatus.PAID and purchase.paid_at
    assert purchase.stripe_payment_intent_id == session["payment_intent"]
    assert purchase.receipt_url.startswith("https://pay.stripe.com/receipts/")
    assert StripeEvent.objects.filter(processed=True).count() == 3  # three event ids


def test_an_unpaid_completion_waits_for_the_async_payment(
    deliver, fake_stripe, organization, owner
):
    session_id = start(organization, owner, 1000)
    pending = fake_stripe.pay(session_id, async_payment=True)
    assert pending["payment_status"] == "unpaid"
    assert deliver("checkout.session.completed", pending).json()["outcome"] == "unpaid"
    assert_books_balance(organization, 0)
    assert Purchase.objects.get().status == PurchaseStatus.PENDING
    settled = fake_stripe.settle_async(session_id)
    response = deliver("checkout.session.async_payment_succeeded", settled)
    assert response.json()["outcome"] == "granted"
    assert_books_balance(organization, 10 * USD)


def test_an_amount_that_differs_from_ours_is_refused(
    deliver, fake_stripe, organization, owner, caplog
):
    session = fake_stripe.pay(start(organization, owner))
    with caplog.at_level(logging.ERROR, logger="billing.purchases"):
        response = deliver("checkout.session.completed", {**session, "amount_total": 250000})
    assert response.status_code == 200 and response.json()["outcome"] == "refused"
    assert "amount_total 250000 != 2500" in caplog.text
    assert Purchase.objects.get().status == PurchaseStatus.PENDING
    assert_books_balance(organization, 0)


def test_an_expired_session_marks_the_purchase_expired(deliver, fake_stripe, organization, owner):
    session = fake_stripe.expire(start(organization, owner))
    assert deliver("checkout.session.expired", session).json()["outcome"] == "expired"
    assert Purchase.objects.get().status == PurchaseStatus.EXPIRED
    assert_books_balance(organization, 0)


def test_a_receipt_that_cannot_be_fetched_does_not_block_the_grant(
    deliver, fake_stripe, organization, owner
):
    session = fake_stripe.pay(start(organization, owner))
    fake_stripe.fail_next(500, {"error": {"type": "api_error", "message": "boom"}}, times=3)
    assert deliver("checkout.session.completed", session).json()["outcome"] == "granted"
    assert Purchase.objects.get().receipt_url == ""
    assert_books_balance(organization, 25 * USD)


# --- refunds ----------------------------------------------------------------------------------


def test_a_partial_then_a_full_refund(deliver, fake_stripe, organization, owner):
    session_id = start(organization, owner)
    deliver("checkout.session.completed", fake_stripe.pay(session_id))
    partial = fake_stripe.refund(session_id, 1000)
    assert deliver("charge.refunded", partial).json()["outcome"] == "refunded"
    assert_books_balance(organization, 15 * USD)
    rest = fake_stripe.refund(session_id)
    assert deliver("charge.refunded", rest).json()["outcome"] == "refunded"
    assert_books_balance(organization, 0)
    assert refunds(organization) == [-10 * USD, -15 * USD]
    assert set(
        LedgerEntry.objects.filter(kind=EntryKind.REFUND).values_list("reference", flat=True)
    ) == {f"stripe:refund:{partial['id']}:1000", f"stripe:refund:{partial['id']}:2500"}
    assert Purchase.objects.get().refunded_cents == 2500


def test_refund_events_reordered_and_duplicated_book_the_total_refunded(
    deliver, fake_stripe, organization, owner
):
    session_id = start(organization, owner)
    deliver("checkout.session.completed", fake_stripe.pay(session_id))
    five, fifteen, full = (
        fake_stripe.refund(session_id, 500),
        fake_stripe.refund(session_id, 1000),
        fake_stripe.refund(session_id),
    )
    deliver("charge.refunded", fifteen, event_id="evt_r15")
    assert_books_balance(organization, 10 * USD)
    outcomes = [
        deliver("charge.refunded", five).json()["outcome"],  # older than what is booked
        deliver("charge.refunded", fifteen, event_id="evt_r15").json()["outcome"],
        deliver("charge.refunded", full).json()["outcome"],
        deliver("charge.refunded", full).json()["outcome"],  # same snapshot, another event
        deliver("charge.refunded", five).json()["outcome"],
    ]
    assert outcomes == [
        "already refunded",
        "duplicate event",
        "refunded",
        "already refunded",
        "already refunded",
    ]
    assert refunds(organization) == [-15 * USD, -10 * USD]
    assert_books_balance(organization, 0)


def test_a_refund_before_the_completion_event_still_ends_right(
    deliver, fake_stripe, organization, owner
):
    session_id = start(organization, owner)
    paid = fake_stripe.pay(session_id)
    refunded = fake_stripe.refund(session_id, 1000)
    response = deliver("charge.refunded", refunded)  # checkout.session.completed is late
    assert response.json()["outcome"] == "refunded"
    lookups = [r for r in fake_stripe.requests if r.path == "/v1/checkout/sessions"]
    assert lookups and f"payment_intent={paid['payment_intent']}" in lookups[-1].query
    assert_books_balance(organization, 15 * USD)
    late = deliver("checkout.session.completed", paid)
    assert late.json()["outcome"] == "already granted"
    assert_books_balance(organization, 15 * USD)
    kinds = list(LedgerEntry.objects.order_by("pk").values_list("kind", "amount_nanos"))
    assert kinds == [(EntryKind.PURCHASE, 25 * USD), (EntryKind.REFUND, -10 * USD)]


def test_stripe_unreachable_for_an_early_refund_is_retried_by_stripe(
    deliver, fake_stripe, organization, owner
):
    session_id = start(organization, owner)
    fake_stripe.pay(session_id)
    refunded = fake_stripe.refund(session_id)
    fake_stripe.fail_next(500, {"error": {"type": "api_error", "message": "down"}}, times=3)
    first = deliver("charge.refunded", refunded, event_id="evt_refund_early")
    assert first.status_code == 503 and first["content-type"] == "application/json"
    assert_books_balance(organization, 0)
    assert not StripeEvent.objects.get(event_id="evt_refund_early").processed
    retried = deliver("charge.refunded", refunded, event_id="evt_refund_early")
    assert retried.json()["outcome"] == "refunded"
    assert_books_balance(organization, 0)
    assert len(refunds(organization)) == 1


def test_a_refund_of_a_charge_that_is_not_ours_books_nothing(deliver, fake_stripe, organization):
    stranger = {
        "id": "ch_elsewhere",
        "object": "charge",
        "amount": 900,
        "amount_refunded": 900,
        "currency": "usd",
        "payment_intent": "pi_elsewhere",
    }
    assert deliver("charge.refunded", stranger).json()["outcome"] == "unknown charge"
    assert_books_balance(organization, 0)


def test_processing_errors_answer_json_and_leave_the_event_to_rerun(
    deliver, fake_stripe, organization, owner, monkeypatch
):
    session = fake_stripe.pay(start(organization, owner))

    def database_down(_session):
        raise OperationalError("connection lost")

    def bug(_session):
        raise RuntimeError("a bug")

    monkeypatch.setitem(stripe_events.HANDLERS, "checkout.session.completed", database_down)
    transient = deliver("checkout.session.completed", session, event_id="evt_err")
    assert transient.status_code == 500 and "retry" in transient.json()["error"]["message"]
    monkeypatch.setitem(stripe_events.HANDLERS, "checkout.session.completed", bug)
    broken = deliver("checkout.session.completed", session, event_id="evt_err")
    assert broken.status_code == 200 and broken.json() == {"received": True, "processed": False}
    assert not StripeEvent.objects.get(event_id="evt_err").processed
    monkeypatch.undo()
    fixed = deliver("checkout.session.completed", session, event_id="evt_err")  # resent
    assert fixed.json()["outcome"] == "granted"
    assert_books_balance(organization, 25 * USD)
