"""`make run` with no provider keys, as a newcomer finds it: sign up, verify, read what the
overview says, create a key, and get a first streamed answer from the free demo model with
the official openai SDK, offline; the call is then on the usage page. In Chromium, with
screenshots in test-artifacts/e2e/."""

from __future__ import annotations

import openai
import pytest
from playwright.sync_api import expect

from tests.e2e.browser import ARTIFACTS, chromium_page
from tests.e2e.mail import confirmation_link
from tests.nexeon.test_embedded_default import without_providers
from tests.support import manage_env, run_manage, serving_nexeon


@pytest.fixture
def embedded_server(tmp_path):
    mail_dir = tmp_path / "mail"
    env = without_providers(
        manage_env(
            DATABASE_URL=None,
            REDIS_URL=None,
            SECRET_KEY=None,
            DEBUG="1",
            DATA_DIR=str(tmp_path),
            EMAIL_URL=f"filemail://{mail_dir}",
            ACCOUNT_EMAIL_VERIFICATION="mandatory",
            # Offline: a proxy that does not exist, so any call out would fail.
            HTTPS_PROXY="http://127.0.0.1:9",
            HTTP_PROXY="http://127.0.0.1:9",
        )
    )
    migrated = run_manage("migrate", "--noinput", env=env, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    with serving_nexeon(env) as (base, _):
        yield base, mail_dir


def test_signup_key_and_a_first_streamed_answer_with_no_provider_keys(embedded_server):
    base, mail_dir = embedded_server
    with chromium_page(1280, 900) as page:
        page.goto(f"{base}/accounts/signup/")
        page.fill("input[name=email]", "newcomer@example.com")
        page.fill("input[name=password1]", "a-long-passphrase-42")
        page.fill("input[name=password2]", "a-long-passphrase-42")
        page.click("button[type=submit]")
        page.goto(confirmation_link(mail_dir))
        page.click("button[type=submit]")

        notice = page.get_by_test_id("no-provider")
        expect(notice).to_contain_text("No model provider is configured on this server")
        expect(notice).to_contain_text("Only the free demo model nexeon-demo answers")
        # Starting credit in development (SIGNUP_CREDIT_USD's DEBUG default).
        expect(page.get_by_test_id("balance")).to_have_text("$1.00")
        expect(page.locator("pre code").first).to_contain_text('model="nexeon-demo"')
        page.screenshot(path=ARTIFACTS / "newcomer-1-overview.png", full_page=True)

        page.goto(f"{base}/keys/")
        page.fill("input[name=name]", "first key")
        page.click("text=Create key")
        key = page.get_by_test_id("new-key").inner_text().strip()
        assert key.startswith("nex-sk-")

        client = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0)
        assert [model.id for model in client.models.list().data] == ["nexeon-demo"]
        stream = client.chat.completions.create(
            model="nexeon-demo",
            messages=[{"role": "user", "content": "Is anybody out there?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "NeXeonAI demo: Is anybody out there?"
        assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 3
        assert chunks[-1].usage.completion_tokens == 8  # NeXeonAI demo : Is anybody out there ?

        page.goto(f"{base}/usage/")
        expect(page.get_by_test_id("total-requests")).to_have_text("1")
        expect(page.locator("[data-request-id]", has_text="nexeon-demo")).to_have_count(1)
        page.screenshot(path=ARTIFACTS / "newcomer-2-usage.png", full_page=True)
        page.goto(f"{base}/")
        expect(page.get_by_test_id("balance")).to_have_text("$1.00")  # it was free
