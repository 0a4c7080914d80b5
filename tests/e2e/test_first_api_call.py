"""From signup to a first API call, in a real headless Chromium (Debian's): sign up, verify
the email, create a key, call the API with it, revoke it and be refused. Screenshots of each
step are kept in test-artifacts/e2e/."""

import re
import time

import openai
from playwright.sync_api import expect

from tests.e2e.browser import ARTIFACTS, chromium_page
from tests.e2e.mail import confirmation_link


def test_sign_up_verify_create_a_key_call_the_api_revoke_and_be_refused(server):
    base, mail_dir = server
    with chromium_page(1280, 720) as page:
        page.goto(f"{base}/accounts/signup/")
        page.fill("input[name=email]", "ada@example.com")
        page.fill("input[name=password1]", "a-long-passphrase-42")
        page.fill("input[name=password2]", "a-long-passphrase-42")
        page.screenshot(path=ARTIFACTS / "1-signup.png")
        page.click("button[type=submit]")
        expect(page.get_by_text("Verify", exact=False).first).to_be_visible()
        page.screenshot(path=ARTIFACTS / "2-verify-email-sent.png")

        page.goto(confirmation_link(mail_dir))
        page.click("button[type=submit]")
        expect(page.get_by_role("heading", name=re.compile("organization"))).to_be_visible()
        page.screenshot(path=ARTIFACTS / "3-overview.png")

        page.goto(f"{base}/keys/")
        page.fill("input[name=name]", "e2e key")
        page.click("text=Create key")
        key = page.get_by_test_id("new-key").inner_text().strip()
        assert key.startswith("nex-sk-")
        page.screenshot(path=ARTIFACTS / "4-key-created.png")

        client = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0)
        assert "gpt-4o" in {model.id for model in client.models.list().data}

        page.goto(f"{base}/keys/")  # (a reload would post the form again)
        assert key not in page.content()  # shown once
        page.click("a[aria-label='Revoke e2e key']")  # asks first
        page.click("button:has-text('Revoke key')")
        expect(page.get_by_text("revoked").first).to_be_visible()
        page.screenshot(path=ARTIFACTS / "5-key-revoked.png")

    deadline = time.monotonic() + 5
    while True:
        try:
            client.models.list()
        except openai.AuthenticationError:
            break
        assert time.monotonic() < deadline, "the revoked key still worked after 5 s"
        time.sleep(0.2)
