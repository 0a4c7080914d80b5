"""Disputes and refunds take credits back through the ledger's writer: never below zero
(the shortfall recorded), once per dispute or refunded amount however often or concurrently
Stripe delivers, a won dispute gives them back, and the organization is flagged meanwhile.
Events in the fake Stripe's wire format, signed with Stripe's scheme, posted to the real
webhook view; every test ends with the ledger, the balance selector and the gateway's cached
balance agreeing."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client

from billing.models import (
    DisputeStatus,
    EntryKind,
    LedgerEntry,
    Purchase,
    StripeDispute,
)
from billing.money import cents_to_nanos
from billing.selectors import dispute_flag, organization_balance_nanos
from credit.stores import current as credit_store
from tests.billing.conftest import WEBHOOK, assert_books_balance, start
from tests.billing.test_periodic_jobs import call
from tests.fakes.stripe import event, signed
from tests.ledger_check import book_test_usage

pytestmark = pytest.mark.usefixtures("cached_balance")
USD = cents_to_nanos(100)


def bought(deliver, fake_stripe, organization, owner, cents: int = 2500) -> str:
    session_id = start(organization, owner, cents)
    assert deliver("checkout.session.completed", fake_stripe.pay(session_id)).status_code == 200
    return session_id


def spend(organization, amount_nanos: int) -> None:
    """Calls charged at the gateway (the cached balance) and booked by the usage drain."""
    store = credit_store()
    state = store.credit_state(organization.pk)
    total = state.available + state.held + state.unbooked
    book_test_usage(organization, f"req-{amount_nanos}", amount_nanos)
    assert store.charge_ledger_only(organization.pk, total, amount_nanos) == 1


def entries(organization, kind: EntryKind) -> list[int]:
    return list(
        LedgerEntry.objects.filter(organization=organization, kind=kind)
        .order_by("pk")
        .values_list("amount_nanos", flat=True)
    )


# --- disputes -------------------------------------------------------------------------------


def test_a_dispute_takes_the_credits_back_and_flags_until_it_is_won(
    client, deliver, fake_stripe, organization, owner
):
    session_id = bought(deliver, fake_stripe, organization, owner)
    dispute = fake_stripe.dispute(session_id)
    response = deliver("charge.dispute.created", dispute)
    assert response.status_code == 200
    assert response.json()["outcome"] == "credits taken back"
    assert_books_balance(organization, 0)
    assert entries(organization, EntryKind.DISPUTE) == [-25 * USD]
    assert dispute_flag(organization.pk).dispute_id == dispute["id"]

    client.force_login(owner)
    page = client.get("/billing/").content.decode()
    assert 'data-testid="dispute-flag"' in page and "$25.00" in page
    refused = client.post("/billing/", {"preset": "10"}, follow=True)
    assert "paused while a payment dispute is open" in refused.content.decode()
    assert Purchase.objects.count() == 1  # no new checkout was started

    won = deliver("charge.dispute.closed", fake_stripe.close_dispute(dispute["id"], "won"))
    assert won.json()["outcome"] == "won, credits returned"
    assert_books_balance(organization, 25 * USD)
    assert entries(organization, EntryKind.DISPUTE) == [-25 * USD, 25 * USD]
    assert dispute_flag(organization.pk) is None
    assert 'data-testid="dispute-flag"' not in client.get("/billing/").content.decode()
    again = deliver("charge.dispute.closed", fake_stripe.close_dispute(dispute["id"], "won"))
    assert again.json()["outcome"] == "already closed"
    assert_books_balance(organization, 25 * USD)


def test_a_lost_dispute_keeps_the_credits_taken_and_the_flag_until_an_operator_clears_it(
    admin_client, deliver, fake_stripe, organization, owner
):
    session_id = bought(deliver, fake_stripe, organization, owner)
    dispute = fake_stripe.dispute(session_id, amount=1000, reason="product_not_received")
    deliver("charge.dispute.created", dispute)
    assert_books_balance(organization, 15 * USD)  # a partial dispute takes back its part
    lost = deliver("charge.dispute.closed", fake_stripe.close_dispute(dispute["id"], "lost"))
    assert lost.json()["outcome"] == "lost"
    assert_books_balance(organization, 15 * USD)
    record = StripeDispute.objects.get()
    assert (record.status, record.taken_nanos, record.reason) == (
        DisputeStatus.LOST,
        10 * USD,
        "product_not_received",
    )
    assert dispute_flag(organization.pk) == record
    client = Client()
    client.force_login(owner)
    refused = client.post("/billing/", {"preset": "10"}, follow=True).content.decode()
    assert "a payment dispute was lost" in refused and "dispute is open" not in refused
    assert Purchase.objects.count() == 1  # no new checkout was started

    listing = admin_client.get("/admin/billing/stripedispute/").content.decode()
    assert dispute["id"] in listing
    cleared = admin_client.post(
        "/admin/billing/stripedispute/",
        {"action": "clear_flag", "_selected_action": [record.pk]},
        follow=True,
    )
    assert "1 dispute flag(s) cleared." in cleared.content.decode()
    assert dispute_flag(organization.pk) is None
    assert_books_balance(organization, 15 * USD)


def test_a_dispute_after_the_credits_were_spent_takes_what_is_left_and_records_the_rest(
    deliver, fake_stripe, organization, owner
):
    session_id = bought(deliver, fake_stripe, organization, owner)
    spend(organization, 20 * USD)
    assert_books_balance(organization, 5 * USD)
    dispute = fake_stripe.dispute(session_id)
    deliver("charge.dispute.created", dispute)
    assert_books_balance(organization, 0)  # never below zero
    record = StripeDispute.objects.get()
    assert (record.taken_nanos, record.shortfall_nanos) == (5 * USD, 20 * USD)
    assert Purchase.objects.get().shortfall_nanos == 20 * USD
    # Won: what was taken comes back, and the shortfall is no longer a loss.
    deliver("charge.dispute.closed", fake_stripe.close_dispute(dispute["id"], "won"))
    assert_books_balance(organization, 5 * USD)
    assert Purchase.objects.get().shortfall_nanos == 0


def test_a_close_that_overtook_its_opening_still_ends_right(
    deliver, fake_stripe, organization, owner
):
    first = bought(deliver, fake_stripe, organization, owner)
    second = bought(deliver, fake_stripe, organization, owner, cents=1000)
    assert_books_balance(organization, 35 * USD)
    lost = fake_stripe.dispute(first)
    won = fake_stripe.dispute(second)
    lost_closed = fake_stripe.close_dispute(lost["id"], "lost")
    won_closed = fake_stripe.close_dispute(won["id"], "won")
    assert deliver("charge.dispute.closed", lost_closed).json()["outcome"] == "lost"
    assert deliver("charge.dispute.closed", won_closed).json()["outcome"] == "won"
    assert_books_balance(organization, 10 * USD)
    assert deliver("charge.dispute.created", lost).json()["outcome"] == "already disputed"
    assert deliver("charge.dispute.created", won).json()["outcome"] == "already disputed"
    assert_books_balance(organization, 10 * USD)
    assert dispute_flag(organization.pk).dispute_id == lost["id"]


def test_a_dispute_before_the_completion_event_grants_then_takes_back(
    deliver, fake_stripe, organization, owner
):
    session_id = start(organization, owner)
    paid = fake_stripe.pay(session_id)
    dispute = fake_stripe.dispute(session_id)
    assert deliver("charge.dispute.created", dispute).json()["outcome"] == "credits taken back"
    assert_books_balance(organization, 0)
    assert entries(organization, EntryKind.PURCHASE) == [25 * USD]
    late = deliver("checkout.session.completed", paid)
    assert late.json()["outcome"] == "already granted"
    assert_books_balance(organization, 0)


def test_a_dispute_after_a_partial_refund_takes_back_only_what_was_not_refunded(
    deliver, fake_stripe, organization, owner
):
    session_id = bought(deliver, fake_stripe, organization, owner)
    deliver("charge.refunded", fake_stripe.refund(session_id, 1000))
    assert_books_balance(organization, 15 * USD)
    deliver("charge.dispute.created", fake_stripe.dispute(session_id))  # claims all 25
    assert_books_balance(organization, 0)
    assert entries(organization, EntryKind.DISPUTE) == [-15 * USD]


def test_a_dispute_of_a_charge_that_is_not_ours_books_nothing(deliver, fake_stripe, organization):
    stranger = {
        "id": "du_elsewhere",
        "object": "dispute",
        "amount": 900,
        "charge": "ch_elsewhere",
        "currency": "usd",
        "payment_intent": None,
        "reason": "fraudulent",
        "status": "needs_response",
    }
    assert deliver("charge.dispute.created", stranger).json()["outcome"] == "unknown charge"
    assert not StripeDispute.objects.exists()
    assert_books_balance(organization, 0)


# --- refunds --------------------------------------------------------------------------------


def test_a_refund_after_the_credits_were_spent_never_goes_below_zero(
    deliver, fake_stripe, organization, owner
):
    session_id = bought(deliver, fake_stripe, organization, owner)
    spend(organization, 20 * USD)
    response = deliver("charge.refunded", fake_stripe.refund(session_id, 1000))
    assert response.json()["outcome"] == "refunded, part already spent"
    assert_books_balance(organization, 0)
    assert entries(organization, EntryKind.REFUND) == [-5 * USD]
    purchase = Purchase.objects.get()
    assert (purchase.refunded_cents, purchase.shortfall_nanos) == (1000, 5 * USD)
    deliver("charge.refunded", fake_stripe.refund(session_id))  # the rest: nothing left
    assert_books_balance(organization, 0)
    purchase.refresh_from_db()
    assert (purchase.refunded_cents, purchase.shortfall_nanos) == (2500, 20 * USD)


def test_a_refund_counts_calls_charged_at_the_gateway_but_not_yet_booked(
    deliver, fake_stripe, organization, owner
):
    """The ledger hears of a call only when the usage drain books it: a refund read from the
    ledger alone took credit a call had already spent, and the drain then left the
    balance below zero."""
    session_id = bought(deliver, fake_stripe, organization, owner)
    store = credit_store()
    call(store, organization, "req-unbooked", 20 * USD, 20 * USD)  # charged, usage queued
    assert store.credit_state(organization.pk).unbooked == 20 * USD

    response = deliver("charge.refunded", fake_stripe.refund(session_id))
    assert response.json()["outcome"] == "refunded, part already spent"
    assert entries(organization, EntryKind.REFUND) == [-5 * USD]
    assert Purchase.objects.get().shortfall_nanos == 20 * USD

    book_test_usage(organization, "req-unbooked", 20 * USD)  # the drain catches up
    assert organization_balance_nanos(organization=organization) == 0


def test_refund_created_and_charge_refunded_for_the_same_refund_book_it_once(
    deliver, fake_stripe, organization, owner
):
    session_id = bought(deliver, fake_stripe, organization, owner)
    charge = fake_stripe.refund(session_id, 1000)
    refund = fake_stripe.last_refund()
    assert refund["object"] == "refund" and refund["charge"] == charge["id"]
    assert deliver("refund.created", refund).json()["outcome"] == "refunded"
    assert any(r.path == f"/v1/charges/{charge['id']}" for r in fake_stripe.requests)
    assert deliver("charge.refunded", charge).json()["outcome"] == "already refunded"
    assert_books_balance(organization, 15 * USD)
    assert entries(organization, EntryKind.REFUND) == [-10 * USD]


# --- concurrent deliveries ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_take_back_once(fake_stripe, organization, owner, settings):
    """Stripe delivers the same event several times at once, and the same dispute and
    refund under several event ids: each takes its credits back exactly once."""
    session_id = start(organization, owner)
    body, signature = signed(event("checkout.session.completed", fake_stripe.pay(session_id)))
    paid = Client().post(
        WEBHOOK, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )
    assert paid.json()["outcome"] == "granted", paid.content
    assert_books_balance(organization, 25 * USD)
    dispute = fake_stripe.dispute(session_id, amount=2000)
    charge = fake_stripe.refund(session_id, 500)
    same = event("charge.dispute.created", dispute)
    deliveries = [same] * 4 + [event("charge.dispute.created", dispute) for _ in range(4)]
    deliveries += [event("charge.refunded", charge) for _ in range(4)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(deliveries))

    def post(evt) -> None:
        payload, header = signed(evt)
        barrier.wait()
        response = Client().post(
            WEBHOOK, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
        )
        outcomes.append(response.json().get("outcome", response.status_code))
        connection.close()  # this thread's own database connection

    threads = [threading.Thread(target=post, args=(evt,)) for evt in deliveries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(outcomes) == len(deliveries)
    assert outcomes.count("credits taken back") == 1
    assert outcomes.count("refunded") == 1
    assert entries(organization, EntryKind.REFUND) == [-5 * USD]
    assert entries(organization, EntryKind.DISPUTE) == [-20 * USD]
    assert StripeDispute.objects.count() == 1
    assert_books_balance(organization, 0)
