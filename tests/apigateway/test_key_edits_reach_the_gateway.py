"""A key edited on the dashboard is enforced by a running gateway process within
GATEWAY_KEY_CACHE_SECONDS (the same propagation as a revocation: accounts/key_cache.py),
seen through the official openai SDK."""

from __future__ import annotations

import time
from collections.abc import Callable

import openai
from django.conf import settings

from accounts.models import ApiKey
from tests.apigateway.conftest import gateway

HELLO = [{"role": "user", "content": "hello there"}]


def refused_within(call: Callable[[], object], error: type[Exception], seconds: float):
    """The error `call` raises once the edit has arrived; fails if it never does."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            call()
        except error as raised:
            return raised
        assert time.monotonic() < deadline, f"still allowed after {seconds} s"
        time.sleep(0.1)


def test_removed_models_and_a_lowered_spend_limit_are_enforced_after_an_edit(
    tenant, fake_openai, client
):
    row = ApiKey.objects.get(organization=tenant.organization)
    client.force_login(tenant.organization.memberships.get().user)
    patience = settings.GATEWAY_KEY_CACHE_SECONDS + 2
    with gateway(fake_openai, workers=1) as (url, _):
        sdk = openai.OpenAI(base_url=f"{url}/v1", api_key=tenant.key, max_retries=0)

        def chat(model: str):
            return sdk.chat.completions.create(model=model, messages=HELLO, max_tokens=10)

        assert chat("gpt-4o-mini").choices  # the running gateway knows the key now

        edited = client.post(
            f"/keys/{row.pk}/edit",
            {"name": "test", "expiry": "keep", "allowed_models": ["gpt-4o"]},
        )
        assert edited.status_code == 302
        refused = refused_within(lambda: chat("gpt-4o-mini"), openai.NotFoundError, patience)
        assert "gpt-4o-mini" in refused.message
        assert chat("gpt-4o").choices  # the model still allowed still answers

        client.post(
            f"/keys/{row.pk}/edit",
            {
                "name": "test",
                "expiry": "keep",
                "allowed_models": ["gpt-4o"],
                "monthly_spend_limit": "0.000001",  # below one call's most
            },
        )
        refused = refused_within(lambda: chat("gpt-4o"), openai.APIStatusError, patience)
        assert refused.status_code == 402 and refused.code == "spend_limit_reached"
        assert "API keys page" in refused.message

        # Raised again on the same page: the key answers again.
        client.post(
            f"/keys/{row.pk}/edit",
            {"name": "test", "expiry": "keep", "monthly_spend_limit": "5"},
        )
        deadline = time.monotonic() + patience
        while True:
            try:
                assert chat("gpt-4o-mini").choices
                break
            except (openai.APIStatusError, openai.NotFoundError):
                assert time.monotonic() < deadline, "the raised limit was not applied"
                time.sleep(0.1)
