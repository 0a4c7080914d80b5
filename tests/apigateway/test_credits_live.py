"""/v1/credits and /v1/key with the real pipeline: a key from `create_api_key --credits 1`,
a call through the gateway, and a Celery worker running beat's drain."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx
from django.core.management import call_command

from tests.ledger_check import assert_balance_reconciles


def test_a_fresh_account_sees_its_credit_and_then_its_usage_within_5_seconds(
    tenant, fake_openai, celery_worker_with_beat, capsys
):
    call_command("create_api_key", "fresh@example.com", "--credits", "1", "--name", "fresh")
    key = capsys.readouterr().out.strip().splitlines()[-1]
    headers = {"authorization": f"Bearer {key}"}
    credits = httpx.get(f"{tenant.url}/v1/credits", headers=headers).json()
    assert credits == {"data": {"total_credits": 1, "total_usage": 0}}
    assert httpx.get(f"{tenant.url}/v1/key", headers=headers).json()["data"]["label"] == "fresh"

    answered = httpx.post(
        f"{tenant.url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi there"}]},
        headers=headers,
    )
    assert answered.status_code == 200
    cost = Decimal(answered.headers["x-nexeon-cost"])
    assert cost > 0
    deadline = time.monotonic() + 5
    while True:
        credits = httpx.get(f"{tenant.url}/v1/credits", headers=headers).json()["data"]
        key_usage = httpx.get(f"{tenant.url}/v1/key", headers=headers).json()["data"]["usage"]
        if credits["total_usage"] and key_usage:
            break
        assert time.monotonic() < deadline, "usage did not show up within 5 s"
        time.sleep(0.1)
    assert Decimal(str(credits["total_usage"])) == cost
    assert credits["total_credits"] == 1
    assert Decimal(str(key_usage)) == cost
    from accounts.models import ApiKey

    organization_id = ApiKey.objects.get(name="fresh").organization_id
    assert assert_balance_reconciles(organization_id) == 10**9 - int(cost * 10**9)
