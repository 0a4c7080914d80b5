"""Keys and invitations in a real headless Chromium against a real uvicorn: a key edited after
creation (enforced by the gateway, seen with the openai SDK), a revocation that asks first,
and an invitation accepted by someone who signs up and verifies their email on the way.
Screenshots of each step go to test-artifacts/e2e/."""

from __future__ import annotations

import re
import time
from pathlib import Path

import openai
import pytest
from allauth.account.models import EmailAddress
from playwright.sync_api import expect

from accounts.models import User
from accounts.services import organization_create
from tests.e2e.browser import ARTIFACTS, log_in
from tests.e2e.mail import confirmation_link

PASSWORD = "a-long-passphrase-42"


def owner_with_organization(email: str, name: str) -> User:
    """Made before the browser starts (Playwright's loop forbids the ORM in its thread)."""
    user = User.objects.create_user(email=email, password=PASSWORD)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    organization_create(name=name, owner=user)
    return user


@pytest.fixture
def ada(server) -> User:
    return owner_with_organization("ada@example.com", "Analytical Engines")


@pytest.fixture
def grace(server) -> User:
    return owner_with_organization("grace@example.com", "Compilers Inc")


def eventually(check, seconds: float = 6.0):
    """`check()`'s result once its assertions hold (the gateway's key cache)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return check()
        except (AssertionError, pytest.fail.Exception):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_edit_a_key_after_creation_then_revoke_it_after_confirming(server, ada, browser):
    base, _ = server
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, base, "ada@example.com", PASSWORD)
    page.goto(f"{base}/keys/")
    page.fill("input[name=name]", "ci")
    page.click("text=Create key")
    key = page.get_by_test_id("new-key").inner_text().strip()
    sdk = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0)
    messages = [{"role": "user", "content": "hi"}]

    def refused_for_credit(model: str) -> openai.APIStatusError:
        """No credit yet: a model the key may use is refused 402, one it may not is 404."""
        with pytest.raises(openai.APIStatusError) as refused:
            sdk.chat.completions.create(model=model, messages=messages, max_tokens=5)
        return refused.value

    assert refused_for_credit("gpt-4o-mini").status_code == 402

    page.goto(f"{base}/keys/")
    page.click("a[aria-label='Edit ci']")
    page.fill("input[name=name]", "ci (gpt-4o only)")
    page.fill("input[name=monthly_spend_limit]", "12.50")
    page.fill("input[name=rpm_limit]", "30")
    page.check("input[name=allowed_models][value='gpt-4o']")
    page.screenshot(path=ARTIFACTS / "keys-1-edit-form.png", full_page=True)
    page.click("text=Save changes")
    expect(page.get_by_role("status").first).to_contain_text("saved")
    row = page.locator("tr", has_text="ci (gpt-4o only)")
    expect(row.get_by_test_id("key-models")).to_have_text("gpt-4o")
    expect(row.get_by_test_id("key-spend-limit")).to_have_text("$12.50")
    expect(row.get_by_test_id("key-limits")).to_contain_text("30 requests")
    page.screenshot(path=ARTIFACTS / "keys-2-edited.png", full_page=True)

    def gpt_4o_mini_is_refused() -> None:
        assert refused_for_credit("gpt-4o-mini").status_code == 404

    eventually(gpt_4o_mini_is_refused)  # within GATEWAY_KEY_CACHE_SECONDS
    assert refused_for_credit("gpt-4o").status_code == 402  # still allowed (no credit)

    # An id that is not in the catalog cannot even be offered: the form has only checkboxes.
    page.click("a[aria-label='Edit ci (gpt-4o only)']")
    assert page.locator("input[type=text][name=allowed_models]").count() == 0
    page.fill("input[name=rpm_limit]", "0")
    page.click("text=Save changes")
    expect(page.get_by_role("alert").first).to_be_visible()
    page.screenshot(path=ARTIFACTS / "keys-3-edit-error.png", full_page=True)

    page.goto(f"{base}/keys/")
    page.click("a[aria-label='Revoke ci (gpt-4o only)']")
    expect(page.get_by_role("heading", name=re.compile("Revoke the key"))).to_be_visible()
    page.screenshot(path=ARTIFACTS / "keys-4-revoke-question.png", full_page=True)
    page.click("text=Cancel")
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    assert refused_for_credit("gpt-4o").status_code == 402  # cancelled: still a live key

    page.click("a[aria-label='Revoke ci (gpt-4o only)']")
    page.click("button:has-text('Revoke key')")
    expect(page.get_by_role("status").first).to_contain_text("revoked")
    page.screenshot(path=ARTIFACTS / "keys-5-revoked.png", full_page=True)

    def key_is_refused() -> None:
        with pytest.raises(openai.AuthenticationError):
            sdk.models.list()

    eventually(key_is_refused)


def invitation_link(mail_dir: Path) -> str:
    def mailed() -> str:
        for mail in mail_dir.glob("*.log") if mail_dir.exists() else []:
            text = mail.read_text()
            found = re.search(r"https?://\S+/invitations/\S+/", text)
            if found:
                assert "Subject: You're invited to an organization on NeXeonAI" in text
                return found.group(0)
        raise AssertionError("no invitation mail arrived")

    return eventually(mailed, seconds=10)


def test_an_invitation_is_accepted_by_a_new_signup_after_email_verification(server, grace, browser):
    base, mail_dir = server
    owners = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(owners, base, "grace@example.com", PASSWORD)
    owners.goto(f"{base}/members/")
    owners.fill("input[name=email]", "linus@example.com")
    owners.select_option("#id_role", "admin")  # the invitation's, not a member's
    owners.click("text=Send invitation")
    expect(owners.get_by_role("status").first).to_contain_text("Invitation sent")
    expect(owners.get_by_test_id("invitation")).to_contain_text("linus@example.com")
    owners.screenshot(path=ARTIFACTS / "invite-1-sent.png", full_page=True)
    link = invitation_link(mail_dir)

    invitee = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    invitee.goto(link)
    expect(invitee.get_by_role("heading", name="Join Compilers Inc")).to_be_visible()
    invitee.screenshot(path=ARTIFACTS / "invite-2-link-opened.png", full_page=True)
    invitee.click("a:has-text('Sign up')")
    invitee.fill("input[name=email]", "linus@example.com")
    invitee.fill("input[name=password1]", PASSWORD)
    invitee.fill("input[name=password2]", PASSWORD)
    invitee.click("button[type=submit]")
    expect(invitee.get_by_text("Verify", exact=False).first).to_be_visible()
    invitee.screenshot(path=ARTIFACTS / "invite-3-verify-email.png", full_page=True)

    invitee.goto(confirmation_link(mail_dir))
    invitee.click("button[type=submit]")
    expect(invitee.get_by_text("You joined Compilers Inc.")).to_be_visible()
    expect(invitee.locator("select#organization option:checked")).to_have_text("Compilers Inc")
    invitee.screenshot(path=ARTIFACTS / "invite-4-joined.png", full_page=True)
    owners.goto(f"{base}/members/")
    row = owners.locator("tr", has_text="linus@example.com")
    expect(row.locator("select[name=role] option:checked")).to_have_text("Admin")
    assert owners.get_by_test_id("invitation").count() == 0
    owners.screenshot(path=ARTIFACTS / "invite-5-members.png", full_page=True)
