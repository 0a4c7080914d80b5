"""No overdraft, by construction: what a provider may bill is capped by what was reserved.

The fakes bill like real providers that take the request at its word: an answer as long
as the cap it was sent (`bills = {"completion": "max"}`), or the prompt tokens of a long
document behind a URL (`bills = {"prompt": 150_000}`). However the calls are made, the
balance never ends below zero and every charge is the ledger's.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import pytest

from accounts.models import User
from accounts.services import api_key_create, organization_create
from apigateway.catalog import snapshot
from apigateway.models import CatalogModel
from billing.services import credits_grant
from tests.ledger_check import assert_balance_reconciles

NANOS = 10**9


def thin_account(dollars: str) -> tuple[int, str]:
    """An organization with only `dollars` of credit, and its key."""
    owner = User.objects.create_user(email=f"thin{dollars}@example.com")
    organization = organization_create(name=f"Thin {dollars}", owner=owner)
    amount = int(Decimal(dollars) * NANOS)
    credits_grant(organization=organization, amount_nanos=amount, reference=f"grant:{dollars}")
    return organization.pk, api_key_create(organization=organization, name="thin").plaintext


def chat(tenant, key: str, **body) -> httpx.Response:
    messages = [{"role": "user", "content": "write at length"}]
    return tenant.post("/chat/completions", {"messages": messages, **body}, key=key)


ON_BOTH = pytest.mark.parametrize("money_redis", ["redis", "cluster"], indirect=True)


@ON_BOTH
def test_a_claude_call_without_max_tokens_cannot_overdraw(tenant, fake_anthropic):
    """With $0.35, claude-opus-4-1 without max_tokens sent the catalog's 32,000 output
    tokens while 4,096 are reserved would be charged in full at settlement: -$2.05."""
    organization_id, key = thin_account("0.35")
    fake_anthropic.bills = {"completion": "max"}
    refused = chat(tenant, key, model="claude-opus-4-1")  # 32,000 x $75/M = $2.40 > $0.35
    assert refused.status_code == 402
    error = refused.json()["error"]
    assert error["code"] == "insufficient_quota"
    assert "up to $2.4" in error["message"] and "available is $0.35" in error["message"]
    assert fake_anthropic.requests == []
    answered = chat(tenant, key, model="claude-opus-4-1", max_tokens=3000)
    assert answered.status_code == 200
    assert fake_anthropic.requests[-1].json()["max_tokens"] == 3000
    assert answered.json()["usage"]["completion_tokens"] == 3000
    balance = assert_balance_reconciles(organization_id)
    assert (
        0
        <= balance
        == int(Decimal("0.35") * NANOS) - int(Decimal(answered.headers["x-nexeon-cost"]) * NANOS)
    )


def test_the_smaller_of_max_tokens_and_max_completion_tokens_is_reserved_and_sent(
    tenant, fake_openai
):
    """max_completion_tokens 1 with max_tokens 8192 must not reserve 1 token and send 8,192
    to a provider that reads only max_tokens."""
    organization_id, key = thin_account("0.001")
    fake_openai.bills = {"completion": "max"}
    answered = chat(
        tenant, key, model="llama-3.3-70b-versatile", max_completion_tokens=1, max_tokens=8192
    )
    assert answered.status_code == 200
    sent = fake_openai.requests[-1].json()
    assert sent["max_tokens"] == 1 and "max_completion_tokens" not in sent  # groq's field
    assert answered.json()["usage"]["completion_tokens"] == 1
    assert assert_balance_reconciles(organization_id) >= 0


@ON_BOTH
def test_concurrent_calls_with_unsizable_input_cannot_multiply_an_overdraft(tenant, fake_anthropic):
    """With $0.02, ten concurrent Claude calls, each with one image URL and max_tokens 1,
    billed 150,000 prompt tokens each (a long PDF) would end at -$22.48 if the reservation
    counted only the bytes of the URL."""
    organization_id, key = thin_account("0.02")
    fake_anthropic.bills = {"prompt": 150_000}
    image = {"type": "image_url", "image_url": {"url": "https://example.com/report.png"}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "summarise"}, image]}]

    async def ten() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        f"{tenant.url}/v1/chat/completions",
                        json={"model": "claude-3-5-sonnet", "messages": messages, "max_tokens": 1},
                        headers={"authorization": f"Bearer {key}"},
                    )
                    for _ in range(10)
                )
            )

    answers = asyncio.run(ten())
    # Each reserves the context window's input at worst (200,000 x $3/M = $0.60).
    assert {a.status_code for a in answers} == {402}
    assert fake_anthropic.requests == []
    assert assert_balance_reconciles(organization_id) == int(Decimal("0.02") * NANOS)


def test_an_operator_tuned_worst_case_caps_the_charge_at_the_reservation(
    tenant, fake_anthropic, caplog
):
    """The operator may reserve less for unsizable input (`unsized_input_tokens`); a call
    the provider then bills beyond its reservation is charged the reservation, never more,
    and the operator hears of it."""
    CatalogModel.objects.filter(public_id="claude-3-5-sonnet").update(unsized_input_tokens=1000)
    snapshot.loaded_at = float("-inf")
    organization_id, key = thin_account("1")
    fake_anthropic.bills = {"prompt": 150_000}
    image = {"type": "image_url", "image_url": {"url": "https://example.com/report.png"}}
    answered = chat(
        tenant,
        key,
        model="claude-3-5-sonnet",
        max_tokens=1,
        messages=[{"role": "user", "content": [image]}],
    )
    assert answered.status_code == 200
    charged = int(Decimal(answered.headers["x-nexeon-cost"]) * NANOS)
    assert charged < 150_000 * 3000  # what the provider billed: $0.45
    assert "more than the" in caplog.text and "it reserved" in caplog.text
    assert assert_balance_reconciles(organization_id) == NANOS - charged >= 0
