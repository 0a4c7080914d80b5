"""The fake Stripe speaks Stripe's wire format: checked with the official SDK."""

from __future__ import annotations

import time

import pytest
import stripe

from tests.fakes.server import serving
from tests.fakes.stripe import API_KEY, WEBHOOK_SECRET, FakeStripe, decode_form, event, sign, signed


@pytest.fixture(scope="module")
def fake():
    fake = FakeStripe()
    with serving(fake):
        yield fake


def sdk(fake: FakeStripe, key: str = API_KEY) -> stripe.StripeClient:
    return stripe.StripeClient(key, base_addresses={"api": fake.base_url}, max_network_retries=0)


SESSION = {
    "mode": "payment",
    "line_items": [
        {
            "quantity": 1,
            "price_data": {
                "currency": "usd",
                "unit_amount": 2500,
                "product_data": {"name": "NeXeonAI credits"},
            },
        }
    ],
    "metadata": {"organization_id": "7", "purchase_id": "3"},
    "client_reference_id": "7",
    "success_url": "https://app.example/billing/success/?session_id={CHECKOUT_SESSION_ID}",
    "cancel_url": "https://app.example/billing/cancelled/",
}


def test_signature_is_stripes_scheme_and_the_sdk_accepts_it():
    payload = '{"id": "evt_1", "object": "event"}'
    header = sign(payload, "whsec_x", timestamp=1_700_000_000)
    # The SDK's own signer, written by Stripe, gives the same header for the same input.
    assert header == stripe.WebhookSignature.generate_signature_header(
        payload, "whsec_x", timestamp=1_700_000_000
    )
    body, fresh = signed(event("charge.refunded", {"id": "ch_1", "object": "charge"}))
    verified = stripe.Webhook.construct_event(body.decode(), fresh, WEBHOOK_SECRET)
    assert verified.type == "charge.refunded" and verified.data.object.id == "ch_1"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body.decode(), fresh, "whsec_other")
    stale = sign(body.decode(), timestamp=int(time.time()) - 301)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body.decode(), stale, WEBHOOK_SECRET, tolerance=300)


def test_bracket_notation_decodes_to_nested_objects():
    assert decode_form(
        [
            ("line_items[0][price_data][unit_amount]", "5"),
            ("line_items[0][quantity]", "1"),
            ("metadata[a]", "b"),
            ("expand[]", "latest_charge"),
        ]
    ) == {
        "line_items": [{"price_data": {"unit_amount": "5"}, "quantity": "1"}],
        "metadata": {"a": "b"},
        "expand": ["latest_charge"],
    }


def test_sdk_creates_retrieves_and_lists_sessions(fake):
    client = sdk(fake)
    session = client.v1.checkout.sessions.create(SESSION)
    assert session.object == "checkout.session" and session.id.startswith("cs_test_")
    assert (session.amount_total, session.currency, session.payment_status) == (
        2500,
        "usd",
        "unpaid",
    )
    assert session.url == f"{fake.base_url}/checkout/{session.id}"
    assert session.metadata.to_dict() == {"organization_id": "7", "purchase_id": "3"}
    sent = fake.requests[-1]
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert b"line_items[0][price_data][unit_amount]=2500" in sent.body.replace(
        b"%5B", b"["
    ).replace(b"%5D", b"]")
    paid = fake.pay(session.id)
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"
    found = client.v1.checkout.sessions.list({"payment_intent": paid["payment_intent"], "limit": 1})
    assert [s.id for s in found.data] == [session.id]
    intent = client.v1.payment_intents.retrieve(
        paid["payment_intent"], {"expand": ["latest_charge"]}
    )
    assert intent.latest_charge.receipt_url.startswith("https://pay.stripe.com/receipts/")
    assert isinstance(client.v1.payment_intents.retrieve(paid["payment_intent"]).latest_charge, str)
    refunded = fake.refund(session.id, 1000)
    assert (refunded["amount_refunded"], refunded["refunded"]) == (1000, False)
    assert fake.refund(session.id)["amount_refunded"] == 2500


def test_sdk_sees_stripes_errors(fake):
    with pytest.raises(stripe.AuthenticationError) as caught:
        sdk(fake, "sk_test_wrong").v1.checkout.sessions.create(SESSION)
    assert caught.value.http_status == 401
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sdk(fake).v1.checkout.sessions.create({**SESSION, "mode": None})
    assert caught.value.param == "mode" and caught.value.code == "parameter_missing"
    bad_item = {**SESSION["line_items"][0], "price_data": {"currency": "usd", "unit_amount": 5}}
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sdk(fake).v1.checkout.sessions.create({**SESSION, "line_items": [bad_item]})
    assert caught.value.param == "line_items[0][price_data][product_data]"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sdk(fake).v1.checkout.sessions.create({**SESSION, "customer_emial": "typo@example.com"})
    assert caught.value.code == "parameter_unknown"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sdk(fake).v1.checkout.sessions.retrieve("cs_test_missing")
    assert caught.value.http_status == 404 and caught.value.code == "resource_missing"


def test_an_idempotency_key_replays_the_first_answer(fake):
    client = sdk(fake)
    first = client.v1.checkout.sessions.create(SESSION, {"idempotency_key": "same-key"})
    again = client.v1.checkout.sessions.create(SESSION, {"idempotency_key": "same-key"})
    assert first.id == again.id
