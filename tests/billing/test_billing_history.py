"""The billing history (page and CSV): credits in and out of this organization only, newest
first, exact amounts, Stripe receipts where known."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from accounts.services import organization_create
from billing.models import EntryKind, Purchase
from billing.services import credits_grant, ledger_book
from tests.billing.conftest import start
from tests.ledger_check import book_test_usage


def rows(response) -> list[list[str]]:
    assert response["content-type"] == "text/csv; charset=utf-8"
    assert response["content-disposition"].startswith("attachment; filename=")
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_csv_lists_purchases_refunds_grants_and_adjustments_exactly(
    client, owner, organization, outsider, fake_stripe, deliver
):
    credits_grant(
        organization=organization,
        amount_nanos=5 * 10**9,
        reference="grant:w",
        description="Welcome",
    )
    book_test_usage(organization, "r1", 35_000, "gpt-4o via key prod")
    session_id = start(organization, owner)
    deliver("checkout.session.completed", fake_stripe.pay(session_id))
    deliver("charge.refunded", fake_stripe.refund(session_id, 1050))
    ledger_book(
        organization=organization,
        kind=EntryKind.ADJUSTMENT,
        amount_nanos=-123_456,
        reference="adjust:1",
        description="=HYPERLINK(x)",
    )
    other = organization_create(name="Elsewhere", owner=outsider)
    credits_grant(organization=other, amount_nanos=10**9, reference="grant:other")

    client.force_login(owner)
    header, *body = rows(client.get("/billing/history.csv"))
    assert header == ["date_utc", "kind", "description", "amount_usd", "reference", "receipt_url"]
    receipt = Purchase.objects.get().receipt_url
    charge = Purchase.objects.get().stripe_charge_id
    assert receipt.startswith("https://pay.stripe.com/receipts/") and charge.startswith("ch_")
    assert [row[1:] for row in body] == [
        ["adjustment", "'=HYPERLINK(x)", "-0.000123456", "adjust:1", ""],
        ["refund", "Refund ($10.50)", "-10.50", f"stripe:refund:{charge}:1050", receipt],
        [
            "purchase",
            "Credits purchase ($25.00)",
            "25.00",
            f"stripe:checkout:{session_id}",
            receipt,
        ],
        ["grant", "Welcome", "5.00", "grant:w", ""],
    ]
    for row in body:
        assert datetime.fromisoformat(row[0]).utcoffset().total_seconds() == 0

    client.force_login(outsider)
    _, *theirs = rows(client.get("/billing/history.csv"))
    assert [row[4] for row in theirs] == ["grant:other"]


def test_page_lists_history_with_receipts_and_pages(
    client, owner, organization, fake_stripe, deliver
):
    session_id = start(organization, owner)
    deliver("checkout.session.completed", fake_stripe.pay(session_id))
    for number in range(30):
        credits_grant(organization=organization, amount_nanos=10**9, reference=f"grant:{number}")
    client.force_login(owner)
    first = client.get("/billing/").content.decode()
    assert first.count("<tr><td>") == 25 and "Page 1 of 2" in first
    assert "grant:29" not in first  # references stay out of the page; descriptions show
    last = client.get("/billing/?page=2").content.decode()
    assert "Credits purchase ($25.00)" in last
    assert f'href="{Purchase.objects.get().receipt_url}"' in last
    assert last.count("<tr><td>") == 6
